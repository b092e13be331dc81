"""A stateful, frame-by-frame LSTM stack read from a tf2onnx export of a Keras model.

tf2onnx turns each Keras ``LSTM`` layer into an ONNX ``Loop`` over the whole sequence and
keeps the recurrent state inside the loop, so the graph cannot be advanced one frame at a
time. The weights are plain initializers though: this module finds them by following the
loop body (which MatMul reads the input, which reads ``h``, which Add adds the bias),
checks that the four gate blocks have Keras' default activations (i, f, o: sigmoid, not
hard_sigmoid; c: tanh), and steps the same arithmetic in float64 numpy while the caller
carries ``(h, c)`` forward. numpy's small matrix-vector products cost ~0.1 ms per frame for
a 4-5 layer stack; per-frame Python overhead is a few numpy calls per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

# Activation each of the four Split outputs must feed in a Keras LSTM cell (i, f, c, o).
_KERAS_GATES = ("Sigmoid", "Sigmoid", "Tanh", "Sigmoid")


@dataclass(frozen=True)
class LstmLayer:
    """Weights of one Keras LSTM layer; gate blocks ordered i, f, c, o along the last axis."""

    kernel: np.ndarray  # (n_in, 4 n)
    recurrent: np.ndarray  # (n, 4 n)
    bias: np.ndarray  # (4 n,)

    @property
    def units(self) -> int:
        return self.recurrent.shape[0]


@dataclass(frozen=True)
class LstmState:
    """Recurrent state of a stack: one ``h`` and one ``c`` vector per layer."""

    h: list[np.ndarray]
    c: list[np.ndarray]


@dataclass(frozen=True)
class LstmStack:
    """Stacked LSTM layers followed by a per-frame (time-distributed) linear layer."""

    layers: tuple[LstmLayer, ...]
    dense_weight: np.ndarray  # (n, n_out)
    dense_bias: np.ndarray  # (n_out,)

    @classmethod
    def from_onnx(cls, path: str | Path) -> LstmStack:
        """Read the weights of a tf2onnx Keras ``LSTM* -> TimeDistributed(Dense)`` graph."""
        # Imported here: the live sink imports the augment stage's module for its file names
        # (run.json), and onnx with protobuf would cost it ~10 MB it never uses.
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(str(path)).graph
        weights = {
            t.name: numpy_helper.to_array(t).astype(np.float64)
            for t in graph.initializer
            if t.data_type == onnx.TensorProto.FLOAT  # leaves out the int shape/index constants
        }
        layers = tuple(
            _read_layer(node, weights)
            for node in graph.node
            if node.op_type == "Loop" and _is_lstm_body(node.attribute[0].g)
        )
        matmuls = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
        adds = [n for n in graph.node if n.op_type == "Add" and n.input[1] in weights]
        if not layers or len(matmuls) != 1 or len(adds) != 1:
            raise ValueError(f"{path}: not an LSTM stack followed by one dense layer")
        return cls(layers, weights[matmuls[0].input[1]], weights[adds[0].input[1]])

    def zero_state(self) -> LstmState:
        """The state Keras starts every sequence from."""
        return LstmState(
            h=[np.zeros(layer.units) for layer in self.layers],
            c=[np.zeros(layer.units) for layer in self.layers],
        )

    def step(self, x: np.ndarray, state: LstmState) -> np.ndarray:
        """Advance ``state`` in place by one frame of input ``x``; return the dense output."""
        for k, layer in enumerate(self.layers):
            n = layer.units
            z = x @ layer.kernel
            z += state.h[k] @ layer.recurrent
            z += layer.bias
            gates = 1.0 / (1.0 + np.exp(-z))  # i, f and o; the c block is replaced below
            c = state.c[k]
            c *= gates[n : 2 * n]
            c += gates[:n] * np.tanh(z[2 * n : 3 * n])
            x = state.h[k] = gates[3 * n :] * np.tanh(c)
        return x @ self.dense_weight + self.dense_bias


def _is_lstm_body(body: onnx.GraphProto) -> bool:
    """Whether a Loop body is a Keras LSTM cell (a Split into four gates)."""
    return any(n.op_type == "Split" and len(n.output) == 4 for n in body.node)


def _read_layer(loop: onnx.NodeProto, weights: dict[str, np.ndarray]) -> LstmLayer:
    """Map the cell's kernel, recurrent kernel and bias back to the graph initializers."""
    body = loop.attribute[0].g
    consumers = {name: n for n in body.node for name in n.input}
    split = next(n for n in body.node if n.op_type == "Split")
    activations = tuple(consumers[out].op_type for out in split.output)
    if activations != _KERAS_GATES:
        raise ValueError(f"unexpected LSTM gate activations {activations}")
    # Body inputs are (iteration, condition, *carried) and match the Loop's own inputs
    # position by position, so a body input name leads to the initializer fed to the loop.
    outer = dict(zip((i.name for i in body.input), loop.input, strict=True))
    produced_by = {out: n for n in body.node for out in n.output}
    # The input MatMul reads the frame gathered from the sequence; the other one reads h,
    # which is a carried body input rather than the output of a node.
    matmuls = [n for n in body.node if n.op_type == "MatMul"]
    x_matmul = next(n for n in matmuls if n.input[0] in produced_by)
    h_matmul = next(n for n in matmuls if n.input[0] not in produced_by)
    bias_add = produced_by[split.input[0]]
    return LstmLayer(
        kernel=weights[outer[x_matmul.input[1]]],
        recurrent=weights[outer[h_matmul.input[1]]],
        bias=weights[outer[bias_add.input[1]]],
    )
