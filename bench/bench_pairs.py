"""Training-pair generators: milliseconds per batch, numpy vs torch on each device.

    uv run --no-sync python -m bench.bench_pairs [--batch 256 --window 9 --devices cpu,cuda]

One JSON line per generator and device (training batch shape of models/training/gpu_run.sh
by default), from the full motion-capture set's training subjects. A CUDA timing waits for
the device after every batch (``torch.cuda.synchronize``), as train.py's ``data_share``
does. Pause background training while it runs (models/README.md).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from models.training.mocap import load_clips, split
from models.training.pairs import PairGenerator
from models.training.pairs_torch import TorchPairGenerator


def time_batches(sample, repeats: int, device: str) -> float:
    """Median milliseconds of one ``sample()`` after two warm-up batches."""
    times = []
    for k in range(repeats + 2):
        t0 = time.perf_counter()
        sample()
        if device == "cuda":
            torch.cuda.synchronize()
        if k >= 2:
            times.append(1000 * (time.perf_counter() - t0))
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--window", type=int, default=9)
    ap.add_argument("--seq-len", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--devices", default="cpu", help="comma-separated torch devices")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clips = split(load_clips())[0]
    shape = {"batch": args.batch, "window": args.window, "seq_len": args.seq_len,
             "threads": args.threads}  # fmt: skip
    numpy_gen = PairGenerator(clips, args.seq_len, window=args.window)
    ms = time_batches(lambda: numpy_gen.sample(args.batch), args.repeats, "cpu")
    print(json.dumps({"generator": "numpy", "device": "cpu", "ms_per_batch": round(ms, 1),
                      **shape}), flush=True)  # fmt: skip
    for device in args.devices.split(","):
        gen = TorchPairGenerator(clips, args.seq_len, window=args.window, device=device)
        ms = time_batches(lambda g=gen: g.sample(args.batch), args.repeats, device)
        print(json.dumps({"generator": "torch", "device": device, "ms_per_batch": round(ms, 1),
                          **shape}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
