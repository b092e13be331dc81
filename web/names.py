"""Uploaded file names: kept for the outputs' names, never used as paths."""

from __future__ import annotations

import re
import secrets

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
JOB_ID = re.compile(r"[0-9a-f]{16}")
MAX_STEM = 80


class BadName(ValueError):
    """The uploaded name cannot be a video's name; the message says why."""


def safe_video_name(name: str) -> str:
    """``name`` reduced to a plain file name of letters, digits, ``-_.``: folders dropped
    (both slash kinds), other characters replaced, no leading dot. Raise for a name whose
    suffix is not a video's."""
    base = re.split(r"[/\\]", name or "")[-1]
    stem, dot, suffix = base.rpartition(".")
    suffix = f".{suffix.lower()}" if dot else ""
    if suffix not in VIDEO_SUFFIXES:
        raise BadName(
            f"{base or 'the file'!s} is not a video file name: use one of "
            f"{', '.join(VIDEO_SUFFIXES)}"
        )
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip(".")[:MAX_STEM] or "video"
    return clean + suffix


def new_job_id() -> str:
    return secrets.token_hex(8)


def is_job_id(text: str) -> bool:
    return JOB_ID.fullmatch(text) is not None
