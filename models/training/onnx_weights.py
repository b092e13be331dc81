"""Start a torch POF network from an exported ONNX file's weights (fine-tuning).

``export_onnx.py`` keeps the torch parameter names as the graph's initializer names (the
MLP's Gemm weights stay (out, in), as ``nn.Linear`` stores them), so an exported network is
read back by name; a file from another architecture or size is refused, naming what differs.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch
from onnx import numpy_helper


def load_onnx_weights(model: torch.nn.Module, path: Path) -> None:
    """Copy ``path``'s initializers into ``model``'s parameters of the same names and shapes."""
    stored = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    state = model.state_dict()
    missing = sorted(set(state) - set(stored))
    if missing:
        raise ValueError(f"{path} has no weights for {', '.join(missing[:4])}: not an export "
                         "of this architecture")  # fmt: skip
    wrong = [k for k in state if tuple(stored[k].shape) != tuple(state[k].shape)]
    if wrong:
        k = wrong[0]
        raise ValueError(f"{path}: {k} is {tuple(stored[k].shape)}, the model's is "
                         f"{tuple(state[k].shape)} (another --dim/--layers/--window?)")  # fmt: skip
    model.load_state_dict({k: torch.from_numpy(stored[k].copy()) for k in state})
