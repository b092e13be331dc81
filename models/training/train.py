"""Train a POF network on mocap pairs: ``uv run --group train python -m models.training.train``.

Sequences are unrolled frame by frame; each frame's prediction (detached) is the next
frame's prior, as at inference; each frame's input is its window of 2D frames (``--window``;
the history frames in front of the sequence only fill windows). Loss = cosine (1 - cos) per
limb + ``ZSIGN_WEIGHT`` x BCE on the sign of the limb's depth component. Validation uses
whole held-out subjects (models/training/mocap.py) through fixed random cameras; the naive baseline
takes each limb's 2D direction with zero depth. Logs one JSON line per evaluation (with
steps/s and the pair generator's share of the step time). Training pairs come from the
numpy generator (models/training/pairs.py) or, with ``--generator torch`` (the default on
CUDA), from the same code on the training device (models/training/pairs_torch.py).

The learning-rate schedule is a function of the step (over ``--steps``), so training can be
split across invocations: each one stops at ``--minutes``, ``--stop-at``, SIGTERM or SIGINT
with a checkpoint in --out (models/training/checkpoint.py), and ``--resume`` continues it exactly.
``--init-onnx`` starts from an exported network's weights instead of random ones (fine-tuning
on changed data, models/training/onnx_weights.py; the MLP's exports only: the SemGCN's graph
folds its weights), ``--init-checkpoint`` from a training checkpoint's weights with a fresh
optimiser and schedule (e.g. a copy of a long run annealed now, while the run goes on).
``--real-share S`` gives that share of each step's loss to real MediaPipe windows of the
tuning demo with multi-view targets (models/training/real_pairs.py; ``--real-cameras`` picks
its cameras, e.g. to hold one out); which windows a step draws is a function of the seed and
the step, so resume stays exact.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import random
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch
from torch.nn import functional as F

from core.demo_data import DEMO_CAMERAS
from models.features import N_FEATURES
from models.training import checkpoint
from models.training.corruption import NoiseModel
from models.training.mocap import load_clips, split
from models.training.onnx_weights import load_onnx_weights
from models.training.pairs import Batch, PairGenerator
from models.training.pairs_torch import TorchPairGenerator
from models.training.pof_net import PRIOR_FEATURES, build
from models.training.real_pairs import RealPairs, real_pairs

ZSIGN_WEIGHT = 0.2


def unroll(model: torch.nn.Module, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, L, F) -> per-frame predictions, each frame primed by the previous one."""
    b, t, n, _ = feats.shape
    prior = torch.zeros(b, n, PRIOR_FEATURES, device=feats.device)
    ones = torch.ones(b, n, 1, device=feats.device)
    pofs, zs = [], []
    for k in range(t):
        pof, z = model(feats[:, k], prior)
        pofs.append(pof)
        zs.append(z)
        prior = torch.cat([pof.detach().to(ones.dtype), ones], -1)
    return torch.stack(pofs, 1), torch.stack(zs, 1)


def loss_fn(pof: torch.Tensor, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cosine loss on the orientations plus the weighted depth-sign loss."""
    pof, z = pof.float(), z.float()  # the loss in float32 under bf16 autocast too
    cos = (pof * target).sum(-1)
    zsign = F.binary_cross_entropy_with_logits(z, (target[..., 2] > 0).float())
    return (1 - cos).mean() + ZSIGN_WEIGHT * zsign


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between unit vectors, degrees."""
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1, 1)))


def naive_pof(batch: Batch) -> np.ndarray:
    """Baseline: the limb's 2D direction in ray space with zero depth (newest frame)."""
    newest = batch.features[:, batch.history :, :, -N_FEATURES:]
    d = np.concatenate([newest[..., 4:6], np.zeros_like(newest[..., :1])], -1)
    return d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: list[Batch]) -> dict[str, float]:
    """Mean limb-orientation error (deg), depth-sign accuracy, and the naive baseline."""
    model.eval()
    device = next(model.parameters()).device
    err, sign, base = [], [], []
    for b in batches:
        pof, z = unroll(model, torch.from_numpy(b.features[:, b.history :]).to(device))
        pof, z = pof.float().cpu().numpy(), z.float().cpu().numpy()
        target = b.pof[:, b.history :]
        err.append(angle_deg(pof, target))
        sign.append((z > 0) == (target[..., 2] > 0))
        base.append(angle_deg(naive_pof(b), target))
    model.train()
    return {"val_deg": float(np.mean(err)), "val_zsign_acc": float(np.mean(sign)),
            "naive_deg": float(np.mean(base))}  # fmt: skip


