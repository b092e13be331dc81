"""Training pairs made on a torch device (a GPU): the numpy generator's code, on tensors.

``TorchPairGenerator`` is ``PairGenerator`` (models/training/pairs.py) with two parts
replaced: the random source (``TorchRandom``: numpy Generator's draws from a torch
generator, as tensors on the device) and the sequence sampler (the clips are uploaded once
as one tensor, and a batch is gathered from it in one indexing step instead of a Python
loop). Augmentation, cameras, projection, corruption and features are the numpy
generator's own functions, written once for numpy and torch (models/arrays.py), so the two
generators draw from the same distribution (tests/test_pairs_torch.py compares them), not
the same numbers. Everything is float64, as in numpy; features and targets are float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.training.corruption import NoiseModel
from models.training.mocap import Clip
from models.training.pairs import PairGenerator


class TorchRandom:
    """The draws of ``models.arrays.Random`` from one torch generator on ``device``: float64
    and int64 tensors there, with numpy's meaning of each argument."""

    def __init__(self, seed: int, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self.gen = torch.Generator(self.device)
        self.gen.manual_seed(seed)

    @staticmethod
    def _shape(size: Any) -> tuple[int, ...]:
        if size is None:
            return ()
        return tuple(size) if isinstance(size, tuple | list | torch.Size) else (int(size),)

    def random(self, size: Any = None) -> torch.Tensor:
        return torch.rand(
            self._shape(size), generator=self.gen, device=self.device, dtype=torch.float64
        )

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> torch.Tensor:
        return low + (high - low) * self.random(size)

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = None) -> torch.Tensor:
        z = torch.randn(
            self._shape(size), generator=self.gen, device=self.device, dtype=torch.float64
        )
        return loc + scale * z

    def integers(self, low: int, high: int | None = None, size: Any = None) -> torch.Tensor:
        if high is None:
            low, high = 0, low
        return torch.randint(low, high, self._shape(size), generator=self.gen, device=self.device)


class TorchPairGenerator(PairGenerator):
    """``PairGenerator`` whose batches are made on ``device`` (tensors in ``Batch``)."""

    def __init__(self, clips: list[Clip], seq_len: int, noise: NoiseModel | None = None,
                 augment: bool = True, seed: int = 0, window: int = 1,
                 device: str | torch.device = "cpu", balance: bool = False) -> None:  # fmt: skip
        super().__init__(clips, seq_len, noise, augment, seed, window, balance)
        self.rng = TorchRandom(seed, device)
        dev = self.rng.device
        lengths = [len(c.joints) for c in self.clips]
        self.joints = torch.as_tensor(
            np.concatenate([c.joints for c in self.clips]), dtype=torch.float64, device=dev
        )
        self.lengths = torch.as_tensor(lengths, device=dev)
        self.offsets = torch.as_tensor(np.cumsum([0, *lengths[:-1]]), device=dev)
        self.clip_p = torch.as_tensor(self.weights, device=dev)
        if balance:
            self.start_p_t = torch.as_tensor(self.start_p, device=dev)
            self.start_clip_t = torch.as_tensor(self.start_clip, device=dev)
            self.start_frame_t = torch.as_tensor(self.start_frame, device=dev)

    def get_state(self) -> torch.Tensor:
        return self.rng.gen.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.rng.gen.set_state(state)

    def sequences(self, batch: int) -> torch.Tensor:
        """(B, T, J, 3) world sequences as ``PairGenerator.sequences`` draws them: a clip
        with probability proportional to its frames, stride 1 or 2, a uniform start (or,
        with ``balance``, a (clip, start) from the pose-balanced table)."""
        rng = self.rng
        if self.balance:
            pick = torch.multinomial(self.start_p_t, batch, replacement=True, generator=rng.gen)
            clip, start = self.start_clip_t[pick], self.start_frame_t[pick]
        else:
            clip = torch.multinomial(self.clip_p, batch, replacement=True, generator=rng.gen)
        if self.augment:
            stride = rng.integers(1, 3, batch)
        else:
            stride = torch.ones(batch, dtype=torch.int64, device=rng.device)
        if not self.balance:
            starts = self.lengths[clip] - stride * (self.frames - 1)  # choices of start
            start = (rng.random(batch) * starts).long()  # uniform over 0 .. starts - 1
        step = torch.arange(self.frames, device=rng.device)
        return self.joints[(self.offsets[clip] + start)[:, None] + stride[:, None] * step]
