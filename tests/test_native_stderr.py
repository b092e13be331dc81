"""MediaPipe's native chatter is filtered from stderr; real messages and crashes are not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stream.native_stderr import ChatterFilter
from tests.data import REPO

TFLITE_INFO = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
ABSL_WARNING = (
    b"W0000 00:00:1795999884.008092    8094 inference_feedback_manager.cc:114] Feedback "
    b"manager requires a model with a single signature inference.\n"
)
ABSL_ERROR = b"E0000 00:00:1795999884.008092    8094 calculator_graph.cc:887] model failed\n"
# liblsl (run_live --lsl) at its first call, and one of its real errors
LSL_INFO = (
    b"2026-11-30 06:06:22.694 (   8.432s) [        8E53CB80]         api_config.cpp:126   "
    b"INFO| Loaded default config\n"
)
LSL_ERROR = (
    b"2026-11-30 06:06:34.789 (  26.927s) [R_monomocap-ma  ]      data_receiver.cpp:375    "
    b"ERR| Stream transmission broke off (Input stream error.); re-connecting...\n"
)


def filtered(*chunks: bytes) -> bytes:
    chatter = ChatterFilter()
    return b"".join(chatter.feed(c) for c in chunks) + chatter.flush()


def test_chatter_lines_are_dropped_and_errors_pass() -> None:
    text = TFLITE_INFO + b"real message\n" + ABSL_WARNING + ABSL_ERROR
    assert filtered(text) == b"real message\n" + ABSL_ERROR


def test_liblsl_info_lines_are_dropped_and_its_errors_pass() -> None:
    assert filtered(LSL_INFO + b"real message\n" + LSL_ERROR) == b"real message\n" + LSL_ERROR
    assert filtered(LSL_INFO[:30], LSL_INFO[30:70], LSL_INFO[70:]) == b""  # split writes
    assert filtered(b"2026 was a good year\n") == b"2026 was a good year\n"


def test_chatter_after_a_progress_bar_update_is_dropped() -> None:
    """As seen on the demo: a tqdm update ends without newline, then the warning arrives."""
    bar = b"\rcam01:   0%|          | 0/100 [00:00<?, ?frame/s]"
    assert filtered(bar, ABSL_WARNING, b"\rcam01:   1%|") == bar + b"\rcam01:   1%|"


def test_chatter_split_across_writes_is_held_then_dropped() -> None:
    assert filtered(b"progress\n" + ABSL_WARNING[:3], ABSL_WARNING[3:20], ABSL_WARNING[20:]) == (
        b"progress\n"
    )
    assert filtered(b"I", b"t works\n") == b"It works\n"  # held only while it could be chatter


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_native_crash_ends_in_one_error_line() -> None:
    crash = run_python(
        "from stream.native_stderr import filter_native_chatter\n"
        "filter_native_chatter()\n"
        "import ctypes, sys\n"
        "print('before the crash', file=sys.stderr, flush=True)\n"
        "ctypes.CDLL(None).abort()\n"
    )
    assert crash.returncode < 0, "the process died of a signal"
    lines = crash.stderr.splitlines()
    assert lines[0] == "before the crash"
    assert [line for line in lines if line.startswith("error:")] == lines[-1:]
    assert "crash in native code" in lines[-1]


def test_normal_exit_adds_nothing() -> None:
    done = run_python(
        "from stream.native_stderr import filter_native_chatter\n"
        "filter_native_chatter()\n"
        "import sys\n"
        "print('error: bad flag', file=sys.stderr)\n"
        "sys.exit(2)\n"
    )
    assert done.returncode == 2
    assert done.stderr == "error: bad flag\n"


def run_demo(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run_offline.py", "--demo", "--output", str(tmp_path), *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_first_run_shows_only_progress_and_summary(tmp_path: Path) -> None:
    quiet = run_demo(tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    segments = [s for s in quiet.stderr.replace("\r", "\n").splitlines() if s.strip()]
    assert segments, "the progress bar is shown"
    assert all(s.startswith("cam01:") and "frame/s]" in s for s in segments), segments
    assert quiet.stdout.startswith("cam01.mp4: 100 frames")
    verbose = run_demo(tmp_path / "verbose", "--verbose")
    assert "TensorFlow Lite" in verbose.stderr, "--verbose shows MediaPipe's own messages"
