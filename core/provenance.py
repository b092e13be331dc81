"""Provenance: which software, models, settings and input made an output folder.

Every output folder gets a ``run.json`` (``RunRecord``), and the TRC, MOT and C3D
headers name ``software_label()``, so a result found later can be traced to the run that
made it. Nothing here may fail a run: what cannot be found reads ``"unknown"``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import subprocess
import sys
import threading
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from core.atomic import AtomicFile

PROJECT = Path(__file__).resolve().parent.parent
SOFTWARE = "monomocap"
UNKNOWN = "unknown"
RUN_JSON = "run.json"
PACKAGES = ("mediapipe", "onnxruntime", "pose2sim", "numpy", "opencv-contrib-python", "numba")
_CHUNK = 1 << 20


@cache
def software_version() -> str:
    """The version in the project's pyproject.toml (the installed metadata as fallback)."""
    try:
        with open(PROJECT / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass
    try:
        return metadata.version(SOFTWARE)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def software_label() -> str:
    """'monomocap 0.1.0': the name the file headers carry."""
    return f"{SOFTWARE} {software_version()}"


@cache
def git_commit(folder: Path = PROJECT) -> dict[str, Any]:
    """The checkout's commit and whether tracked files differ from it; "unknown" outside
    a git checkout or without git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": UNKNOWN, "modified": None}
    return {"commit": commit, "modified": dirty}


def sha256_file(path: Path) -> str:
    """The file's SHA-256, read in chunks (videos can be large); "unknown" if unreadable."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return UNKNOWN
    return digest.hexdigest()


def file_entry(path: Path | str) -> dict[str, str]:
    """``{"path": absolute path, "sha256": ...}`` of a file."""
    path = Path(path).resolve()
    return {"path": str(path), "sha256": sha256_file(path)}


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = UNKNOWN
    return versions


@dataclass
class Invocation:
    """How the program was started: made by the entry point, carried to the recorder."""

    argv: list[str] = field(default_factory=lambda: [sys.executable, *sys.argv])
    started: str = field(default_factory=utc_now)


def software() -> dict[str, Any]:
    """Name, version, commit and the versions of the packages that compute the results."""
    return {
        "name": SOFTWARE,
        "version": software_version(),
        **git_commit(),
        "python": sys.version.split()[0],
        "packages": _package_versions(),
    }


class RunRecord:
    """The ``run.json`` of one recording, begun when its first frame arrives.

    The slow parts (the input's hash, git, the model hashes) are computed in a thread from
    then on (hashing and subprocesses release the GIL), so a large video or a slow git
    never holds up the end of a live run, which must stop within 2 s.
    """

    def __init__(
        self, invocation: Invocation, config: Mapping[str, Any], source: str, models: Sequence[Path]
    ) -> None:
        """``source``: a video file, or a camera/stream (no hash); ``models``: the model
        files the run loads."""
        self.started = utc_now()
        self._fixed = {"command": list(invocation.argv), "program_started": invocation.started}
        self._config = plain(config)
        calibration = config.get("camera", {}).get("calibration") or ""
        self._slow: dict[str, Any] = {}
        self._thread = threading.Thread(
            target=self._compute, args=(source, models, calibration), name="run-json", daemon=True
        )
        self._thread.start()

    def _compute(self, source: str, models: Sequence[Path], calibration: str) -> None:
        self._slow = {
            "software": software(),
            "input": file_entry(source)
            if Path(source).is_file()
            else {"source": source, "sha256": None},
            "models": [file_entry(p) for p in models],
            "calibration": file_entry(calibration) if calibration else None,
        }

    @property
    def ready(self) -> bool:
        """The slow parts are done: ``as_dict`` answers at once (a loop that must not block,
        like the live sink's control socket, asks this first)."""
        return not self._thread.is_alive()

    def as_dict(self) -> dict[str, Any]:
        """Everything, with ``ended`` = now (waits for the slow parts)."""
        self._thread.join()
        slow = {key: self._slow.get(key, UNKNOWN) for key in ("software", "input", "models")}
        return {
            "software": slow["software"],
            **self._fixed,
            "input": slow["input"],
            "models": slow["models"],
            "calibration": self._slow.get("calibration"),
            "config": self._config,
            "started": self.started,
            "ended": utc_now(),
        }

    def write(self, folder: Path) -> Path:
        """Write ``folder/run.json``, atomically."""
        path = Path(folder) / RUN_JSON
        with AtomicFile(path) as f:
            f.write(json.dumps(plain(self.as_dict()), indent=2, allow_nan=False) + "\n")
        return path


def settings_sha256(config: Mapping[str, Any]) -> str:
    """A hash of a configuration as ``run.json`` records it: the same for a config in memory
    and for the one read back from a ``run.json`` (a batch's resume key)."""
    text = json.dumps(plain(config), sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def plain(value: Any) -> Any:
    """``value`` as JSON holds it: NaN/inf as null (JSON has no NaN), paths as strings."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, str | int | float | bool | None) else str(value)
