"""Jobs on disk: one folder per job under ``<data>/jobs/<id>/`` holding ``job.json`` (the
state), ``upload/`` (the video while it waits or runs) and ``out/`` (the runner's files).

Everything a job wrote lies inside its folder, so deleting a job is one ``rmtree``, and the
list survives a restart because it is read back from these folders.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import AtomicFile
from web.names import is_job_id

STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
LOG = "worker.log"  # the worker's stderr, read for its last line if it crashes
CRASHED = "the server stopped while this job ran: upload the video again"


@dataclass
class Job:
    """What a page or script is told about one uploaded video."""

    id: str
    name: str  # the safe file name of the upload; the outputs are named after it
    options: dict[str, Any]
    state: str = "queued"
    progress: float = 0.0
    frames_done: int = 0
    frames_total: int | None = None
    fps: float = 0.0
    error: str = ""
    created: float = field(default_factory=time.time)
    summary: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return asdict(self)


class JobStore:
    """The job folders of one data folder."""

    def __init__(self, data: Path) -> None:
        self.root = Path(data) / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, job_id: str) -> Path:
        if not is_job_id(job_id):  # ids come from URLs: never a path of the client's making
            raise KeyError(job_id)
        return self.root / job_id

    def upload_path(self, job: Job) -> Path:
        return self.folder(job.id) / "upload" / job.name

    def output_root(self, job_id: str) -> Path:
        """What the runner's ``--output`` is: it writes ``<stem>/`` inside."""
        return self.folder(job_id) / "out"

    def save(self, job: Job) -> None:
        with AtomicFile(self.folder(job.id) / "job.json") as out:
            out.write(json.dumps(job.public(), indent=1))

    def load(self, job_id: str) -> Job:
        try:
            raw = json.loads((self.folder(job_id) / "job.json").read_text())
        except (OSError, ValueError):
            raise KeyError(job_id) from None
        return Job(**raw)

    def all(self) -> Iterator[Job]:
        for path in sorted(self.root.iterdir()):
            try:
                yield self.load(path.name)
            except KeyError:
                continue  # a folder being created or removed, or not a job's

    def recover(self) -> list[Job]:
        """After a restart: a job that was running is failed (its partial files removed), a
        queued one whose upload is still there is returned to be queued again."""
        queued = []
        for job in self.all():
            if job.state == "running" or (
                job.state == "queued" and not self.upload_path(job).exists()
            ):
                self.remove_outputs(job.id)
                self.remove_upload(job)
                (self.folder(job.id) / LOG).unlink(missing_ok=True)
                job.state, job.error = "failed", CRASHED
                self.save(job)
            elif job.state == "queued":
                queued.append(job)
        return sorted(queued, key=lambda j: j.created)

    def files(self, job_id: str) -> list[tuple[str, Path]]:
        """``(name, path)`` of every output file; names are relative to the video's folder
        (``cam01_final.trc``, ``joint_angles/cam01_hip_l.csv``)."""
        root = self.output_root(job_id)
        found = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    found.append((path.relative_to(folder).as_posix(), path))
        return found

    def remove_outputs(self, job_id: str) -> None:
        shutil.rmtree(self.output_root(job_id), ignore_errors=True)

    def remove_upload(self, job: Job) -> None:
        shutil.rmtree(self.folder(job.id) / "upload", ignore_errors=True)

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