# Arguments that define the run: a resumed run must keep them (the others are per invocation).
RUN_ARGS = ("model", "dim", "layers", "global_context", "seq_len", "window", "batch", "steps",
            "lr", "seed", "generator", "init_onnx", "real_share", "real_cameras",
            "pose_balance", "init_checkpoint")  # fmt: skip
# What checkpoints written before a run argument existed did.
RUN_ARGS_BEFORE = {"generator": "numpy", "init_onnx": None, "real_share": 0.0,
                   "real_cameras": None, "pose_balance": False,
                   "init_checkpoint": None}  # fmt: skip
ARCHITECTURE = ("model", "dim", "layers", "global_context", "window")  # what a weight file fits
WARMUP = 0.02  # fraction of --steps with a linear learning-rate ramp


def learning_rate(step: int, steps: int, peak: float) -> float:
    """Warm-up, then cosine decay to zero at ``steps``: a function of the step alone."""
    progress = step / steps
    return peak * min(1.0, progress / WARMUP) * 0.5 * (1 + math.cos(math.pi * progress))


class StopRequest:
    """SIGTERM/SIGINT ask the loop to checkpoint after the current step and exit."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("semgcn", "mlp"), default="semgcn")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--global-context", action="store_true", help="SemGCN: add a whole-body branch")
    ap.add_argument("--seq-len", type=int, default=4, help="frames unrolled with the prior")
    ap.add_argument("--window", type=int, default=1, help="2D frames the model sees per step")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20000, help="length of the LR schedule")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--init-onnx",
        default=None,
        help="start from this exported network's weights (same architecture)",
    )
    ap.add_argument(
        "--init-checkpoint",
        default=None,
        help="start from this training checkpoint's weights (same architecture), with a fresh "
        "optimiser and schedule",
    )
    ap.add_argument(
        "--minutes",
        type=float,
        default=math.inf,
        help="this invocation stops (with a checkpoint) after this long",
    )
    ap.add_argument(
        "--stop-at",
        type=int,
        default=None,
        help="this invocation stops (with a checkpoint) after this step",
    )
    ap.add_argument(
        "--resume", action="store_true", help="continue from --out's checkpoint if there is one"
    )
    ap.add_argument("--ckpt-every", type=int, default=500, help="checkpoint every N steps")
    ap.add_argument(
        "--ckpt-minutes",
        type=float,
        default=5.0,
        help="and at least this often (a slow, shared core)",
    )
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--val-batches", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help='"cpu", or "cuda" on an NVIDIA machine')
    ap.add_argument(
        "--generator",
        choices=("auto", "numpy", "torch"),
        default="auto",
        help="training pairs from numpy (pairs.py) or torch on --device (pairs_torch.py); "
        "auto: torch on CUDA, numpy otherwise",
    )
    ap.add_argument(
        "--bf16", action="store_true", help="network in bfloat16 autocast (GPU; loss in float32)"
    )
    ap.add_argument(
        "--pose-balance",
        action="store_true",
        help="draw sequences balanced over knee and elbow angles (models/training/pairs.py)",
    )
    ap.add_argument(
        "--real-share",
        type=float,
        default=0.0,
        help="share of each step's loss on the tuning demo's real windows (0: mocap only)",
    )
    ap.add_argument(
        "--real-cameras",
        default=None,
        help="comma-separated camera numbers of the tuning demo to train on (default: all)",
    )
    ap.add_argument(
        "--real-cache", type=Path, default=None, help="the tuning demo's detections (.npz)"
    )
    ap.add_argument("--out", type=Path, default=Path("runs/pof"))
    return ap.parse_args()  # fmt: skip


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def resume_state(args: argparse.Namespace, path: Path) -> dict | None:
    """The checkpoint to continue from (None: start fresh), checked against ``args``."""
    if not path.exists():
        return None
    if not args.resume:
        fail(f"{path} exists; pass --resume to continue it or choose another --out")
    ckpt = checkpoint.load(path)
    if "resume" not in ckpt:
        fail(f"{path} has no resume state (written by an older models/training/train.py); "
             "choose another --out")  # fmt: skip
    saved = ckpt["resume"]["run"]
    for key in RUN_ARGS:
        was = saved.get(key, RUN_ARGS_BEFORE.get(key))
        if was != getattr(args, key):
            flag = "--" + key.replace("_", "-")
            fail(f"{flag} {getattr(args, key)} differs from {was} in {path}; "
                 "resume with the original arguments")  # fmt: skip
    return ckpt


def initial_weights(args: argparse.Namespace, model: torch.nn.Module) -> None:
    """A fresh run's starting weights: ``--init-onnx``'s or ``--init-checkpoint``'s, if given."""
    if args.init_onnx is not None:
        try:
            load_onnx_weights(model, Path(args.init_onnx))
        except (OSError, ValueError) as e:
            fail(f"--init-onnx: {e}")
    if args.init_checkpoint is not None:
        try:
            saved = checkpoint.load(Path(args.init_checkpoint))
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
            fail(f"--init-checkpoint: cannot read {args.init_checkpoint} ({e})")
        config = saved.get("config", {})
        for key in ARCHITECTURE:
            if config.get(key) != getattr(args, key):
                flag = "--" + key.replace("_", "-")
                fail(f"--init-checkpoint: {args.init_checkpoint} has {flag} {config.get(key)}, "
                     f"this run {getattr(args, key)}; give the same architecture")  # fmt: skip
        model.load_state_dict(saved["state_dict"])


