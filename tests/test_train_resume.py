"""Training resumes exactly: stopped and resumed runs end bitwise where an uninterrupted run
ends (weights, optimiser, random states); checkpoints are written atomically (needs torch)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (uv sync --group train)")

from models.training.checkpoint import load, save_atomic  # noqa: E402
from models.training.export_onnx import load_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STEPS = 200
TORCH_STEPS = 20  # the torch generator's run: shorter, the test time is the processes'
TINY = ["--model", "semgcn", "--dim", "16", "--layers", "1", "--global-context",
        "--window", "3", "--seq-len", "2", "--batch", "8", "--val-batches", "1",
        "--ckpt-every", "7"]  # fmt: skip


def train(out: Path, *extra: str, steps: int = STEPS) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "models.training.train", *TINY, "--steps", str(steps),
         "--out", str(out), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def ckpt(out: Path) -> dict:
    return load(out / "pof_semgcn.pt")


def assert_same_state(a: dict, b: dict, steps: int = STEPS) -> None:
    """Bitwise equal weights, optimiser state, step and random states."""
    assert a["resume"]["step"] == b["resume"]["step"] == steps
    assert len(a["state_dict"]) > 5
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    opt_a, opt_b = a["resume"]["optimizer"], b["resume"]["optimizer"]
    assert opt_a["param_groups"] == opt_b["param_groups"]
    assert len(opt_a["state"]) > 5 and opt_a["state"].keys() == opt_b["state"].keys()
    for k, state in opt_a["state"].items():
        for key, value in state.items():
            assert torch.equal(value, opt_b["state"][k][key]), (k, key)
    rng_a, rng_b = a["resume"]["rng"], b["resume"]["rng"]
    assert torch.equal(rng_a["torch"], rng_b["torch"])
    if isinstance(rng_a["generator"], torch.Tensor):  # the torch pair generator's
        assert torch.equal(rng_a["generator"], rng_b["generator"])
    else:
        assert rng_a["generator"] == rng_b["generator"]
    assert rng_a["python"] == rng_b["python"]
    assert all(np.array_equal(x, y) for x, y in zip(rng_a["numpy"], rng_b["numpy"], strict=True))
    keep = ("step", "val_deg", "val_zsign_acc")  # the logged loss depends on --eval-every
    assert {k: a["log"][k] for k in keep} == {k: b["log"][k] for k in keep}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("whole")
    run = train(out)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["pof_semgcn.pt"]  # no temp file left
    return ckpt(out)


def test_half_then_resume_equals_uninterrupted(uninterrupted, tmp_path: Path) -> None:
    first = train(tmp_path, "--stop-at", str(STEPS // 2))
    assert first.returncode == 0, first.stderr
    assert ckpt(tmp_path)["resume"]["step"] == STEPS // 2
    second = train(tmp_path, "--resume")
    assert second.returncode == 0, second.stderr
    assert f"resuming at step {STEPS // 2}" in second.stderr
    assert_same_state(uninterrupted, ckpt(tmp_path))
    assert ckpt(tmp_path)["log"]["loss"] == uninterrupted["log"]["loss"]
    exported = load_checkpoint(tmp_path / "pof_semgcn.pt")  # the file export_onnx reads
    for name, value in exported.state_dict().items():
        assert torch.equal(value, uninterrupted["state_dict"][name]), name


def test_resume_at_or_past_stop_at_takes_no_step(tmp_path: Path) -> None:
    assert train(tmp_path, "--stop-at", "9").returncode == 0
    before = ckpt(tmp_path)
    run = train(tmp_path, "--resume", "--stop-at", "3")
    assert run.returncode == 0, run.stderr
    assert f"stopped at step 9 of {STEPS}" in run.stderr
    after = ckpt(tmp_path)
    assert after["resume"]["step"] == 9
    for name, value in before["state_dict"].items():
        assert torch.equal(value, after["state_dict"][name]), name


def test_sigterm_checkpoints_then_resume_equals_uninterrupted(
    uninterrupted, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "models.training.train", *TINY, "--steps", str(STEPS),
         "--eval-every", "1", "--out", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout.readline().startswith('{"step": 1,')
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    stopped = ckpt(tmp_path)["resume"]["step"]
    assert 1 <= stopped < STEPS
    resumed = train(tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_state(uninterrupted, ckpt(tmp_path))


def test_torch_generator_resumes_exactly(tmp_path: Path) -> None:
    """The torch pair generator's random state is in the checkpoint: stopped and resumed,
    its run ends bitwise where the uninterrupted one does."""
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    for out, *extra in ((whole,), (parts, "--stop-at", "9"), (parts, "--resume")):
        run = train(out, "--generator", "torch", *extra, steps=TORCH_STEPS)
        assert run.returncode == 0, run.stderr
    a, b = ckpt(whole), ckpt(parts)
    assert isinstance(a["resume"]["rng"]["generator"], torch.Tensor)
    assert a["resume"]["run"]["generator"] == "torch"
    assert_same_state(a, b, TORCH_STEPS)


def test_refuses_to_overwrite_or_change_a_run(tmp_path: Path) -> None:
    assert train(tmp_path, "--stop-at", "2").returncode == 0
    before = (tmp_path / "pof_semgcn.pt").read_bytes()
    again = train(tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().startswith("error:") and "--resume" in again.stderr
    changed = train(tmp_path, "--resume", "--lr", "0.01")
    assert changed.returncode == 2
    assert changed.stderr.strip().startswith("error: --lr 0.01 differs")
    other = train(tmp_path, "--resume", "--generator", "torch")  # the random states differ
    assert other.returncode == 2
    assert other.stderr.strip().startswith("error: --generator torch differs from numpy")
    assert (tmp_path / "pof_semgcn.pt").read_bytes() == before


def test_failed_save_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_atomic({"step": 1}, path)
    with pytest.raises(Exception):  # noqa: B017  (a lambda cannot be pickled)
        save_atomic({"step": 2, "bad": lambda: None}, path)
    assert load(path) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_init_checkpoint_starts_from_its_weights(uninterrupted, tmp_path: Path) -> None:
    """A fresh run from a checkpoint's weights (learning rate 0: they stay as loaded), and one
    of another architecture refused in one line."""
    source = tmp_path / "source"
    source.mkdir()
    save_atomic(uninterrupted, source / "pof_semgcn.pt")
    run = train(tmp_path / "copy", "--init-checkpoint", str(source / "pof_semgcn.pt"),
                "--lr", "0", steps=3)  # fmt: skip
    assert run.returncode == 0, run.stderr
    copy = ckpt(tmp_path / "copy")
    assert copy["resume"]["step"] == 3
    for name, value in uninterrupted["state_dict"].items():
        assert torch.equal(value, copy["state_dict"][name]), name
    wider = [a if a != "16" else "8" for a in TINY]  # --dim 8
    run = subprocess.run(
        [sys.executable, "-m", "models.training.train", *wider, "--steps", "3",
         "--init-checkpoint", str(source / "pof_semgcn.pt"), "--out", str(tmp_path / "x")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 2
    assert "--dim 16, this run 8" in run.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x" / "pof_semgcn.pt").exists()
