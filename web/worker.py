"""One job in its own process: ``python -m web.worker <data>/jobs/<id>``.

Runs ``offline.runner.process_video`` on the job's upload with the job's options and tells
the server how it goes as JSON lines on stdout: ``{"frames_done", "frames_total", "fps"}``
per frame, then ``{"summary": ...}`` or ``{"error": "..."}``. SIGTERM (cancel, or the
server's death) unwinds like Ctrl-C in ``run_offline.py``: no file of the job is left.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from core.atomic import OutputError
from core.provenance import Invocation
from models.opensim_model import IkError
from offline.runner import NoPersonError, process_video
from stages.capture import SourceError
from stream.config import ConfigError
from stream.native_stderr import filter_native_chatter
from stream.pipeline import StageError
from web.jobs import JobStore
from web.options import job_config

USER_ERRORS = (SourceError, NoPersonError, ConfigError, StageError, OutputError, IkError)
EXIT_STOPPED = 143


class Stopped(BaseException):
    """SIGTERM: unwinds through ``process_video``, which then discards its files."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped()


def emit(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def main(argv: list[str]) -> int:
    invocation = Invocation()
    filter_native_chatter()
    folder = Path(argv[0])
    store = JobStore(folder.parent.parent)
    job = store.load(folder.name)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    start = time.perf_counter()

    def progress(done: int, total: int | None) -> None:
        fps = done / max(time.perf_counter() - start, 1e-6)
        emit({"frames_done": done, "frames_total": total, "fps": round(fps, 2)})

    try:
        config = job_config(job.options)
        summary = process_video(
            store.upload_path(job),
            config,
            store.output_root(job.id),
            progress=False,
            invocation=invocation,
            on_frame=progress,
        )
    except USER_ERRORS as exc:  # named by the upload's name: the server's paths stay private
        message = str(exc).replace(str(store.upload_path(job)), job.name)
        emit({"error": message.replace(str(folder), "<job>")})
        return 1
    except Stopped:
        return EXIT_STOPPED
    frames = max(summary.frames, 1)
    emit(
        {
            "summary": {
                "frames": summary.frames,
                "seconds": round(summary.seconds, 2),
                "fps": round(summary.fps, 2),
                "detected_pct": round(100 * summary.detected / frames, 1),
                "complete_64_pct": round(100 * summary.complete_64 / frames, 1),
                "switches": summary.switches,
            }
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
