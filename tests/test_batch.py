"""Pipelined offline mode and batches (local workers, Ray) as a user runs them: real demo
videos, real processes, files compared byte for byte with single sequential runs."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from bench.clips import read_frames
from core.demo_data import demo_video
from tests.data import REPO

# Every file of a run but run.json (it records the command line and the time).
COMPARED = ("_initial.trc", "_final.trc", "_raw_landmarks.csv", ".c3d", "_angles.mot")
FLAGS = ("--quiet", "--compute-all-joint-angles", "--c3d")


def run_offline(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "run_offline.py"), *FLAGS, *map(str, args)],
        capture_output=True, text=True, cwd=REPO, timeout=400,
    )  # fmt: skip


def outputs(folder: Path) -> dict[str, bytes]:
    """The compared files under ``folder``, by path relative to it."""
    files = {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name.endswith(COMPARED)
    }
    assert files, f"no output files under {folder}"
    return files


def make_clip(video: Path, frames: int, out: Path) -> Path:
    """The first ``frames`` frames of ``video``, re-encoded: a short real clip."""
    images = read_frames(video)[:frames]
    height, width = images[0].shape[:2]
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 60, (width, height))
    for image in images:
        writer.write(image)
    writer.release()
    return out


def summary_rows(output: Path) -> dict[str, dict[str, str]]:
    with open(output / "batch_summary.csv", newline="") as f:
        return {Path(row["video"]).name: row for row in csv.DictReader(f)}


def test_pipelined_equals_sequential_byte_for_byte_on_the_four_demo_cameras(
    tmp_path: Path,
) -> None:
    """On the first 40 frames of each camera, for test time; the whole videos: the command
    in README.md's "Pipelined offline mode"."""
    videos = [
        make_clip(demo_video(f"cam0{i}"), 40, tmp_path / "videos" / f"cam0{i}.mp4")
        for i in range(1, 5)
    ]
    for mode in ("pipelined", "sequential"):
        extra = ["--sequential"] if mode == "sequential" else []
        result = run_offline(*videos, "--output", tmp_path / mode, *extra)
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == "", result.stderr  # MediaPipe's chatter filtered
    pipelined, sequential = outputs(tmp_path / "pipelined"), outputs(tmp_path / "sequential")
    assert len(pipelined) == 4 * 5
    assert pipelined.keys() == sequential.keys()
    for name, data in pipelined.items():
        assert data == sequential[name], name


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray is not installed (uv sync --extra ray)"
)
def test_ray_batch_equals_single_runs_and_a_corrupt_file_fails_alone(tmp_path: Path) -> None:
    clips = [
        make_clip(demo_video(cam), 20, tmp_path / "videos" / sub / f"{cam}.mp4")
        for sub, cam in (("a", "cam01"), ("b", "cam02"), ("b", "cam03"))
    ]
    corrupt = tmp_path / "videos" / "c" / "corrupt.mp4"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    single = run_offline(*clips, "--sequential", "--output", tmp_path / "single")
    assert single.returncode == 0, single.stderr
    # A local Ray instance of 2 CPUs (--workers sets it without an address).
    ray = run_offline("--batch", tmp_path / "videos", "--ray", "--workers", "2",
                      "--output", tmp_path / "ray")  # fmt: skip
    assert ray.returncode == 1, ray.stderr  # one video failed
    rows = summary_rows(tmp_path / "ray")
    assert {name: row["status"] for name, row in rows.items()} == {
        "cam01.mp4": "done", "cam02.mp4": "done", "cam03.mp4": "done", "corrupt.mp4": "failed"
    }  # fmt: skip
    assert "corrupt.mp4 is not a readable video" in rows["corrupt.mp4"]["error"]
    assert all(rows[f"{c}.mp4"]["frames"] == "20" for c in ("cam01", "cam02", "cam03"))
    assert "corrupt.mp4" in ray.stdout and "3 done, 0 skipped, 1 failed of 4 videos" in ray.stdout
    assert not (tmp_path / "ray" / "c").exists()  # nothing written for the corrupt file
    ray_files = outputs(tmp_path / "ray")
    assert ray_files == outputs(tmp_path / "single")
    assert len(ray_files) == 3 * 5


def test_a_batch_resumes_and_redoes_what_changed(tmp_path: Path) -> None:
    """A second run skips finished videos; other settings for one video (its height from
    --subjects) redo that one; --overwrite redoes all."""
    for cam in ("cam01", "cam02"):
        make_clip(demo_video(cam), 10, tmp_path / "videos" / f"{cam}.mp4")
    out = tmp_path / "out"
    runs = {
        "first": [],
        "again": [],
        "subjects": ["--subjects", tmp_path / "subjects.csv"],
        "overwrite": ["--overwrite", "--subjects", tmp_path / "subjects.csv"],
    }
    (tmp_path / "subjects.csv").write_text("video,height,mass\ncam02.mp4,1.85,80\n")
    statuses, ended = {}, {}
    for name, extra in runs.items():
        result = run_offline("--batch", tmp_path / "videos", "--workers", "1",
                             "--output", out, *extra)  # fmt: skip
        assert result.returncode == 0, result.stderr
        statuses[name] = {video: row["status"] for video, row in summary_rows(out).items()}
        ended[name] = {c: (out / c / "run.json").read_text() for c in ("cam01", "cam02")}
    assert statuses == {
        "first": {"cam01.mp4": "done", "cam02.mp4": "done"},
        "again": {"cam01.mp4": "skipped", "cam02.mp4": "skipped"},
        "subjects": {"cam01.mp4": "skipped", "cam02.mp4": "done"},
        "overwrite": {"cam01.mp4": "done", "cam02.mp4": "done"},
    }
    assert ended["again"] == ended["first"]  # skipped: not touched
    assert ended["subjects"]["cam01"] == ended["first"]["cam01"]
    assert '"height": 1.85' in ended["subjects"]["cam02"]
    assert ended["overwrite"]["cam01"] != ended["subjects"]["cam01"]
