"""Child processes of the web server die with it (Linux ``PR_SET_PDEATHSIG``), so a killed
server leaves no worker or live session behind."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn``: SIGTERM this process when its parent ends (then it unwinds cleanly:
    a worker discards its partial files, a live session stops its stage processes)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
