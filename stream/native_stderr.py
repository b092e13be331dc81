"""Keep MediaPipe's native log chatter off the terminal without hiding real failures.

MediaPipe 0.10.21 (TensorFlow Lite, absl logging) prints INFO and WARNING lines straight to
file descriptor 2 from C++ ("Created TensorFlow Lite XNNPACK delegate", ``W0000 ...
inference_feedback_manager.cc``, ...); no environment variable or Python logger silences
them. So fd 2 of this process, and of every process it starts, is pointed at a pipe read by
a small filter process that drops exactly those lines and passes everything else through
(progress bars, ``error:`` lines, absl ERROR/FATAL lines, Python tracebacks) at once.

A native crash (``abort()`` in C++, a segfault) skips Python's clean-up. The filter tells
the two apart: a process that ends normally writes a sign-off on a second pipe at exit; if
stderr closes without one, the filter ends the output with one ``error:`` line.
"""

from __future__ import annotations

import atexit
import os
import re
import select
import signal
import sys
import threading
import time
from typing import NoReturn

# Native INFO/WARNING lines: the TFLite delegate notice, absl's pre-init notice, and
# glog/absl-format lines of severity I or W ("W0000 00:00:1795.1 8094 file.cc:114] ...").
# E (error) and F (fatal) lines always pass. liblsl (--lsl) logs its start the same way,
# in its own format: "2026-11-30 06:06:22.694 (   8.432s) [  8E53CB80]  file.cpp:126   INFO| "
# (its WARN and ERR lines pass).
CHATTER_LINES = (b"INFO: Created TensorFlow Lite", b"WARNING: All log messages before absl::")
CHATTER = re.compile(
    b"|".join(re.escape(line) for line in CHATTER_LINES)
    + rb"|[IW]\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\] "
    + rb"|\d{4}-\d\d-\d\d [\d:.]+ +\( *[\d.]+s\) +\[[^\]\n]*\] +[\w.-]+:\d+ +INFO\| "
)
# An unterminated segment is held back only while it could still grow into chatter.
GLOG_PREFIX = re.compile(rb"[IW](\d{0,4}( [\d:.]*( +\d*( [\w.-]*(:\d*)?)?)?)?)?")
LSL_PREFIX = re.compile(rb"\d{1,4}(-(\d{1,2}(-(\d{1,2}( [^\n]*)?)?)?)?)?")  # held to its newline


def could_become_chatter(tail: bytes) -> bool:
    """Whether an unterminated segment is the start of a chatter line."""
    return (
        any(line.startswith(tail) for line in CHATTER_LINES)
        or bool(GLOG_PREFIX.fullmatch(tail))
        or bool(LSL_PREFIX.fullmatch(tail))
    )


SIGN_OFF = b"ok"
# Ctrl-C or a SIGTERM sent to the whole process group is for the pipeline: the filter stays
# to pass on its last words.
FILTER_IGNORES = (signal.SIGINT, signal.SIGTERM)
DRAIN_WAIT_S = 1.0  # at exit, how long to let the filter print the last lines first
CRASH_LINE = (
    "error: the process stopped abnormally (a crash in native code, or killed); "
    "run again with --verbose to see MediaPipe's own messages\n"
)
_installed_by: int | None = None