def real_windows(args: argparse.Namespace) -> RealPairs | None:
    """The tuning demo's real windows (``--real-share``), or None."""
    if args.real_share <= 0:
        return None
    if args.real_share >= 1:
        fail(f"--real-share {args.real_share}: give a share below 1 (the rest stays mocap)")
    cameras = None
    if args.real_cameras:
        try:
            cameras = [int(c) - 1 for c in args.real_cameras.split(",")]
        except ValueError:
            cameras = []
        if not cameras or not all(0 <= c < len(DEMO_CAMERAS) for c in cameras):
            fail(f"--real-cameras {args.real_cameras!r}: give camera numbers 1-"
                 f"{len(DEMO_CAMERAS)}, comma-separated")  # fmt: skip
    pairs = real_pairs(args.window, args.real_cache, cameras)
    if not len(pairs.pof):
        fail("--real-share: the tuning demo gave no usable real windows")
    print(f"real windows: {len(pairs.pof)} (cameras {sorted({int(c) + 1 for c in pairs.camera})})",
          file=sys.stderr, flush=True)  # fmt: skip
    return pairs


def real_loss(
    model: torch.nn.Module, pairs: RealPairs, n: int, seed: int, step: int, device: torch.device
) -> torch.Tensor:
    """Loss on ``n`` real windows drawn by (seed, step)."""
    idx = np.random.default_rng([seed, step]).integers(len(pairs.pof), size=n)
    feats = torch.as_tensor(pairs.features[idx][:, None], device=device)
    pof, z = unroll(model, feats)
    return loss_fn(pof, z, torch.as_tensor(pairs.pof[idx][:, None], device=device))


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    if args.generator == "auto":
        args.generator = "torch" if device.type == "cuda" else "numpy"
    if args.init_onnx is not None and args.init_checkpoint is not None:
        fail("--init-onnx and --init-checkpoint both given: start from one of them")
    path = args.out / f"pof_{args.model}.pt"
    ckpt = resume_state(args, path)  # a refused resume stops before any data are loaded
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # and the global ones, should any library draw from them
    np.random.seed(args.seed)
    random.seed(args.seed)
    noise = NoiseModel()
    train_clips, val_clips = split(load_clips())
    if args.generator == "torch":
        gen = TorchPairGenerator(train_clips, args.seq_len, noise, True, args.seed, args.window,
                                 device, args.pose_balance)  # fmt: skip
    else:
        gen = PairGenerator(train_clips, args.seq_len, noise, True, args.seed, args.window,
                            args.pose_balance)  # fmt: skip
    # validation: the same numpy batches whichever generator trains
    val_gen = PairGenerator(val_clips, args.seq_len, noise, False, 12345, args.window)
    val = [val_gen.sample(256) for _ in range(args.val_batches)]
    real = real_windows(args)
    n_real = max(1, round(args.batch * args.real_share)) if real is not None else 0
    model = build(args.model, args.dim, args.layers, args.global_context, args.window)
    if ckpt is None:
        initial_weights(args, model)
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    args.out.mkdir(parents=True, exist_ok=True)
    config = {"model": args.model, "dim": args.dim, "layers": args.layers,
              "global_context": args.global_context, "seq_len": args.seq_len,
              "window": args.window}  # fmt: skip
    step, log, running, minutes_before = 0, {}, [], 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        opt.load_state_dict(ckpt["resume"]["optimizer"])
        try:
            checkpoint.set_rng_state(ckpt["resume"]["rng"], gen)
        except RuntimeError as e:  # a CUDA generator's state does not fit a CPU one
            fail(f"{path}: the torch pair generator's state is not for --device "
                 f"{args.device} ({e}); resume on the kind of device that wrote it")  # fmt: skip
        step, log = ckpt["resume"]["step"], ckpt["log"]
        running, minutes_before = ckpt["resume"]["running"], ckpt["resume"]["minutes"]
    print(f"{'resuming' if ckpt else 'starting'} at step {step} of {args.steps}: {path}",
          file=sys.stderr, flush=True)  # fmt: skip
    stop, start = StopRequest(), time.monotonic()
    saved_at = start
    data_s = net_s = 0.0  # since the last log line: pair generation vs network step

    def save() -> None:
        nonlocal saved_at
        saved_at = time.monotonic()
        minutes = minutes_before + (time.monotonic() - start) / 60
        resume = {"step": step, "optimizer": opt.state_dict(), "rng": checkpoint.rng_state(gen),
                  "running": running, "minutes": minutes,
                  "run": {k: getattr(args, k) for k in RUN_ARGS}}  # fmt: skip
        checkpoint.save_atomic({"state_dict": model.state_dict(), "config": config, "log": log,
                                "noise": {k: np.asarray(v).tolist()
                                          for k, v in asdict(noise).items()},
                                "resume": resume}, path)  # fmt: skip

    end = args.steps if args.stop_at is None else min(args.steps, args.stop_at)
    while step < end:  # a run resumed at or past --stop-at takes no step
        step += 1
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr)
        t0 = time.perf_counter()
        b = gen.sample(args.batch)
        if device.type == "cuda":  # the torch generator's kernels count as its time
            torch.cuda.synchronize(device)
        t1 = time.perf_counter()
        feats = torch.as_tensor(b.features[:, b.history :], device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            pof, z = unroll(model, feats)
        loss = loss_fn(pof, z, torch.as_tensor(b.pof[:, b.history :], device=device))
        if real is not None:
            share = args.real_share
            loss = (1 - share) * loss + share * real_loss(model, real, n_real, args.seed, step,
                                                          device)  # fmt: skip
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        data_s, net_s = data_s + t1 - t0, net_s + time.perf_counter() - t1
        running.append(loss.item())
        minutes = (time.monotonic() - start) / 60
        last = step == args.steps
        halt = step >= end or stop.requested or minutes >= args.minutes
        if step % args.eval_every == 0 or last:
            log = {"step": step, "min": round(minutes_before + minutes, 2),
                   "loss": float(np.mean(running)), **evaluate(model, val),
                   "steps_per_s": round(len(running) / (data_s + net_s), 3),
                   "data_share": round(data_s / (data_s + net_s), 3)}  # fmt: skip
            running, data_s, net_s = [], 0.0, 0.0
            print(json.dumps(log), flush=True)
        due = time.monotonic() - saved_at >= 60 * args.ckpt_minutes
        if due or step % args.ckpt_every == 0 or step % args.eval_every == 0 or halt:
            save()
        if halt:
            break
    print(f"stopped at step {step} of {args.steps}: {path}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
