"""The torch pair generator (models/training/pairs_torch.py) against the numpy one: the same
numbers from the same draws, and the same distribution from its own draws (needs torch).

The two share augmentation, cameras, projection, corruption and features (one definition
for numpy and torch, models/arrays.py); what the torch generator has of its own is the
random source and the sequence sampler. So the first test feeds the torch code path the
numpy generator's very draws and asks for equal batches to float tolerance, and the second
compares statistics of batches each generator draws itself, within the stated tolerances.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch pair generator needs torch")

from models.features import N_FEATURES  # noqa: E402
from models.skeleton import N_JOINTS, limb_vectors, unit  # noqa: E402
from models.training.camera import project  # noqa: E402
from models.training.corruption import NoiseModel, person_scale  # noqa: E402
from models.training.mocap import load_clips, split  # noqa: E402
from models.training.pairs import Batch, PairGenerator  # noqa: E402
from models.training.pairs_torch import TorchPairGenerator  # noqa: E402
from tests.data import MOCAP_FIXTURE_DIR  # noqa: E402

WINDOW, SEQ_LEN = 3, 4
NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
DEVICES = ["cpu", pytest.param("cuda", marks=NO_CUDA)]  # gpu_run.sh runs the cuda ones


def host(x: Any) -> np.ndarray:
    """A batch field as a numpy array, from whichever device."""
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Torch on one thread, as train.py runs it (two threads on the shared cores crawl)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def clips():
    return split(load_clips(MOCAP_FIXTURE_DIR))[0]


class NumpyDrawsAsTensors:
    """A numpy Generator whose draws come out as tensors on ``device``: the torch code path
    then sees exactly the numbers the numpy generator drew."""

    def __init__(self, state: dict, device: str) -> None:
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state
        self.device = device

    def _tensor(self, x: Any) -> torch.Tensor:
        return torch.from_numpy(np.asarray(x)).to(self.device)

    def random(self, size: Any = None) -> torch.Tensor:
        return self._tensor(self.rng.random(size))

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> torch.Tensor:
        return self._tensor(self.rng.uniform(low, high, size))

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = None) -> torch.Tensor:
        return self._tensor(self.rng.normal(loc, scale, size))

    def integers(self, low: int, high: int | None = None, size: Any = None) -> torch.Tensor:
        return self._tensor(self.rng.integers(low, high, size))


@pytest.mark.parametrize("device", DEVICES)
def test_same_draws_give_the_numpy_batch(clips, device: str) -> None:
    """Augmentation, cameras (with their redraws), projection, noise, windowed features and
    targets on tensors equal numpy's for the same world sequences and random numbers."""
    gen = PairGenerator(clips, SEQ_LEN, seed=4, window=WINDOW)
    world = gen.sequences(96)
    state = gen.get_state()
    want = gen.pairs(world.copy())
    tgen = TorchPairGenerator(clips, SEQ_LEN, seed=4, window=WINDOW, device=device)
    tgen.rng = NumpyDrawsAsTensors(state, device)
    got = tgen.pairs(torch.from_numpy(world).to(device))
    assert got.features.device.type == device and got.features.dtype == torch.float32
    assert got.history == want.history == WINDOW - 1
    for name, atol in [("joints_cam", 1e-9), ("K", 1e-9), ("uv_clean", 1e-7), ("uv", 1e-7),
                       ("vis", 0), ("pof", 1e-6), ("features", 2e-5)]:  # fmt: skip
        a, b = host(getattr(got, name)), getattr(want, name)
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=atol, err_msg=name)
    assert gen.rng.bit_generator.state == tgen.rng.rng.bit_generator.state  # same draws used


@pytest.mark.parametrize("device", DEVICES)
def test_clean_torch_pairs_are_exact(clips, device: str) -> None:
    """Without noise the 2D points are the projection and the targets the unit limbs."""
    clean = NoiseModel(sigma=np.zeros(N_JOINTS), outlier_p=0, swap_p=0, dropout_p=0,
                       outside_dropout_p=0)  # fmt: skip
    b = TorchPairGenerator(clips, SEQ_LEN, clean, seed=3, window=WINDOW, device=device).sample(64)
    assert b.uv.device.type == device
    np.testing.assert_allclose(host(b.uv), host(project(b.joints_cam, b.K)), atol=1e-9)
    np.testing.assert_allclose(host(b.pof), host(unit(limb_vectors(b.joints_cam))), atol=1e-6)
    assert (b.joints_cam[..., 2] > 0.3).all()
    assert (b.vis >= clean.vis_min).all()


