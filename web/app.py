"""The HTTP API, the event stream of the job list, the live WebSocket and the pages.

Starlette on uvicorn: one async process serves the pages, streams the job list as
server-sent events and bridges the live stream over a WebSocket, while the videos are
processed in worker processes (``web/manager.py``).
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from core.marker_sets import MARKERS_64
from core.provenance import software_version
from stages.capture import SourceError, VideoSource
from stream.config import ConfigError
from transports.schema import API_VERSION
from viewer.skeleton import MARKER_BONES, marker_side
from web.jobs import Job, JobStore
from web.live import Browser, LiveError, LiveSession
from web.manager import JobManager
from web.names import BadName, new_job_id, safe_video_name
from web.options import job_config, parse_options
from web.results import replay_data

STATIC = Path(__file__).resolve().parent / "static"
PAGES = {"/": "index.html", "/jobs/{id}": "job.html", "/live": "live.html"}
EVENT_KEEPALIVE_S = 15.0
FORM_OVERHEAD = 65536  # bytes a multipart body may carry beyond the video (fields, headers)


@dataclass(frozen=True)
class Settings:
    data: Path
    max_upload_bytes: int
    workers: int
    keep_uploads: bool
    truncation_tolerance: float
    live_publish: str
    live_control: str
    live_queue: int


class TooLarge(Exception):
    """The request body passed the upload limit."""


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(settings: Settings) -> Starlette:
    store = JobStore(settings.data)
    manager = JobManager(store, settings.workers, settings.keep_uploads)
    live = LiveSession(
        settings.data, settings.live_publish, settings.live_control, settings.live_queue
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await manager.start()
        yield
        await live.stop()
        await manager.stop()

    def job_or_404(request: Request) -> Job:
        job = manager.jobs.get(request.path_params["id"])
        if job is None:
            raise KeyError(request.path_params["id"])
        return job

    def finished_files(job: Job) -> list[tuple[str, Path]]:
        """A done job's files; none while it runs (the runner's temporaries are not
        results)."""
        return store.files(job.id) if job.state == "done" else []

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "version": software_version(), "api": API_VERSION})

    async def skeleton(request: Request) -> Response:
        names = [name for bone in MARKER_BONES for name in bone]
        return JSONResponse(
            {
                "bones": MARKER_BONES,
                "sides": {n: marker_side(n) for n in names},
                "markers": list(MARKERS_64),  # the order of the live stream's markers
            }
        )

    async def list_jobs(request: Request) -> Response:
        return JSONResponse({"jobs": [job.public() for job in manager.jobs.values()]})

    async def get_job(request: Request) -> Response:
        return JSONResponse(job_or_404(request).public())

    async def create_job(request: Request) -> Response:
        limit = settings.max_upload_bytes
        too_large = error(413, f"the upload is larger than the limit of {limit} bytes")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
            return too_large
        counted = Request(request.scope, _limited(request.receive, limit + FORM_OVERHEAD))
        try:
            form = await counted.form(max_files=1, max_fields=32)
        except TooLarge:
            return too_large
        except Exception as exc:  # the multipart parser raises its own assorted types
            return error(400, f"not a multipart form with a 'video' file: {exc}")
        try:
            upload = form.get("video")
            if not isinstance(upload, UploadFile):
                return error(400, "no file in the form's 'video' field")
            try:
                name = safe_video_name(upload.filename or "")
                options = parse_options({k: v for k, v in form.items() if k != "video"})
                await asyncio.to_thread(job_config, options)
            except BadName as exc:
                return error(415, str(exc))
            except (ValueError, ConfigError) as exc:
                return error(400, str(exc))
            job = Job(id=new_job_id(), name=name, options=options)
            path = store.upload_path(job)
            path.parent.mkdir(parents=True)
            try:
                await asyncio.to_thread(_save, upload, path)
                if path.stat().st_size > limit:
                    raise TooLarge()
                await asyncio.to_thread(_probe, path, settings.truncation_tolerance)
            except TooLarge:
                store.remove(job.id)
                return too_large
            except SourceError as exc:
                store.remove(job.id)
                return error(415, str(exc).replace(str(path), name))
            except BaseException:
                store.remove(job.id)
                raise
        finally:
            await form.close()
        await manager.submit(job)
        return JSONResponse({"id": job.id}, status_code=201)

    async def delete_job(request: Request) -> Response:
        job = job_or_404(request)
        return JSONResponse({"id": job.id, "result": await manager.delete(job.id)})

    async def list_files(request: Request) -> Response:
        job = job_or_404(request)
        files = finished_files(job)
        return JSONResponse({"files": [{"name": n, "size": p.stat().st_size} for n, p in files]})

    async def get_file(request: Request) -> Response:
        job = job_or_404(request)
        path = dict(finished_files(job))[request.path_params["name"]]  # a lookup, not a path
        return FileResponse(path, filename=path.name)

    async def archive(request: Request) -> Response:
        job = job_or_404(request)
        files = finished_files(job)
        if not files:
            return error(404, "this job has no files (not done, failed, or cancelled)")
        data = await asyncio.to_thread(_zip, files)
        stem = Path(job.name).stem
        headers = {"content-disposition": f'attachment; filename="{stem}.zip"'}
        return Response(data, media_type="application/zip", headers=headers)

    async def replay(request: Request) -> Response:
        job = job_or_404(request)
        data = await asyncio.to_thread(replay_data, finished_files(job))
        return JSONResponse({"job": job.public(), **data})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            seen = -1
            while not await request.is_disconnected():
                version_now = await manager.changes.wait(seen, EVENT_KEEPALIVE_S)
                if version_now == seen:
                    yield ": keep-alive\n\n"
                    continue
                seen = version_now
                jobs = [job.public() for job in manager.jobs.values()]
                yield f"data: {json.dumps({'jobs': jobs})}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def live_state(request: Request) -> Response:
        return JSONResponse(live.state())

    async def live_start(request: Request) -> Response:
        try:
            body = await request.json()
            source = str(body.get("source", ""))
            options = parse_options({k: v for k, v in body.items() if k in ("height", "mass")})
            await live.start(source, options)
        except (LiveError, ValueError) as exc:
            return error(400, str(exc))
        return JSONResponse(live.state())

    async def live_stop(request: Request) -> Response:
        await live.stop()
        return JSONResponse(live.state())

    async def live_record(request: Request) -> Response:
        try:
            body = await request.json()
            if body.get("on"):
                live.start_recording()
            else:
                live.stop_recording()
        except (LiveError, ValueError) as exc:
            return error(400, str(exc))
        return JSONResponse(live.state())

    async def live_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in live.recorded:
            return error(404, f"no recording called {name!r}")
        return FileResponse(live.recorder.folder / name, filename=name)

    async def live_socket(websocket: WebSocket) -> None:
        await websocket.accept()
        browser = Browser(settings.live_queue)
        live.browsers.add(browser)
        browser.put({"type": "state", **live.state()})

        async def forward() -> None:
            while True:
                await browser.ready.wait()
                browser.ready.clear()
                while browser.messages:
                    await websocket.send_text(json.dumps(browser.messages.popleft()))

        sending = asyncio.create_task(forward())
        try:  # the page sends nothing: reading only notices its close (or the server's)
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            sending.cancel()
            live.browsers.discard(browser)

    def page(name: str) -> Any:
        async def serve(request: Request) -> Response:
            return FileResponse(STATIC / name, media_type="text/html")

        return serve

    routes = [
        Route("/api/health", health),
        Route("/api/skeleton", skeleton),
        Route("/api/jobs", list_jobs, methods=["GET"]),
        Route("/api/jobs", create_job, methods=["POST"]),
        Route("/api/jobs/{id}", get_job, methods=["GET"]),
        Route("/api/jobs/{id}", delete_job, methods=["DELETE"]),
        Route("/api/jobs/{id}/files", list_files),
        Route("/api/jobs/{id}/files/{name:path}", get_file),
        Route("/api/jobs/{id}/archive", archive),
        Route("/api/jobs/{id}/replay", replay),
        Route("/api/events", events),
        Route("/api/live", live_state, methods=["GET"]),
        Route("/api/live", live_start, methods=["POST"]),
        Route("/api/live", live_stop, methods=["DELETE"]),
        Route("/api/live/record", live_record, methods=["POST"]),
        Route("/api/live/files/{name}", live_file),
        WebSocketRoute("/ws/live", live_socket),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Mount("/static", StaticFiles(directory=STATIC)),
        *(Route(path, page(name)) for path, name in PAGES.items()),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, f"not found: {request.url.path}")

    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={KeyError: not_found})


def _limited(receive: Any, limit: int) -> Any:
    """``receive`` that raises ``TooLarge`` once the body passes ``limit`` bytes, so a
    client without (or lying about) Content-Length cannot fill the disk."""
    received = 0

    async def wrapped() -> Any:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise TooLarge()
        return message

    return wrapped


def _save(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)


def _probe(path: Path, tolerance: float) -> None:
    """Raise ``SourceError`` unless ``path`` opens as a video with a first frame."""
    VideoSource(path, realtime=False, truncation_tolerance=tolerance).close()


def _zip(files: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            archive.write(path, name)
    return buffer.getvalue()
