"""Runs queued jobs in worker processes (``web/worker.py``), a few at a time, and tells the
pages about every change. The server's event loop only reads the workers' progress lines,
so it stays responsive however long a video takes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from web.jobs import FINISHED, LOG, Job, JobStore
from web.process import die_with_parent

REPO = Path(__file__).resolve().parent.parent
SAVE_EVERY_S = 1.0  # job.json is rewritten at most this often while a job runs
STOP_GRACE_S = 10.0  # a cancelled worker gets this long to unwind before SIGKILL


class Changes:
    """A counter the pages' event streams wait on."""

    def __init__(self) -> None:
        self.version = 0
        self._cond = asyncio.Condition()

    async def notify(self) -> None:
        async with self._cond:
            self.version += 1
            self._cond.notify_all()

    async def wait(self, seen: int, timeout_s: float) -> int:
        """The version once it is past ``seen`` (or after ``timeout_s``, unchanged)."""
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: self.version > seen), timeout_s)
            except TimeoutError:
                pass
            return self.version


class JobManager:
    def __init__(self, store: JobStore, workers: int, keep_uploads: bool) -> None:
        self.store = store
        self.workers = workers
        self.keep_uploads = keep_uploads
        self.jobs: dict[str, Job] = {}
        self.changes = Changes()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Read the jobs back (a job that was running is now failed) and start the workers."""
        queued = self.store.recover()
        self.jobs = {job.id: job for job in self.store.all()}
        for job in queued:
            self._queue.put_nowait(job.id)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for job_id in list(self._procs):
            await self.cancel(job_id, state="failed", error="the server was stopped")
        for task in self._tasks:
            task.cancel()

    async def submit(self, job: Job) -> None:
        self.store.save(job)
        self.jobs[job.id] = job
        self._queue.put_nowait(job.id)
        await self.changes.notify()

    async def cancel(self, job_id: str, state: str = "cancelled", error: str = "") -> None:
        """Stop a queued or running job; its outputs are removed, it stays listed."""
        job = self.jobs[job_id]
        if job.state in FINISHED:
            return
        job.state, job.error = state, error
        proc = self._procs.get(job_id)
        if proc is None:  # still queued: the worker loop skips it
            self._clean(job, keep_outputs=False)
            self.store.save(job)
            await self.changes.notify()
            return
        finished = self._finished[job_id]
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(finished.wait(), STOP_GRACE_S)
        except TimeoutError:
            proc.kill()
            await finished.wait()

    async def delete(self, job_id: str) -> str:
        """Cancel an unfinished job, remove a finished one with everything it wrote."""
        job = self.jobs[job_id]
        if job.state not in FINISHED:
            await self.cancel(job_id)
            return "cancelled"
        del self.jobs[job_id]
        self.store.remove(job_id)
        await self.changes.notify()
        return "removed"

    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            job = self.jobs.get(job_id)
            if job is not None and job.state == "queued":
                await self._run(job)

    async def _run(self, job: Job) -> None:
        job.state = "running"
        self.store.save(job)
        await self.changes.notify()
        self._finished[job.id] = asyncio.Event()
        folder = self.store.folder(job.id)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        with open(folder / LOG, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "web.worker", str(folder),
                stdout=asyncio.subprocess.PIPE, stderr=log, stdin=asyncio.subprocess.DEVNULL,
                cwd=REPO, env=env, preexec_fn=die_with_parent,
            )  # fmt: skip
        self._procs[job.id] = proc
        summary, error = None, ""
        saved = time.monotonic()
        assert proc.stdout is not None
        async for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "frames_done" in message and job.state == "running":
                job.frames_done = int(message["frames_done"])
                job.frames_total = message["frames_total"]
                job.fps = float(message["fps"])
                if job.frames_total:
                    job.progress = min(job.frames_done / job.frames_total, 0.99)
                if time.monotonic() - saved > SAVE_EVERY_S:
                    self.store.save(job)
                    saved = time.monotonic()
                await self.changes.notify()
            summary = message.get("summary", summary)
            error = message.get("error", error)
        returncode = await proc.wait()
        del self._procs[job.id]
        if job.state == "running":
            if returncode == 0 and summary is not None:
                job.state, job.progress, job.summary = "done", 1.0, summary
            else:
                job.state = "failed"
                job.error = error or self._crash_line(folder / LOG, returncode)
        self._clean(job, keep_outputs=job.state == "done")
        self.store.save(job)
        self._finished.pop(job.id).set()
        await self.changes.notify()

    def _clean(self, job: Job, keep_outputs: bool) -> None:
        if not keep_outputs:
            self.store.remove_outputs(job.id)
        if not self.keep_uploads:
            self.store.remove_upload(job)
        (self.store.folder(job.id) / LOG).unlink(missing_ok=True)

    @staticmethod
    def _crash_line(log: Path, returncode: int) -> str:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1] if lines else "no message"
        return f"the worker process ended with status {returncode}: {last}"
