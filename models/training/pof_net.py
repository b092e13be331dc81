"""POF networks (torch, training only): limbs as graph nodes -> unit 3D limb orientations.

``TemporalSemGCN``: each layer runs three semantic graph convolutions in parallel, one per
edge type (joint sharing, kinematic parent->child, left/right symmetry), each with learnable
edge weights (SemGCN, Zhao et al. CVPR 2019), and fuses them by a learned weighted sum; a
temporal encoder embeds the previous frame's predicted orientations so the network can keep
depth signs consistent over time. Heads: POF (unit vector per limb, camera frame) and the
sign of each limb's depth component (auxiliary, it makes the front/back ambiguity explicit).
``FrameMLP`` is the simpler baseline to compare against. Both take a causal window of 2D
frames per limb (models/features.py; window 1 = single frame).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from models.features import N_FEATURES
from models.skeleton import N_LIMBS, adjacency

PRIOR_FEATURES = 4  # previous orientation (3) + "a previous frame exists" flag


class SemGraphConv(nn.Module):
    """SemGCN layer: softmax-normalised learnable weights on a fixed set of edges.

    Works node-major, (L, B, D): the neighbour sum is then one plain matrix product over
    the flattened batch (batch-major would copy a transpose in every layer, 11% of a step).
    """

    def __init__(self, dim: int, adj: torch.Tensor) -> None:
        super().__init__()
        mask = (adj + torch.eye(len(adj))) > 0
        self.register_buffer("mask", mask)
        self.register_buffer("eye", torch.eye(len(adj)))
        self.edge = nn.Parameter(torch.ones(int(mask.sum())))
        self.w_self = nn.Linear(dim, dim, bias=False)
        self.w_neigh = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.full(self.mask.shape, -1e9, device=x.device, dtype=x.dtype)
        logits = logits.masked_scatter(self.mask, self.edge)
        a = torch.softmax(logits, dim=1)
        neigh = ((a * (1 - self.eye)) @ self.w_neigh(x).flatten(1)).view(x.shape)
        return torch.diagonal(a)[:, None, None] * self.w_self(x) + neigh


class FusedLayer(nn.Module):
    """Parallel edge-type convolutions, fused by a learned weighted sum, residual.

    With ``global_context`` a further branch adds the mean over all limbs: a few graph hops
    do not reach across the body (wrist to opposite foot is 6), yet depth is a whole-body cue.
    """

    def __init__(self, dim: int, adjs: list[torch.Tensor], global_context: bool) -> None:
        super().__init__()
        self.convs = nn.ModuleList(SemGraphConv(dim, a) for a in adjs)
        self.glob = nn.Linear(dim, dim) if global_context else None
        self.mix = nn.Parameter(torch.zeros(len(adjs) + global_context))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.mix, 0)
        y = sum(w[i] * conv(x) for i, conv in enumerate(self.convs))
        if self.glob is not None:
            y = y + w[-1] * self.glob(x.mean(0, keepdim=True))
        return self.norm(x + F.gelu(y))


class TemporalSemGCN(nn.Module):
    """(B, L, W x 11) windowed limb features + (B, L, 4) previous POF -> (pof (B, L, 3),
    z logits (B, L))."""

    def __init__(
        self, dim: int = 256, layers: int = 4, global_context: bool = False, window: int = 1
    ) -> None:
        super().__init__()
        adj = adjacency()
        adjs = [torch.from_numpy(adj[k]) for k in ("share", "kinematic", "symmetry")]
        adjs[1] = adjs[1] + adjs[1].T  # convolve both ways; edge weights stay directional
        self.embed = nn.Linear(window * N_FEATURES, dim)
        self.node = nn.Parameter(torch.zeros(N_LIMBS, dim))
        self.prior = nn.Sequential(nn.Linear(PRIOR_FEATURES, dim), nn.GELU(), nn.Linear(dim, dim))
        self.layers = nn.ModuleList(FusedLayer(dim, adjs, global_context) for _ in range(layers))
        self.pof = nn.Linear(dim, 3)
        self.zsign = nn.Linear(dim, 1)

    def forward(
        self, feats: torch.Tensor, prior: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, prior = feats.transpose(0, 1), prior.transpose(0, 1)  # node-major, (L, B, .)
        x = self.embed(feats) + self.node[:, None] + self.prior(prior)
        for layer in self.layers:
            x = layer(x)
        pof = F.normalize(self.pof(x), dim=-1).transpose(0, 1)
        return pof, self.zsign(x)[..., 0].transpose(0, 1)


class FrameMLP(nn.Module):
    """Baseline: all limb features (of the window) flattened through an MLP (prior ignored)."""

    def __init__(self, dim: int = 512, layers: int = 3, window: int = 1) -> None:
        super().__init__()
        mods: list[nn.Module] = [nn.Linear(N_LIMBS * N_FEATURES * window, dim), nn.GELU()]
        for _ in range(layers - 1):
            mods += [nn.Linear(dim, dim), nn.GELU()]
        self.body = nn.Sequential(*mods)
        self.head = nn.Linear(dim, N_LIMBS * 4)

    def forward(
        self, feats: torch.Tensor, prior: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.body(feats.flatten(-2))).unflatten(-1, (N_LIMBS, 4))
        return F.normalize(out[..., :3], dim=-1), out[..., 3]


def build(
    kind: str, dim: int, layers: int, global_context: bool = False, window: int = 1
) -> nn.Module:
    """A model by name: ``semgcn`` (temporal) or ``mlp``; ``window`` input frames each."""
    if kind == "semgcn":
        return TemporalSemGCN(dim, layers, global_context, window)
    return FrameMLP(dim, layers, window)