def statistics(b: Batch, vis_min: float) -> dict[str, np.ndarray]:
    """What one batch's training data are made of (numpy or torch)."""
    feats = host(b.features)[:, b.history :, :, -N_FEATURES:].reshape(-1, 18, N_FEATURES)
    pof, cam = host(b.pof).reshape(-1, 18, 3), host(b.joints_cam)
    focal = host(b.K)[:, 0, 0]
    uv, clean, vis = host(b.uv), host(b.uv_clean), host(b.vis)
    kept = vis >= vis_min
    error = np.linalg.norm(uv - clean, axis=-1) / person_scale(clean)[..., None]
    return {
        "feature_mean": feats.mean(0),  # newest frame, per limb and feature
        "feature_std": feats.std(0),
        "limb_direction": pof.mean(0),
        "depth_positive": (pof[..., 2] > 0).mean(0),
        # the rest: sizes, compared also relative to their value
        "noise_median": np.nanmedian(np.where(kept, error, np.nan).reshape(-1, N_JOINTS), 0),
        "large_error": (error[kept] > 0.1).mean(),  # outliers, swaps
        "dropout": 1 - kept.mean(),
        "depth": np.array([cam[..., 2].mean(), cam[..., 2].std()]),
        "focal": np.array([focal.mean(), focal.std()]),
        "speed": np.linalg.norm(np.diff(cam, axis=1), axis=-1).mean(),  # stride 1 or 2
        "bone_spread": np.linalg.norm(limb_vectors(cam), axis=-1).std(0).mean(),  # scaling
    }


SIGNED = ("feature_mean", "feature_std", "limb_direction", "depth_positive")
BATCHES, BATCH = 16, 256
MAX_Z, MAX_REL = 6.0, 0.1


def draw(gen: PairGenerator, vis_min: float) -> dict[str, np.ndarray]:
    """Each statistic over ``BATCHES`` batches: (BATCHES, ...)."""
    per_batch = [statistics(gen.sample(BATCH), vis_min) for _ in range(BATCHES)]
    return {k: np.stack([s[k] for s in per_batch]) for k in per_batch[0]}


@pytest.mark.parametrize("device", DEVICES)
def test_torch_generator_draws_the_numpy_distribution(clips, device: str) -> None:
    """Each generator draws 16 batches of 256 sequences with its own random numbers. Every
    statistic (493 numbers) has the same mean within ``MAX_Z`` standard errors of the
    difference (from the spread of the batch values; equal distributions exceed 6 about
    once in 1,000 such tests), and the sizes (noise, dropouts, cameras, speed, bone spread)
    agree within ``MAX_REL`` of their value."""
    noise = NoiseModel()
    want = draw(PairGenerator(clips, SEQ_LEN, noise, seed=1, window=WINDOW), noise.vis_min)
    torch_gen = TorchPairGenerator(clips, SEQ_LEN, noise, seed=2, window=WINDOW, device=device)
    got = draw(torch_gen, noise.vis_min)
    assert sum(v[0].size for v in want.values()) == 493
    for name, w in want.items():
        g = got[name]
        diff = g.mean(0) - w.mean(0)
        se = np.sqrt((g.var(0, ddof=1) + w.var(0, ddof=1)) / BATCHES)
        assert (se > 0).mean() > 0.9, name
        z = np.abs(diff) / np.maximum(se, 1e-12)
        assert z.max() <= MAX_Z, f"{name}: {z.max():.1f} standard errors apart"
        if name not in SIGNED:
            np.testing.assert_allclose(g.mean(0), w.mean(0), rtol=MAX_REL, err_msg=name)


@pytest.mark.parametrize("device", DEVICES)
def test_pose_balanced_torch_draws_follow_the_numpy_table(clips, device: str) -> None:
    """With ``balance`` the torch sampler draws (clip, start) from the numpy generator's
    table: the drawn starts' mean probability matches numpy's own draws, and both are
    well above the mean a uniform draw would give."""
    numpy_gen = PairGenerator(clips, SEQ_LEN, seed=5, window=WINDOW, balance=True)
    torch_gen = TorchPairGenerator(clips, SEQ_LEN, seed=5, window=WINDOW, device=device,
                                   balance=True)  # fmt: skip
    table = {(c, s): p for c, s, p in zip(numpy_gen.start_clip, numpy_gen.start_frame,
                                          numpy_gen.start_p, strict=True)}  # fmt: skip
    flat = np.concatenate([c.joints for c in numpy_gen.clips])
    first_row = np.concatenate([[0], np.cumsum([len(c.joints) for c in numpy_gen.clips])])

    def drawn_p(world: np.ndarray) -> float:
        """Mean table probability of the drawn sequences (found by their first frame)."""
        rows = [int(np.flatnonzero((flat == seq[0]).all((1, 2)))[0]) for seq in world]
        clips_of = np.searchsorted(first_row, rows, side="right") - 1
        pairs = zip(clips_of, rows, strict=True)
        return float(np.mean([table[(c, r - first_row[c])] for c, r in pairs]))

    got = drawn_p(host(torch_gen.sequences(400)))
    want = drawn_p(numpy_gen.sequences(400))
    uniform = float(np.mean(numpy_gen.start_p))
    assert got > 1.2 * uniform and want > 1.2 * uniform
    assert got == pytest.approx(want, rel=0.15)
