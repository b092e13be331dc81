"""run_offline.py as a user runs it: real demo video in, files out; bad input, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.demo_data import demo_video
from tests.data import REPO


def run_offline(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "run_offline.py"), "--quiet", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_demo_writes_the_three_files_and_run_json(tmp_path: Path) -> None:
    result = run_offline("--demo", "--output", tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "cam01"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["cam01_final.trc", "cam01_initial.trc", "cam01_raw_landmarks.csv", "run.json"]
    assert "100 frames" in result.stdout and "person detected in" in result.stdout
    final = (folder / "cam01_final.trc").read_text().splitlines()
    assert final[2].split("\t")[2:4] == ["100", "64"]
    raw = (folder / "cam01_raw_landmarks.csv").read_text().splitlines()
    assert len(raw) == 101 and raw[0].startswith("frame,time_s,person,swap_repaired,nose_x_px")


def assert_clean_failure(result: subprocess.CompletedProcess[str], words: str, out: Path) -> None:
    assert result.returncode != 0
    errors = error_lines(result)
    assert len(errors) == 1, result.stderr
    assert words in errors[0]
    leftovers = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert leftovers == []


def test_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_offline(tmp_path / "missing.mp4", "--output", out)
    assert_clean_failure(result, "video not found", out)


def test_not_a_video(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello\n" * 1000)
    out = tmp_path / "out"
    assert_clean_failure(run_offline(fake, "--output", out), "not a readable video", out)


def test_truncated_video(tmp_path: Path) -> None:
    data = demo_video("cam02").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    out = tmp_path / "out"
    assert_clean_failure(run_offline(cut, "--output", out), "truncated", out)


def test_nobody_in_video(tmp_path: Path) -> None:
    path = tmp_path / "empty_room.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
    rng = np.random.default_rng(1)
    for _ in range(20):
        writer.write(rng.integers(90, 110, (240, 320, 3), dtype=np.uint8))
    writer.release()
    out = tmp_path / "out"
    assert_clean_failure(run_offline(path, "--output", out), "nobody was detected", out)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--height", "-1"], "--height must be between"),
        (["--height", "tall"], "--height"),
        (["--mass", "0"], "--mass must be between"),
        (["--visibility-min", "1.5"], "--visibility-min must be between"),
        (["--frobnicate"], "unrecognized arguments"),
        (["--lift", "mediapipe", "--camera-pof"], "contradicts"),
        (["--lift", "depth"], "invalid choice"),
    ],
)
def test_bad_flag_values(tmp_path: Path, flags: list[str], words: str) -> None:
    out = tmp_path / "out"
    result = run_offline("--demo", "--output", out, *flags)
    assert result.returncode == 2
    assert_clean_failure(result, words, out)


def test_no_video_given() -> None:
    result = run_offline()
    assert result.returncode == 2 and "no video given" in error_lines(result)[0]


def test_a_failing_stage_fails_the_run_with_its_name(tmp_path: Path) -> None:
    """A stage that raises: one error line naming it, non-zero exit, no files left."""
    config = tmp_path / "broken.toml"
    text = (REPO / "config.toml").read_text()
    config.write_text(text.replace('"stages.angles:JointAngles"', '"tests.broken_stage:Broken"'))
    out = tmp_path / "out"
    result = run_offline("--demo", "--output", out, "--config", config)
    assert_clean_failure(result, "stage 'broken' failed on frame 10 of cam01", out)
