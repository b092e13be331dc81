"""Atomic file output: a file, or a folder of files, appears complete under its final name,
or not at all.

Writers stream into a hidden temporary (``.<name>.<host>.<pid>.<random>.tmp``) next to the
final name and rename it into place on ``commit``; ``discard`` leaves nothing behind. The
writer's host and pid are in the name so that:

* the temporaries of this process are removed at exit (``atexit``; a signal that should
  clean up must end the process with an exception, as ``run_offline.py`` does);
* those of a process that is gone (SIGKILL, power loss) are removed the next time any
  process writes into the same folder, while those of a live process, such as a parallel
  job writing into the same output folder, are never touched.

Every ``OSError`` while writing becomes an ``OutputError`` naming the final file and the
cause, so callers report one line instead of a traceback.
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any


def _read_umask() -> int:
    """The process umask (only readable by setting it: done once, at import)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()  # what open() would give a new file
DIR_MODE = 0o777 & ~_read_umask()  # what mkdir() would give a new folder
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"
# .<final name>.<host>.<pid>.<8 random characters of tempfile>.tmp
_TEMP_NAME = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")
_in_flight: set[Path] = set()  # temporaries of this process not yet committed or discarded

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or choose another output folder",
    errno.EDQUOT: "the disk quota is exceeded: free some space or choose another output folder",
    errno.EFBIG: "over the size limit for one file: ulimit -f, or the file system's",
    errno.EACCES: "choose an output folder you may write to",
    errno.EPERM: "choose an output folder you may write to",
    errno.EROFS: "choose an output folder on a writable disk",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another output folder",
    errno.EEXIST: "a part of the path is a file, not a folder: choose another output folder",
}


class OutputError(RuntimeError):
    """A file could not be written; ``path`` is its final name, the message says why."""

    def __init__(self, path: Path, cause: OSError) -> None:
        self.path = Path(path)
        self.cause = cause
        reason = cause.strerror or str(cause)
        hint = _HINTS.get(cause.errno or 0)
        super().__init__(f"cannot write {self.path}: {reason}" + (f" ({hint})" if hint else ""))

    def moved(self, path: Path) -> OutputError:
        """The same error reported under another name (the final one of a staged file)."""
        return OutputError(path, self.cause)


def _temp_prefix(final: Path) -> str:
    return f".{final.name}.{HOST}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries in ``folder`` left by processes of this host that are gone."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or match["host"] != HOST:
            continue
        pid = int(match["pid"])
        if pid <= 0 or _alive(pid):
            continue
        _remove(entry)
        removed.append(entry)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@atexit.register
def remove_in_flight() -> None:
    """Remove every temporary of this process that was neither committed nor discarded."""
    for path in list(_in_flight):
        _remove(path)
        _in_flight.discard(path)


def _make_parent(final: Path) -> None:
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(final, exc) from None
    remove_stale_temporaries(final.parent)


class AtomicFile:
    """A file written under a temporary name and renamed into place on commit.

    Write through ``write`` (the object is file-like for ``csv.writer`` and ``print``):
    errors then name the final file.
    """

    def __init__(self, path: Path, binary: bool = False) -> None:
        self.path = Path(path)
        _make_parent(self.path)
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=_temp_prefix(self.path), suffix=".tmp", dir=self.path.parent
            )
        except OSError as exc:
            raise OutputError(self.path, exc) from None
        self.tmp_path = Path(tmp)
        _in_flight.add(self.tmp_path)
        os.chmod(fd, FILE_MODE)  # mkstemp makes 0600
        self.handle: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline="")

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            raise OutputError(self.path, exc) from None

    def close(self) -> None:
        """Flush and close the temporary without moving it (to read it back)."""
        try:
            self.handle.close()
        except OSError as exc:
            raise OutputError(self.path, exc) from None

    def commit(self) -> Path:
        """Flush to disk and move into place."""
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            os.replace(self.tmp_path, self.path)
        except OSError as exc:
            raise OutputError(self.path, exc) from None
        _in_flight.discard(self.tmp_path)
        return self.path

    def discard(self) -> None:
        """Drop the temporary file; the final name is never touched."""
        try:
            self.handle.close()  # flushes: fails again after a write error
        except OSError:
            pass
        self.tmp_path.unlink(missing_ok=True)
        _in_flight.discard(self.tmp_path)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.discard()
            return
        try:
            self.commit()
        except BaseException:
            self.discard()
            raise


class AtomicFolder:
    """A folder filled under a temporary name, then put in place of the final one whole.

    A previous folder of that name (an earlier run) is replaced by the new one, so the
    final folder always holds one complete set of files.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        _make_parent(self.path)
        try:
            self.tmp_path = Path(
                tempfile.mkdtemp(
                    prefix=_temp_prefix(self.path), suffix=".tmp", dir=self.path.parent
                )
            )
        except OSError as exc:
            raise OutputError(self.path, exc) from None
        _in_flight.add(self.tmp_path)
        os.chmod(self.tmp_path, DIR_MODE)  # mkdtemp makes 0700

    def final_name(self, staged: Path) -> Path:
        """Where a file of the temporary folder will be once committed."""
        return self.path / Path(staged).relative_to(self.tmp_path)

    @contextmanager
    def final_names(self) -> Iterator[None]:
        """Errors about files in the temporary folder name them by their final names."""
        try:
            yield
        except OutputError as exc:
            if not exc.path.is_relative_to(self.tmp_path):
                raise
            raise exc.moved(self.final_name(exc.path)) from None

    def commit(self) -> Path:
        """Move the folder into place, replacing (then deleting) an older one."""
        old = None
        try:
            if self.path.is_dir() and not self.path.is_symlink():
                old = self.path.with_name(f"{_temp_prefix(self.path)}{secrets.token_hex(4)}.tmp")
                _in_flight.add(old)
                os.rename(self.path, old)
            try:
                os.rename(self.tmp_path, self.path)
            except OSError:
                if old is not None:  # put the previous set back
                    os.rename(old, self.path)
                    _in_flight.discard(old)
                    old = None
                raise
        except OSError as exc:
            raise OutputError(self.path, exc) from None
        _in_flight.discard(self.tmp_path)
        if old is not None:
            _remove(old)
            _in_flight.discard(old)
        return self.path

    def discard(self) -> None:
        """Remove the temporary folder and everything in it."""
        _remove(self.tmp_path)
        _in_flight.discard(self.tmp_path)
