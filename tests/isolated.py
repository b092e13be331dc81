"""Run one function in a fresh Python process and hand back its result.

For the window tests: Qt keeps process-wide state (the application, its X connection,
closed windows whose events are still queued), so windows opened by one test in the pytest
process crashed a later one. Here each call gets its own interpreter, which loads Qt, opens
its window and takes all of it along when it exits; the pytest process never imports Qt.

    python -m tests.isolated CALL RESULT

reads ``(function, args)`` pickled in CALL, runs it, and pickles ``(True, result)`` or
``(False, traceback)`` into RESULT.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def call_isolated(
    function: Callable[..., T],
    *args: Any,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 300.0,
) -> T:
    """``function(*args)`` run in a new ``python`` process with ``env`` added to this one's.

    ``function`` must be importable by name (module level), arguments and result picklable.
    Its output goes to this process's stdout/stderr (pytest captures it); an exception in it,
    a crash or a non-zero exit fails the caller with the child's traceback or status.
    """
    with tempfile.TemporaryDirectory(prefix="isolated-") as folder:
        call, result = Path(folder) / "call.pickle", Path(folder) / "result.pickle"
        call.write_bytes(pickle.dumps((function, args)))
        process = subprocess.run(
            [sys.executable, "-m", "tests.isolated", str(call), str(result)],
            cwd=REPO,
            env={**os.environ, **(env or {})},
            timeout=timeout_s,
        )
        name = f"{function.__module__}.{function.__qualname__}"
        if not result.exists():
            raise AssertionError(f"{name} ended with status {process.returncode} and no result")
        ok, value = pickle.loads(result.read_bytes())
        if not ok:
            raise AssertionError(f"{name} raised in its own process:\n{value}")
        if process.returncode != 0:
            raise AssertionError(f"{name} returned, then its process exited with status "
                                 f"{process.returncode}")  # fmt: skip
        return value


def main(call: Path, result: Path) -> None:
    function, args = pickle.loads(call.read_bytes())
    try:
        outcome = (True, function(*args))
    except BaseException:  # handed to the parent, which fails the test with it
        outcome = (False, traceback.format_exc())
    result.write_bytes(pickle.dumps(outcome))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
