"""The private folder of one live run, and the removal of folders left by dead runs.

The folder holds the ipc:// sockets; the supervisor removes it at exit. A supervisor that
is killed (SIGKILL, out of memory) cannot, so the folder records its owner (pid and start
time, and multiprocessing's own ``pymp-*`` folder of that process, which holds the
forkserver's socket) and the next start removes every run folder whose owner is gone.
A folder whose owner still runs, or that has no owner file yet (a run starting this very
moment), is never touched.
"""

from __future__ import annotations

import multiprocessing.util
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "monomocap-run-"
OWNER_FILE = "owner"
PYMP_PREFIX = "pymp-"


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux); None if it does not exist.

    Together with the pid it names one process, even after the pid is reused.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc (not Linux): the pid alone must do
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


def make_run_dir() -> Path:
    """A fresh run folder owned by this process (stale ones are removed first)."""
    remove_stale_run_dirs()
    path = Path(tempfile.mkdtemp(prefix=PREFIX))
    pid = os.getpid()
    owner = f"{pid} {process_start_time(pid)}\n{multiprocessing.util.get_temp_dir()}\n"
    tmp = path / f".{OWNER_FILE}"
    tmp.write_text(owner)
    tmp.rename(path / OWNER_FILE)  # complete or absent, never half-written
    return path


def remove_stale_run_dirs(parent: Path | None = None) -> list[Path]:
    """Remove the run folders (and their owners' ``pymp-*`` folders) of dead runs."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for path in parent.glob(f"{PREFIX}*"):
        try:
            pid_line, pymp_line = (path / OWNER_FILE).read_text().splitlines()[:2]
            pid, start = (int(v) for v in pid_line.split())
        except (OSError, ValueError):  # no owner yet, or not ours: leave it
            continue
        if process_start_time(pid) in (start, 0):
            continue  # the owner is alive
        pymp = Path(pymp_line)
        if pymp.name.startswith(PYMP_PREFIX) and pymp.parent == parent:
            shutil.rmtree(pymp, ignore_errors=True)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
