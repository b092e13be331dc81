"""A private X server for the viewer tests: Mesa's software OpenGL draws their windows."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def xvfb() -> Iterator[str]:
    """A private Xvfb server for the duration of the block; its DISPLAY name.

    No Qt in the pytest process holds a connection to it (the windows run in processes of
    their own), so it can stop at the end of the block; it also dies with this process.
    """

    def die_with_parent() -> None:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)
