"""Rebuild ``tests/data/mocap/`` from the full CMU set (``python -m tests.make_mocap_fixture``).

The tests need real motion capture of every skeleton layout and of both sides of the
subject split, but must not depend on a folder outside the clone. This keeps the first
frames of a few clips, in the full set's format (same keys), compressed; < 2 MB in all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from models.training.mocap import MOCAP_DIR
from tests.data import MOCAP_FIXTURE_DIR

# clip -> frames kept. Training side: subject 002 in all four layouts, one DAZ salsa
# dancer; held-out side: subject 131 and the martial-arts pseudo-subject.
FIXTURE_CLIPS = {
    "cmu_002_05": 400,  # punch/strike: tests/test_augment.py steps the LSTM over 400 frames
    "dm_002_01": 85,
    "dm_002_02": 74,
    "dm_002_03": 42,
    "dm_002_04": 120,
    "dm_007_03": 103,
    "cc_002_01": 86,
    "daz_salsa_01": 200,
    "cmu_131_01": 249,
    "daz_martial_04": 200,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=MOCAP_DIR)
    ap.add_argument("--out", type=Path, default=MOCAP_FIXTURE_DIR)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, frames in FIXTURE_CLIPS.items():
        clip = dict(np.load(args.source / f"{name}.npz"))
        clip["joints"] = clip["joints"][:frames]
        np.savez_compressed(args.out / f"{name}.npz", **clip)
        print(f"{name}: {len(clip['joints'])} frames")


if __name__ == "__main__":
    main()
