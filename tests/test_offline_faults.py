"""Output faults with real files, disks, processes and signals: full disks, unwritable
folders, killed writers, same-named inputs, truncated videos; offline and live --record."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.atomic import AtomicFile, AtomicFolder, remove_stale_temporaries
from core.demo_data import demo_video
from core.packet import Packet
from offline.runner import OutputLayoutError, output_dirs
from stages.record import LiveRecorder
from tests.data import REPO
from tests.test_live import LiveRun
from tests.test_offline_cli import error_lines, run_offline

OFFLINE = [sys.executable, str(REPO / "run_offline.py"), "--quiet"]


def everything_under(folder: Path) -> list[Path]:
    """Files, temporaries and folders left under ``folder`` (empty if it does not exist)."""
    return sorted(folder.rglob("*")) if folder.exists() else []


def assert_one_error_nothing_left(
    result: subprocess.CompletedProcess[str], words: str, out: Path
) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = error_lines(result)
    assert len(errors) == 1 and words in errors[0], result.stderr
    assert [p for p in everything_under(out) if not p.is_dir()] == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 200 kB file system (tmpfs): too small for the demo video's files."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the file-size-limit test still runs)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_full_disk_is_one_error_line_and_leaves_nothing(small_disk: Path) -> None:
    out = small_disk / "out"
    result = run_offline("--demo", "--output", out)
    assert_one_error_nothing_left(result, "No space left on device", out)
    assert error_lines(result)[0].startswith(f"error: cannot write {out / 'cam01'}/cam01_")


def test_file_size_limit_is_one_error_line_and_leaves_nothing(tmp_path: Path) -> None:
    """RLIMIT_FSIZE 100 kB: the 190 kB final TRC cannot be written (EFBIG)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    out = tmp_path / "out"
    result = subprocess.run(
        [*OFFLINE, "--demo", "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, preexec_fn=limit,
    )  # fmt: skip
    assert_one_error_nothing_left(result, "File too large", out)
    assert error_lines(result)[0].startswith(f"error: cannot write {out / 'cam01'}/cam01_")


def test_output_folder_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("a file where the output folder should go\n")
    result = run_offline("--demo", "--output", blocker / "run1")
    assert_one_error_nothing_left(result, f"cannot write {blocker / 'run1' / 'cam01'}", blocker)
    assert "Not a directory" in error_lines(result)[0]
    assert everything_under(tmp_path) == [blocker]
    assert blocker.read_text().startswith("a file")


def start_and_wait_for_staging(video: Path, out: Path) -> subprocess.Popen[str]:
    """run_offline.py on ``video``, returned once it writes into its temporary folder."""
    process = subprocess.Popen(
        [*OFFLINE, str(video), "--output", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(out.glob(f".{video.stem}.*.tmp/.{video.stem}_final.trc.*.tmp")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no temporary folder appeared"
        time.sleep(0.02)
    return process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_write_leaves_no_temporary_and_no_partial_set(
    pingpong_video: Path, tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "out"
    process = start_and_wait_for_staging(pingpong_video, out)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: stopped by {signal.Signals(signum).name} during {pingpong_video}: "
        "no files written for it"
    ]
    assert everything_under(out) == []


def test_sigkill_leaves_a_temporary_folder_that_the_next_writer_removes(
    pingpong_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    process = start_and_wait_for_staging(pingpong_video, out)
    process.kill()
    process.communicate(timeout=30)
    stale = list(out.glob(".pingpong.*.tmp"))
    assert len(stale) == 1 and f".{process.pid}." in stale[0].name
    AtomicFile(out / "another.txt").discard()  # any writer into the folder cleans up
    assert everything_under(out) == []


def test_temporaries_of_a_live_writer_are_never_removed(tmp_path: Path) -> None:
    """Two jobs writing into one folder: the temporaries of the running one are kept."""
    code = (
        "import sys, time; from core.atomic import AtomicFile, AtomicFolder; "
        f"f = AtomicFile({str(tmp_path / 'a.trc')!r}); f.write('x'); "
        f"d = AtomicFolder({str(tmp_path / 'walk')!r}); print('ready', flush=True); time.sleep(60)"
    )
    writer = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        temporaries = sorted(tmp_path.iterdir())
        assert len(temporaries) == 2 and all(p.name.endswith(".tmp") for p in temporaries)
        assert remove_stale_temporaries(tmp_path) == []
        assert sorted(tmp_path.iterdir()) == temporaries
    finally:
        writer.kill()
        writer.wait(timeout=10)
    assert sorted(remove_stale_temporaries(tmp_path)) == temporaries
    assert list(tmp_path.iterdir()) == []


def test_temporaries_are_removed_at_exit(tmp_path: Path) -> None:
    """A writer that exits (normally or by an exception) without committing leaves nothing."""
    for ending in ("sys.exit(0)", "raise RuntimeError('boom')"):
        code = (
            "import sys; from core.atomic import AtomicFile, AtomicFolder; "
            f"f = AtomicFile({str(tmp_path / 'a.csv')!r}); f.write('x' * 100000); "
            f"d = AtomicFolder({str(tmp_path / 'walk')!r}); {ending}"
        )
        subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=60)
        assert list(tmp_path.iterdir()) == []


def test_a_folder_is_replaced_whole(tmp_path: Path) -> None:
    """A rerun puts its complete set in place of the previous one, never a mix of both."""
    final = tmp_path / "walk"
    final.mkdir()
    (final / "walk_old.trc").write_text("previous run\n")
    folder = AtomicFolder(final)
    with AtomicFile(folder.tmp_path / "walk_final.trc") as f:
        f.write("new run\n")
    assert sorted(p.name for p in final.iterdir()) == ["walk_old.trc"]
    folder.commit()
    assert [p.name for p in tmp_path.iterdir()] == ["walk"]
    assert [p.name for p in final.iterdir()] == ["walk_final.trc"]


def test_output_folders_of_inputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    single = demo_video("cam01")
    multi = demo_video("cam01", "Demo_MultiPerson")
    assert output_dirs([single], out) == [out]  # <out>/cam01/ as documented
    assert output_dirs([single, demo_video("cam02")], out) == [out, out]
    both = output_dirs([single, multi], out)
    assert both == [out / "Demo_SinglePerson" / "videos", out / "Demo_MultiPerson" / "videos"]
    assert output_dirs([multi, single], out) == both[::-1]  # the order changes nothing
    relative = Path(os.path.relpath(single, Path.cwd()))
    assert output_dirs([relative, multi], out) == both  # nor how a path is written
    with pytest.raises(OutputLayoutError, match="both write into"):
        output_dirs([single, single], out)
    with pytest.raises(OutputLayoutError, match="both write into"):
        output_dirs([tmp_path / "a.mp4", tmp_path / "a.mov"], out)
    with pytest.raises(OutputLayoutError, match="both write into"):
        output_dirs([tmp_path / "a.mp4", tmp_path / "a" / "b.mp4"], out)  # out/a/ holds out/a/b/


def test_two_inputs_with_one_name_write_two_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    single = demo_video("cam01")
    multi = demo_video("cam01", "Demo_MultiPerson")
    result = run_offline(single, multi, "--output", out)
    assert result.returncode == 0, result.stderr
    trcs = [out / demo / "videos" / "cam01" / "cam01_final.trc"
            for demo in ("Demo_SinglePerson", "Demo_MultiPerson")]  # fmt: skip
    assert all(str(trc) in result.stdout for trc in trcs)
    assert trcs[0].read_bytes() != trcs[1].read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["Demo_MultiPerson", "Demo_SinglePerson"]


def test_the_same_video_twice_is_refused(tmp_path: Path) -> None:
    result = run_offline(demo_video("cam01"), "--demo", "--output", tmp_path / "out")
    assert result.returncode == 2
    assert len(error_lines(result)) == 1 and "would both write into" in error_lines(result)[0]
    assert not (tmp_path / "out").exists()


def cut_video(tmp_path: Path) -> Path:
    """cam02 without its last 3% of bytes: the header still says 100 frames, 94 decode."""
    data = demo_video("cam02").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.97)])
    capture = cv2.VideoCapture(str(cut))
    decoded = 0
    while capture.read()[0]:
        decoded += 1
    assert (int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), decoded) == (100, 94)
    capture.release()
    return cut


