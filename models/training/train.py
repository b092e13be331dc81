"""Train a POF network on mocap pairs: ``uv run --group train python -m models.training.train``.

Sequences are unrolled frame by frame; each frame's prediction (detached) is the next
frame's prior, as at inference; each frame's input is its window of 2D frames (``--window``;
the history frames in front of the sequence only fill windows). Loss = cosine (1 - cos) per
limb + ``ZSIGN_WEIGHT`` x BCE on the sign of the limb's depth component. Validation uses
whole held-out subjects (models/training/mocap.py) through fixed random cameras; the naive baseline
takes each limb's 2D direction with zero depth. Logs one JSON line per evaluation;
checkpoints go to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from models.features import N_FEATURES
from models.training.corruption import NoiseModel
from models.training.mocap import load_clips, split
from models.training.pairs import Batch, PairGenerator
from models.training.pof_net import PRIOR_FEATURES, build

ZSIGN_WEIGHT = 0.2


def unroll(model: torch.nn.Module, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, L, F) -> per-frame predictions, each frame primed by the previous one."""
    b, t, n, _ = feats.shape
    prior = torch.zeros(b, n, PRIOR_FEATURES)
    pofs, zs = [], []
    for k in range(t):
        pof, z = model(feats[:, k], prior)
        pofs.append(pof)
        zs.append(z)
        prior = torch.cat([pof.detach(), torch.ones(b, n, 1)], -1)
    return torch.stack(pofs, 1), torch.stack(zs, 1)


def loss_fn(pof: torch.Tensor, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cosine loss on the orientations plus the weighted depth-sign loss."""
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
    err, sign, base = [], [], []
    for b in batches:
        pof, z = unroll(model, torch.from_numpy(b.features[:, b.history :]))
        target = b.pof[:, b.history :]
        err.append(angle_deg(pof.numpy(), target))
        sign.append((z.numpy() > 0) == (target[..., 2] > 0))
        base.append(angle_deg(naive_pof(b), target))
    model.train()
    return {"val_deg": float(np.mean(err)), "val_zsign_acc": float(np.mean(sign)),
            "naive_deg": float(np.mean(base))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("semgcn", "mlp"), default="semgcn")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--global-context", action="store_true", help="SemGCN: add a whole-body branch")
    ap.add_argument("--seq-len", type=int, default=4, help="frames unrolled with the prior")
    ap.add_argument("--window", type=int, default=1, help="2D frames the model sees per step")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument(
        "--minutes",
        type=float,
        default=math.inf,
        help="stop after this long (the learning-rate schedule then follows time)",
    )
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--val-batches", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/pof"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    noise = NoiseModel()
    train_clips, val_clips = split(load_clips())
    gen = PairGenerator(train_clips, args.seq_len, noise, True, args.seed, args.window)
    val_gen = PairGenerator(val_clips, args.seq_len, noise, False, 12345, args.window)
    val = [val_gen.sample(256) for _ in range(args.val_batches)]
    model = build(args.model, args.dim, args.layers, args.global_context, args.window)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    args.out.mkdir(parents=True, exist_ok=True)
    config = {"model": args.model, "dim": args.dim, "layers": args.layers,
              "global_context": args.global_context, "seq_len": args.seq_len,
              "window": args.window}  # fmt: skip
    start, running = time.monotonic(), []
    for step in range(1, args.steps + 1):
        progress = max(step / args.steps, (time.monotonic() - start) / 60 / args.minutes)
        for group in opt.param_groups:  # warm-up, then cosine decay over steps or minutes
            group["lr"] = (
                args.lr * min(1.0, progress * 50) * 0.5 * (1 + math.cos(math.pi * progress))
            )
        b = gen.sample(args.batch)
        pof, z = unroll(model, torch.from_numpy(b.features[:, b.history :]))
        loss = loss_fn(pof, z, torch.from_numpy(b.pof[:, b.history :]))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        done = step == args.steps or progress >= 1
        if step % args.eval_every == 0 or done:
            log = {"step": step, "min": round((time.monotonic() - start) / 60, 2),
                   "loss": float(np.mean(running)), **evaluate(model, val)}  # fmt: skip
            running = []
            print(json.dumps(log), flush=True)
            torch.save({"state_dict": model.state_dict(), "config": config, "log": log,
                        "noise": {k: np.asarray(v).tolist() for k, v in asdict(noise).items()}},
                       args.out / f"pof_{args.model}.pt")  # fmt: skip
        if done:
            break


if __name__ == "__main__":
    main()
