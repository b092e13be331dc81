"""What ties the live processes to their supervisor: they die with it, and tell it why
they could not go on.

The processes are children of the forkserver, not of the supervisor, so a die-with-parent
signal (``PR_SET_PDEATHSIG``) would watch the wrong process, and the forkserver itself
lives as long as any of its children. Instead every process holds the read end of a pipe
whose only write end the supervisor keeps. However the supervisor ends (exit, SIGKILL, out
of memory) the kernel closes that write end, the read end sees end-of-file, and a watchdog
thread in each process stops it: first as on SIGTERM (the sink finalizes its files), then
for good after ``EXIT_GRACE_S``. The forkserver, the parent of the processes, gets SIGTERM
at once (exiting normally it would tear down MediaPipe and friends for half a second); the
resource tracker exits when the last process holding its pipe is gone.

A process that fails for a reason the user can fix (a port in use, a source that is gone)
puts one line on the failure queue and exits with ``EXIT_REPORTED``; the supervisor ends
the run with that line as its error.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from multiprocessing.context import BaseContext
from typing import Any, NoReturn

EXIT_GRACE_S = 0.5  # from the supervisor's death to the hard exit of a process
EXIT_ORPHANED = 5  # exit status of a process whose supervisor died
EXIT_REPORTED = 3  # exit status after a failure put on the queue


class Lifeline:
    """Created by the supervisor, passed to every process it starts."""

    def __init__(self, context: BaseContext) -> None:
        self._alive, self._alive_w = context.Pipe(duplex=False)
        self._failures = context.SimpleQueue()
        self._supervisor = os.getpid()
        self._parent = 0  # in a child: its parent when it started

    def __getstate__(self) -> dict[str, Any]:
        """A child gets the read end and the queue; the write end stays here, alone."""
        return {**self.__dict__, "_alive_w": None}

    # -- in a child process ------------------------------------------------------------

    def hold(self) -> None:
        """Start the watchdog that ends this process when the supervisor is gone."""
        self._parent = os.getppid()
        threading.Thread(target=self._watch, name="lifeline", daemon=True).start()

    def _watch(self) -> None:
        self._alive.poll(None)  # returns only at end-of-file: nobody writes
        if self._parent != self._supervisor and os.getppid() == self._parent:
            os.kill(self._parent, signal.SIGTERM)  # the forkserver, still our parent
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(EXIT_GRACE_S)
        os._exit(EXIT_ORPHANED)

    def fail(self, message: str) -> NoReturn:
        """Report ``message`` (one line, what went wrong and what to do) and exit."""
        self._failures.put(message)
        sys.exit(EXIT_REPORTED)

    # -- in the supervisor -------------------------------------------------------------

    def failure(self) -> str | None:
        """The first failure reported by a process, if any."""
        return None if self._failures.empty() else self._failures.get()

    def close(self) -> None:
        """Cut the line: any process still running ends within ``EXIT_GRACE_S``."""
        if self._alive_w is not None:
            self._alive_w.close()
            self._alive_w = None
