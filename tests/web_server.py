"""``run_web.py`` as a real server process for the web tests, and a tiny HTTP client
(the standard library's; a multipart upload is a few lines)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.data import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer:
    """One ``run_web.py`` process on a free port; ``restart`` keeps its data folder."""

    def __init__(self, data: Path, *args: str, token: str = "") -> None:
        self.data = data
        self.token = token  # sent with every request unless told otherwise
        self.args = (*args, "--token", token) if token else args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"{data.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> WebServer:
        command = [sys.executable, str(REPO / "run_web.py"), "--port", str(self.port)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*command, "--data", str(self.data), *self.args],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if self.get("/api/health")["ok"]:
                    return self
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"run_web.py did not answer within {timeout_s} s")

    def stop(self, sig: int = signal.SIGINT) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def restart(self) -> WebServer:
        self.stop()
        return self.start()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, bytes]:
        headers = dict(headers or {})
        if self.token and auth:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        req = urllib.request.Request(self.url + path, body, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (status, body)
        return json.loads(body)

    def post_video(
        self, video: Path, name: str | None = None, chunked: bool = False, **fields: Any
    ) -> tuple[int, Any]:
        """``POST /api/jobs`` with ``video`` as the file (sent as ``name``) and ``fields``;
        ``chunked``: without Content-Length (chunked transfer encoding, 64 kB pieces)."""
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
            .encode() for key, value in fields.items()
        ]  # fmt: skip
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="video"; '
            f'filename="{name or video.name}"\r\nContent-Type: video/mp4\r\n\r\n'
        )
        body = (
            b"".join(parts)
            + head.encode()
            + video.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
        status, answer = self.request("POST", "/api/jobs", pieces if chunked else body, headers)
        return status, json.loads(answer)

    def wait_job(self, job_id: str, until: tuple[str, ...], timeout_s: float = 240.0,
                 frames: int = 0) -> dict[str, Any]:  # fmt: skip
        """The job once its state is one of ``until`` (and ``frames`` frames are done)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.get(f"/api/jobs/{job_id}")
            if job["state"] in until and job["frames_done"] >= frames:
                return job
            assert job["state"] not in ("failed",) or "failed" in until, job
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} not {until} within {timeout_s} s: {job}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
