"""A private X server for the viewer tests: Mesa's software OpenGL draws their windows."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess


def start_xvfb() -> str:
    """Start a private Xvfb server that dies with this process; return its DISPLAY name.

    For headless machines (tests, benchmarks): Mesa's software OpenGL draws the window.
    """

    def die_with_parent() -> None:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    read, write = os.pipe()
    subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        return f":{pipe.readline().strip()}"