class ChatterFilter:
    """Splits a byte stream at line and carriage-return boundaries; drops chatter lines."""

    def __init__(self) -> None:
        self._held = b""  # unterminated segment that may still become chatter

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` (after what was held) that may be shown now.

        A native logger writes each line with one ``write``, so chatter starts a chunk or
        follows a separator, even right after a progress bar's unterminated update."""
        out = []
        parts = re.split(rb"(\r|\n)", self._held + data)
        self._held = b""
        segments, tail = parts[:-1], parts[-1]
        for text, sep in zip(segments[::2], segments[1::2], strict=True):
            if not (sep == b"\n" and CHATTER.match(text)):
                out.append(text + sep)
        if tail and (CHATTER.match(tail) or could_become_chatter(tail)):
            self._held = tail
        else:
            out.append(tail)
        return b"".join(out)

    def flush(self) -> bytes:
        """At end of stream: what was held back, unless it is chatter."""
        held, self._held = self._held, b""
        return b"" if CHATTER.match(held) else held


def filter_native_chatter() -> None:
    """Route fd 2 (inherited by child processes) through the chatter filter."""
    global _installed_by
    if _installed_by is not None or not hasattr(os, "fork"):  # Windows: no filter
        return
    stderr_r, stderr_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the filter: reads until every writer of fd 2 has closed it
        os.close(stderr_w)
        os.close(done_w)
        _exec_filter(stderr_r, done_r)
    os.close(stderr_r)
    os.close(done_r)
    terminal = os.dup(2)
    os.dup2(stderr_w, 2)
    os.close(stderr_w)
    _installed_by = os.getpid()
    atexit.register(_sign_off, done_w, terminal, pid)


def filter_child_chatter() -> None:
    """In a child process that shares its parent's filtered fd 2: drop this process's own
    chatter before it reaches that pipe, in a thread. A native line can come in two writes
    ("INFO: ", then the rest); from two processes a line of the other could land between
    them and hide the chatter from the parent's filter. A native crash of the child is
    reported by its parent, so no crash line here; at a normal exit (atexit) the last lines
    (a traceback) are passed on before the process ends."""
    if not hasattr(os, "fork"):  # Windows: no filter
        return
    pipe_r, pipe_w = os.pipe()
    shared = os.dup(2)
    os.dup2(pipe_w, 2)
    os.close(pipe_w)

    def pump() -> None:
        chatter = ChatterFilter()
        while chunk := os.read(pipe_r, 65536):
            _write_to(shared, chatter.feed(chunk))
        _write_to(shared, chatter.flush())

    thread = threading.Thread(target=pump, name="chatter-filter", daemon=True)
    thread.start()

    def drain() -> None:
        sys.stderr.flush()
        os.dup2(shared, 2)  # the pipe's last writer gone: the thread reads to its end
        thread.join(timeout=DRAIN_WAIT_S)

    atexit.register(drain)


def _write_to(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _sign_off(done_w: int, terminal: int, filter_pid: int) -> None:
    """Tell the filter this was a normal exit, then give it a moment to print the last
    lines, so they come before the shell's prompt (it ends once no child holds fd 2)."""
    if os.getpid() != _installed_by:  # a forked child that inherited the handler
        return
    os.write(done_w, SIGN_OFF)
    sys.stderr.flush()
    os.dup2(terminal, 2)
    deadline = time.monotonic() + DRAIN_WAIT_S
    while time.monotonic() < deadline and os.waitpid(filter_pid, os.WNOHANG) == (0, 0):
        time.sleep(0.01)


def _exec_filter(stderr_r: int, done_r: int) -> NoReturn:
    """In the forked filter process: become a fresh interpreter that runs only this file
    (``-I -S``: no site-packages, no environment). The fork holds a copy of everything its
    parent had imported, which the parent's later writes make its own: 22 MB PSS next to
    ``run_live.py``, against ~5 MB for a bare interpreter. Where no interpreter can be
    started (a frozen application), the fork filters itself."""
    # Ignored signals stay ignored through exec (and Python keeps them so): no Ctrl-C can
    # end the filter while the new interpreter starts.
    for signum in FILTER_IGNORES:
        signal.signal(signum, signal.SIG_IGN)
    try:
        for fd in (stderr_r, done_r):
            os.set_inheritable(fd, True)
        os.execv(sys.executable, [sys.executable, "-I", "-S", __file__, str(stderr_r), str(done_r)])
    except OSError:
        _run_filter(stderr_r, done_r)


def _run_filter(stderr_r: int, done_r: int) -> NoReturn:
    """Pass stderr on, filtered, until the installer signs off (then whatever is already in
    the pipe) or until every writer has closed it without a sign-off (a crash). Ctrl-C and
    SIGTERM are ignored already (``_exec_filter``)."""
    chatter = ChatterFilter()
    signed_off = False
    watched = [stderr_r, done_r]
    while not signed_off:
        readable, _, _ = select.select(watched, [], [])
        if done_r in readable:  # helpers such as multiprocessing's forkserver may hold
            signed_off = os.read(done_r, len(SIGN_OFF)) == SIGN_OFF  # stderr a while longer
            watched.remove(done_r)  # signed off, or closed by a crash: nothing more comes
            os.set_blocking(stderr_r, not signed_off)
        if stderr_r not in readable and not signed_off:
            continue
        try:
            while chunk := os.read(stderr_r, 65536):
                _write_all(chatter.feed(chunk))
                if not signed_off:
                    break
            else:  # end of file: every writer is gone
                break
        except BlockingIOError:  # signed off and the pipe is drained
            pass
    _write_all(chatter.flush())
    if not signed_off:
        _write_all(CRASH_LINE.encode())
    os._exit(0)


def _write_all(data: bytes) -> None:
    while data:
        data = data[os.write(2, data) :]


if __name__ == "__main__":  # the filter process, started by _exec_filter
    _run_filter(int(sys.argv[1]), int(sys.argv[2]))
