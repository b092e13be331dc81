"""Config files are checked against stream/config_schema.py: bad ones fail with one line
before any work starts, partial ones are merged over the project's config.toml."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from core.demo_data import demo_calibration
from stream.config import DEFAULT_CONFIG, ConfigError, load_config
from stream.config_schema import OPTIONAL, SCHEMA, installed_pose_models
from tests.data import REPO


def run(script: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / script), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_schema_and_config_toml_name_the_same_keys() -> None:
    with open(DEFAULT_CONFIG, "rb") as f:
        defaults = tomllib.load(f)
    in_file = {f"{s}.{k}" for s, table in defaults.items() for k in table}
    in_schema = {f"{s}.{k}" for s, table in SCHEMA.items() for k in table}
    assert in_file and in_file == in_schema - OPTIONAL


def test_model_complexity_allows_exactly_the_installed_model_files() -> None:
    import mediapipe

    folder = Path(mediapipe.__file__).parent / "modules" / "pose_landmark"
    present = {p.name for p in folder.glob("pose_landmark_*.tflite")}
    names = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite"}
    names[2] = "pose_landmark_heavy.tflite"
    expected = tuple(level for level, name in names.items() if name in present)
    assert expected and installed_pose_models() == expected


def test_a_partial_file_is_merged_over_the_defaults(tmp_path: Path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text("[subject]\nheight = 1.82\n\n[live.remote]\ndetect = 'tcp://10.0.0.2:5600'\n")
    config = load_config(user)
    defaults = load_config()
    assert config["subject"] == {**defaults["subject"], "height": 1.82}
    assert config["live"]["remote"] == {"detect": "tcp://10.0.0.2:5600"}
    assert {k: v for k, v in config.items() if k not in ("subject", "live")} == {
        k: v for k, v in defaults.items() if k not in ("subject", "live")
    }


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[subject]\nheight = 'tall'\n", ["[subject] height", "'tall'", "between 0.5 and 2.6 m"]),
        ("[subject]\nmass = true\n", ["[subject] mass", "True", "between 10 and 300 kg"]),
        ("[augment]\nmax_gap_frames = 2.5\n", ["max_gap_frames", "2.5", "whole number"]),
        ("[markers]\nestimate_missing = 1\n", ["estimate_missing", "got 1", "true or false"]),
        ("[live]\nqueue = 0\n", ["[live] queue", "got 0", "between 1 and 1000"]),
        ("[live]\ntransport = 'udp'\n", ["transport", "'udp'", '"ipc", "tcp"']),
        ("[viewer]\nhistory_s = -inf\n", ["history_s", "-inf", "above 0"]),
        ("[subject]\nheigth = 1.8\n", ["unknown key 'heigth'", "did you mean 'height'", "'mass'"]),
        ("[subjet]\nheight = 1.8\n", ["unknown section [subjet]", "did you mean [subject]"]),
        ("subject = 3\n", ["[subject]", "must be a table", "got 3"]),
        ("[subject\n", ["not valid TOML", "line 1"]),
        ("[camera]\npitch = 95.0\n", ["[camera] pitch", "95", '"" (estimated from the video)']),
        ("[camera]\nroll = 'left'\n", ["[camera] roll", "'left'", "between -180 and 180"]),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("value", ['""', "nan", "-12.5"])
def test_camera_pitch_is_a_number_or_estimated(tmp_path: Path, value: str) -> None:
    path = tmp_path / "level.toml"
    path.write_text(f"[camera]\npitch = {value}\nroll = {value}\n")
    assert str(load_config(path)["camera"]["pitch"]) == str(tomllib.loads(f"v = {value}")["v"])


def assert_one_error_line(result: subprocess.CompletedProcess[str], words: list[str]) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]


BAD_FILES = [
    ("wrong type", "[subject]\nheight = 'tall'\n", ["[subject] height", "'tall'", "0.5 and 2.6"]),
    (
        "out of range",
        "[detect]\nmin_detection_confidence = 1.5\n",
        ["confidence", "1.5", "0 and 1"],
    ),
    ("unknown key", "[markers]\nfov = 60.0\n", ["unknown key 'fov'", "did you mean 'fov_deg'"]),
    ("unknown section", "[marker]\nfov_deg = 60.0\n", ["unknown section [marker]", "[markers]"]),
    # MediaPipe aborted the process (SIGABRT) on 7, and would try to download lite for 0
    ("model_complexity 7", "[detect]\nmodel_complexity = 7\n", ["model_complexity", "got 7"]),
    ("model_complexity 0", "[detect]\nmodel_complexity = 0\n", ["model_complexity", "got 0"]),
]


@pytest.mark.parametrize(("case", "text", "words"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_run_offline_rejects_a_bad_config_file(
    tmp_path: Path, case: str, text: str, words: list[str]
) -> None:
    config, out = tmp_path / "bad.toml", tmp_path / "out"
    config.write_text(text)
    result = run("run_offline.py", "--demo", "--quiet", "--output", out, "--config", config)
    assert_one_error_line(result, words)
    assert not out.exists() or not any(out.rglob("*"))


@pytest.mark.parametrize(
    ("text", "flags", "words"),
    [
        ("[live]\nqueue = 'two'\n", [], ["[live] queue", "'two'"]),
        ("[detect]\nmodel_complexity = 7\n", [], ["model_complexity", "got 7"]),
        ("", ["--height", "-1"], ["--height", "-1.0", "between 0.5 and 2.6 m"]),
        ("", ["--camera-pitch", "91"], ["--camera-pitch", "91.0", "between -90 and 90 deg"]),
        (
            "",
            [
                "--camera-roll",
                "5",
                "--calibration",
                str(demo_calibration()),
                "--calibration-camera",
                "cam01",
            ],
            ["--camera-pitch/--camera-roll contradict the pose in --calibration"],
        ),  # fmt: skip
        ("", ["--publish", "udp://0.0.0.0:1"], ["--publish", "'udp://0.0.0.0:1'", "endpoint"]),
    ],
)
def test_run_live_checks_file_and_flags_with_the_same_rules(
    tmp_path: Path, text: str, flags: list[str], words: list[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    source = tmp_path / "never-opened.mp4"
    result = run("run_live.py", "--no-viewer", "--source", source, "--config", config, *flags)
    assert_one_error_line(result, words)


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = run("run_offline.py", "--demo", "--config", tmp_path / "nope.toml")
    assert_one_error_line(result, ["config file not found", "nope.toml"])


def test_a_partial_config_file_runs_with_the_defaults_for_the_rest(tmp_path: Path) -> None:
    """A file with two sections only: everything else comes from config.toml."""
    out = tmp_path / "from-config"
    config = tmp_path / "partial.toml"
    config.write_text(f'[output]\ndir = "{out}"\n\n[subject]\nheight = 1.82\n')
    result = run("run_offline.py", "--demo", "--quiet", "--config", config)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in out.rglob("*_final.trc")] == ["cam01_final.trc"]
