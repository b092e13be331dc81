"""POF network: ONNX export matches torch, a tiny training run lowers the loss (needs torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.pof_onnx import PofOnnx  # noqa: E402
from models.skeleton import N_LIMBS, adjacency  # noqa: E402
from models.training.export_onnx import export  # noqa: E402
from models.training.mocap import load_clips, split  # noqa: E402
from models.training.pairs import PairGenerator  # noqa: E402
from models.training.pof_net import SemGraphConv, TemporalSemGCN, build  # noqa: E402
from models.training.train import loss_fn, unroll  # noqa: E402
from tests.data import MOCAP_FIXTURE_DIR  # noqa: E402

WINDOW = 3


@pytest.fixture(scope="module")
def clips():
    return split(load_clips(MOCAP_FIXTURE_DIR))[0]


@pytest.fixture(scope="module")
def batch(clips):
    return PairGenerator(clips, seq_len=3, seed=5).sample(16)


@pytest.mark.parametrize("kind", ["semgcn", "semgcn_global", "mlp"])
def test_onnx_matches_torch(kind, batch, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build(kind.split("_")[0], 32, 2, global_context=kind.endswith("global")).eval()
    export(model, tmp_path / "pof.onnx")
    lifter = PofOnnx(tmp_path / "pof.onnx")
    with torch.no_grad():
        want, want_z = unroll(model, torch.from_numpy(batch.features[:1]))
    for t in range(batch.features.shape[1]):  # the wrapper carries the prior itself
        got, z_prob = lifter(batch.uv[0, t], batch.vis[0, t], batch.K[0])
        np.testing.assert_allclose(got, want[0, t].numpy(), atol=1e-4)
        np.testing.assert_allclose(z_prob, torch.sigmoid(want_z[0, t]).numpy(), atol=1e-4)


@pytest.mark.parametrize("kind", ["semgcn", "mlp"])
def test_windowed_model_frame_by_frame_equals_sequence(kind, clips, tmp_path: Path) -> None:
    """The wrapper's own window (padded with the first frame after a reset) is the training
    input: run frame by frame through ONNX it equals the torch run over the whole sequence."""
    torch.manual_seed(0)
    b = PairGenerator(clips, seq_len=4, augment=False, seed=2, window=WINDOW).sample(2)
    model = build(kind, 32, 2, window=WINDOW).eval()
    export(model, tmp_path / "pof.onnx", WINDOW)
    lifter = PofOnnx(tmp_path / "pof.onnx")
    assert lifter.window == WINDOW
    for i in range(2):
        lifter.reset()
        with torch.no_grad():
            want, _ = unroll(model, torch.from_numpy(b.features[i : i + 1]))
        for t in range(b.features.shape[1]):
            got, _ = lifter(b.uv[i, t], b.vis[i, t], b.K[i])
            np.testing.assert_allclose(got, want[0, t].numpy(), atol=1e-4)


def test_graph_conv_is_the_semgcn_sum_over_neighbours() -> None:
    """The node-major product equals SemGCN's per-node formula: own features through W_self
    weighted by the self edge, plus each neighbour's through W_neigh weighted by its edge."""
    torch.manual_seed(0)
    conv = SemGraphConv(8, torch.from_numpy(adjacency()["kinematic"]))
    with torch.no_grad():
        conv.edge.normal_()
    x = torch.randn(N_LIMBS, 5, 8)  # (L, B, D)
    logits = torch.full((N_LIMBS, N_LIMBS), -torch.inf)
    logits[conv.mask] = conv.edge.detach()
    a = torch.softmax(logits, 1)
    want = torch.stack([
        a[i, i] * conv.w_self(x[i])
        + sum(a[i, j] * conv.w_neigh(x[j]) for j in range(N_LIMBS) if j != i and conv.mask[i, j])
        for i in range(N_LIMBS)
    ])  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(conv(x), want, atol=1e-5, rtol=1e-5)


def test_tiny_training_lowers_loss(batch) -> None:
    torch.manual_seed(0)
    model = TemporalSemGCN(32, 2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    feats, target = torch.from_numpy(batch.features), torch.from_numpy(batch.pof)
    losses = []
    for _ in range(40):
        loss = loss_fn(*unroll(model, feats), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_frame_step_windows_span_the_same_time(clips, tmp_path: Path) -> None:
    """At 60 fps (frame_step 2) the window holds every other frame: a sequence with each
    frame shown twice gives what the plain sequence gives at frame_step 1."""
    torch.manual_seed(0)
    b = PairGenerator(clips, seq_len=4, augment=False, seed=3, window=WINDOW).sample(1)
    export(build("mlp", 32, 2, window=WINDOW).eval(), tmp_path / "pof.onnx", WINDOW)
    plain, doubled = PofOnnx(tmp_path / "pof.onnx"), PofOnnx(tmp_path / "pof.onnx", frame_step=2)
    for t in range(b.uv.shape[1]):
        want, _ = plain(b.uv[0, t], b.vis[0, t], b.K[0])
        for _ in range(2):
            got, _ = doubled(b.uv[0, t], b.vis[0, t], b.K[0])
        np.testing.assert_allclose(got, want, atol=1e-6)
