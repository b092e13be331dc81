"""Batch jobs as Ray tasks: one task per video, on a local Ray instance or a cluster.

Ray is optional (``uv sync --extra ray``); only ``--ray`` imports this module. Each task
asks for ``[batch] ray_cpus`` CPUs and runs the video exactly as a local worker would
(``offline.batch.JobRunner``: pipelined detection, the same stages, the same files). A task
writes into the output folder itself, which on a cluster must be storage every node sees
at the same path (NFS, a mounted bucket), or with ``collect`` into a temporary folder of its
node and returns the files, which this process then writes. Results arrive as tasks finish;
a task that dies (its worker crashed, its node was lost) fails its video only.

The tasks import this project: on the local instance they find it through ``PYTHONPATH``;
a cluster gets the code as Ray's ``working_dir`` (sources only), while each node must have
the project's Python environment installed (``uv sync --frozen --extra ray``, the same
Python and packages as here).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.atomic import AtomicFile, AtomicFolder, OutputError
from core.provenance import Invocation
from offline.batch import BatchError, Job, JobRunner, VideoResult

PROJECT = Path(__file__).resolve().parent.parent
SHIPPED_EXCLUDES = [".venv", ".git", "data", "**/__pycache__", "*.npz", "*.onnx.data"]
_runner: JobRunner | None = None  # one per Ray worker process, kept for its next tasks


def _task(
    job: Job,
    config: Mapping[str, Any],
    invocation: Invocation,
    collect: bool,
    quiet: bool,
    sequential: bool,
) -> VideoResult:
    """One video, in a Ray worker process."""
    global _runner
    if _runner is None:
        _runner = JobRunner(config, invocation, quiet, sequential)
    if not collect:
        return _runner.run(job)
    with tempfile.TemporaryDirectory(prefix="monomocap-task-") as tmp:
        result = _runner.run(job, Path(tmp))
        folder = Path(tmp) / job.folder.name
        if result.status == "done":
            result.files = {
                str(p.relative_to(folder)): p.read_bytes()
                for p in sorted(folder.rglob("*"))
                if p.is_file()
            }
        return result


def _write_collected(job: Job, files: Mapping[str, bytes]) -> None:
    """A task's returned files into the job's folder, whole or not at all."""
    folder = AtomicFolder(job.folder)
    try:
        for name, data in files.items():
            with AtomicFile(folder.tmp_path / name, binary=True) as f:
                f.write(data)
        folder.commit()
    except BaseException:
        folder.discard()
        raise


def connect(address: str, num_cpus: int | None) -> None:
    """``ray.init``: a new local instance (``num_cpus``: its CPUs, None: all) without an
    address, else the cluster at ``address`` (``ray://host:10001`` or ``auto``)."""
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    # Under `uv run`, Ray would start its workers with `uv run` too, which syncs the default
    # dependencies only and so drops Ray itself: the workers use this interpreter instead.
    # Ray reads this when imported, hence the import here.
    os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"
    import ray

    try:
        if address:
            excludes = {"working_dir": str(PROJECT), "excludes": SHIPPED_EXCLUDES}
            ray.init(address=address, runtime_env=excludes, **quiet)
        else:  # the local instance's workers inherit this environment
            paths = [str(PROJECT), *filter(None, [os.environ.get("PYTHONPATH")])]
            os.environ["PYTHONPATH"] = os.pathsep.join(paths)
            ray.init(num_cpus=num_cpus, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise BatchError(f"cannot start or reach {where}: {exc}") from None


def run_ray(
    jobs: Sequence[Job],
    address: str,
    config: Mapping[str, Any],
    invocation: Invocation,
    collect: bool,
    quiet: bool,
    num_cpus: int | None = None,
    sequential: bool = False,
) -> Iterator[VideoResult]:
    """The results of ``jobs`` as their tasks finish (see the module doc)."""
    if not jobs:
        return
    connect(address, num_cpus)
    import ray
    from ray.exceptions import RayError

    task = ray.remote(_task).options(num_cpus=float(config["batch"]["ray_cpus"]), max_retries=0)
    args = (config, invocation, collect, quiet, sequential)
    pending = {task.remote(job, *args): job for job in jobs}
    try:
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready)
            try:
                result = ray.get(ready)
            except RayError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                result = VideoResult(str(job.video), "failed", error=f"Ray task failed: {first}")
            if result.files is not None:
                try:
                    _write_collected(job, result.files)
                except OutputError as exc:
                    result.status, result.error = "failed", str(exc)
                result.files = None
            yield result
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        ray.shutdown()
