"""Swap repair on both Pose2Sim demos: the real swaps (multi-view truth) and what the stage
repairs, injected swaps repaired, correct frames left alone, cost per frame.

    uv run python -m bench.bench_swap_repair [--cache DIR]

Per camera two lines of one character per frame: the truth ('.' labelled right, 'B'/'A'/'L'
body/arms/legs swapped, ' ' unknown: models/training/swap_truth.py) and the stage's
``swap_repaired`` flag ('.' nothing repaired). Injected swaps (body, arms, legs; 5 to 40
frames) go into every correctly labelled stretch; a frame counts as repaired only if the
stage undid exactly that swap in it (a frame of delay counts as unrepaired).
Demo_MultiPerson is the tuning set, Demo_SinglePerson the test set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.demo_data import DEMO_CAMERAS, TEST_DEMO, TUNING_DEMO
from models.training.swap_truth import (
    demo_landmarks,
    injected,
    repaired,
    swap_string,
    true_swaps,
)
from stages.swap_repair import SwapRepair
from stream.config import load_config
from stream.native_stderr import filter_native_chatter

LENGTHS = (5, 9, 20, 40)
STEP = 11
SYMBOL = {"": ".", "body": "B", "arms": "A", "legs": "L"}


def report(demo: str, cache: Path | None, stage: SwapRepair) -> None:
    landmarks = demo_landmarks(demo, cache / f"{demo}_landmarks.npz" if cache else None)
    truth = true_swaps(demo, landmarks)
    print(f"{demo}:")
    clean = false = swapped = undone = 0
    stage_ms = []
    for c, camera in enumerate(DEMO_CAMERAS):
        packets = repaired(stage, injected(landmarks, c, "", slice(0)))
        plain = [p.meta["swap_repaired"] for p in packets]
        stage_ms += [p.stage_ms()[stage.name] for p in packets]
        print(f"  {camera} truth |{swap_string(truth[c])}|")
        print(f"  {camera} stage |{''.join(SYMBOL[k] for k in plain)}|")
        clean += sum(k == "" for k in truth[c])
        false += sum(k == "" and f != "" for k, f in zip(truth[c], plain, strict=True))
        for kind in ("body", "arms", "legs"):
            for length in LENGTHS:
                s = 1
                while s + length < len(plain):
                    if any(k != "" for k in truth[c][s - 1 : s + length + 1]):
                        s += 1
                        continue
                    out = repaired(stage, injected(landmarks, c, kind, slice(s, s + length)))
                    swapped += length
                    undone += sum(p.meta["swap_repaired"] == kind for p in out[s : s + length])
                    false += sum(
                        truth[c][f] == "" and p.meta["swap_repaired"] != plain[f]
                        for f, p in enumerate(out)
                        if not s <= f < s + length
                    )
                    s += STEP
    real = sum(k not in ("", None) for cam in truth for k in cam)
    print(
        f"  injected: {undone}/{swapped} frames repaired ({100 * undone / max(swapped, 1):.1f}%);"
        f" correctly labelled frames repaired: {false} (of {clean} per pass);"
        f" truly swapped frames: {real}; stage {sum(stage_ms) / len(stage_ms):.3f} ms per frame"
    )


def main() -> None:
    filter_native_chatter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="folder for the demos' detections (.npz)")
    args = parser.parse_args()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    stage = SwapRepair()
    stage.setup(load_config())
    for demo in (TUNING_DEMO, TEST_DEMO):
        report(demo, args.cache, stage)


if __name__ == "__main__":
    main()
