"""The browser app (``run_web.py``): upload videos to offline jobs, watch the live capture.

An application like ``run_offline.py`` and ``run_live.py``: jobs run the offline runner in
worker processes, the live page starts ``run_live.py`` and reads its public stream like any
external client. Nothing below this package knows it exists.
"""