def test_a_video_missing_its_last_6_percent_fails(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_offline(cut_video(tmp_path), "--output", out)
    assert_one_error_nothing_left(result, "ended after 94 of the 100 frames", out)
    assert "cut.mp4: failed, no files written" in result.stdout  # in the summary too


def test_truncation_within_the_tolerance_is_reported_in_the_summary(tmp_path: Path) -> None:
    config = tmp_path / "tolerant.toml"
    text = (REPO / "config.toml").read_text()
    config.write_text(text.replace("truncation_tolerance = 0.01", "truncation_tolerance = 0.1"))
    out = tmp_path / "out"
    result = run_offline(cut_video(tmp_path), "--output", out, "--config", config)
    assert result.returncode == 0, result.stderr
    assert "cut.mp4: 94 frames (header: 100)" in result.stdout
    assert (out / "cut" / "cut_final.trc").read_text().splitlines()[2].split("\t")[2] == "94"


def test_live_recording_that_cannot_write_stops_while_publishing_goes_on(
    pingpong_video: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("a file where the recording folder should go\n")
    stats = tmp_path / "stats.json"
    run = LiveRun("--source", pingpong_video, "--lossless", "--as-fast-as-possible",
                  "--record", blocker / "live", "--stats-json", stats)  # fmt: skip
    code, _, err = run.finish(timeout=300)
    assert code == 0, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"error: recording stopped: cannot write {blocker / 'live'}")
    assert json.loads(stats.read_text())["published"] == 600  # every frame, none lost
    assert sorted(tmp_path.iterdir()) == [blocker, stats]


def test_live_recorder_stops_when_the_disk_fills_mid_recording(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sink's recorder on a real full disk: frames keep flowing through it, one error
    line, the partial recording removed."""
    recorder = LiveRecorder(small_disk / "live")
    rng = np.random.default_rng(0)

    def packet(index: int) -> Packet:
        packet = Packet("walk", index, 0, index / 30, (640, 480), meta={"fps": 30.0})
        packet.data = {
            "markers_21": rng.normal(size=(21, 3)),
            "markers_64": rng.normal(size=(64, 3)),
            "landmarks_2d": rng.normal(size=(33, 2)),
            "landmarks_z": rng.normal(size=33),
            "visibility": rng.random(33),
            "world_3d": rng.normal(size=(33, 3)),
        }
        return packet

    recorded = 0
    while recorder.error is None and recorded < 2000:
        sent = packet(recorded)
        assert recorder(sent) is sent
        recorded += 1
    assert recorder.error is not None and recorded > 10  # the disk filled mid-recording
    later = [packet(recorded + i) for i in range(20)]
    assert all(recorder(p) is p for p in later)  # frames go on through the sink
    recorder.close()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {recorder.error}"]
    assert errors[0].startswith(f"error: recording stopped: cannot write {small_disk}/live/walk/")
    assert "No space left on device" in errors[0]
    assert everything_under(small_disk) == [small_disk / "live"]
