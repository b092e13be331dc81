"""Fine-tuning starts from the shipped lifter: its ONNX weights read back into torch give
the same outputs as ONNX Runtime on the same inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from models.features import N_FEATURES
from models.skeleton import N_LIMBS

torch = pytest.importorskip("torch", reason="training needs torch (uv sync --group train)")

from models.training.onnx_weights import load_onnx_weights  # noqa: E402
from models.training.pof_net import PRIOR_FEATURES, build  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "weights" / "pof_mlp_w9.onnx"


def test_shipped_mlp_reproduces_onnx_outputs() -> None:
    model = build("mlp", 1024, 3, window=9).eval()
    load_onnx_weights(model, SHIPPED)
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(16, N_LIMBS, 9 * N_FEATURES)).astype(np.float32)
    prior = rng.normal(size=(16, N_LIMBS, PRIOR_FEATURES)).astype(np.float32)
    session = ort.InferenceSession(str(SHIPPED), providers=["CPUExecutionProvider"])
    inputs = {"features": feats, "prior": prior}  # the MLP's graph drops the unused prior
    names = [i.name for i in session.get_inputs()]
    pof_onnx, z_onnx = session.run(["pof", "z_logit"], {n: inputs[n] for n in names})
    with torch.no_grad():
        pof, z = model(torch.from_numpy(feats), torch.from_numpy(prior))
    assert np.abs(pof.numpy() - pof_onnx).max() < 1e-5
    assert np.abs(z.numpy() - z_onnx).max() < 1e-5 * max(1.0, np.abs(z_onnx).max())


def test_another_architecture_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="another --dim"):
        load_onnx_weights(build("mlp", 512, 3, window=9), SHIPPED)
    proto = onnx.load(str(SHIPPED))
    del proto.graph.initializer[-1]  # head.bias
    broken = tmp_path / "no_head_bias.onnx"
    onnx.save(proto, str(broken))
    with pytest.raises(ValueError, match="head.bias"):
        load_onnx_weights(build("mlp", 1024, 3, window=9), broken)
