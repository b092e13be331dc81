"""Training checkpoints that resume exactly (torch, training only).

A checkpoint holds everything the next step depends on: weights, optimiser moments, the
step counter (the learning-rate schedule is a function of it) and every random state
(torch, the pair generator's (numpy or torch), numpy's and Python's global ones), so a run
stopped and resumed gives bitwise the weights of an uninterrupted run. Files are replaced
atomically (write a sibling temp file, fsync, rename): a run killed mid-write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.training.pairs import PairGenerator


def rng_state(generator: PairGenerator) -> dict[str, Any]:
    """Every random state training draws from."""
    return {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),  # numpy's, or the torch generator's on its device
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any], generator: PairGenerator) -> None:
    """Restore what ``rng_state`` captured."""
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` that never leaves a half-written ``path`` behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load(path: Path) -> dict[str, Any]:
    """A checkpoint written by ``save_atomic`` (contains numpy/Python RNG states)."""
    return torch.load(path, map_location="cpu", weights_only=False)
