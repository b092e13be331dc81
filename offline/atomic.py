"""Atomic file output: a file appears under its final name complete, or not at all.

Writers stream into a hidden temporary file in the destination folder and ``os.replace``
it into place on ``commit``; ``discard`` (or a crash) leaves nothing under the final name.
Used as a context manager it commits on success and discards on any exception.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any


def _read_umask() -> int:
    """The process umask (only readable by setting it: done once, at import)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_read_umask()  # what open() would give a new file


class AtomicFile:
    """A file written under a temporary name and renamed into place on commit."""

    def __init__(self, path: Path, binary: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        self.tmp_path = Path(tmp)
        os.chmod(fd, FILE_MODE)  # mkstemp makes 0600
        self.handle: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline="")

    def commit(self) -> Path:
        """Flush to disk and move into place."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.tmp_path, self.path)
        return self.path

    def discard(self) -> None:
        """Drop the temporary file; the final name is never touched."""
        if not self.handle.closed:
            self.handle.close()
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> IO[Any]:
        return self.handle

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
