"""How far the multi-view reference itself can be trusted: the floor under every flexion
figure that ``measure_accuracy`` reports.

``uv run python -m models.training.reference_noise [--demo D ...] [--cache DIR]`` (default:
Demo_SinglePerson; Demo_MultiPerson has no frame where all four cameras follow one person)

The reference is MediaPipe's 2D triangulated from three cameras, so it carries MediaPipe's
2D errors too. With four cameras, two disjoint pairs of views ((1,2) vs (3,4), (1,3) vs
(2,4), (1,4) vs (2,3)) give two independent triangulations of the same frame; where both
pairs reproject consistently (``CONSISTENT``) and each reprojects into the other pair's
views as the reference's held-out view must (``SAME_PERSON``), the RMS of their
flexion difference over sqrt(2) is the error of one two-view triangulation. A three-view
reference averages one view more: its error is about sqrt(2/3) of that (an approximation
that takes the views' errors as independent). Flexion RMSE against the reference then
combines as sqrt(pipeline^2 + reference^2).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from core.demo_data import TEST_DEMO
from models.training.accuracy import FLEXIONS, flexion
from models.training.multiview import (
    CONSISTENT,
    SAME_PERSON,
    VIS_OK,
    Camera,
    bbox_diagonal,
    demo_cameras,
    detections,
    triangulate,
)


def residual(cam: Camera, X: np.ndarray, p: np.ndarray) -> float:
    """Median reprojection error of ``X`` against the (J, 2) pixels ``p``, x their box."""
    return float(np.median(np.linalg.norm(cam.project(X) - p, axis=-1))) / bbox_diagonal(p)


def pair_triangulation(
    cams: list[Camera], uv: np.ndarray, vis: np.ndarray, pair: tuple[int, ...], f: int
) -> np.ndarray | None:
    """(J, 3) joints of frame ``f`` from the views ``pair``, None where a view is missing,
    unsure or the two views disagree (another person)."""
    if any(np.isnan(uv[c, f]).any() or np.median(vis[c, f]) < VIS_OK for c in pair):
        return None
    X = triangulate([cams[c] for c in pair], [uv[c, f] for c in pair])
    return X if max(residual(cams[c], X, uv[c, f]) for c in pair) < CONSISTENT else None


def pair_differences(cams: list[Camera], det: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Flexion name -> (N, 2) left/right differences between disjoint pairs of views."""
    uv, vis = det["uv"], det["vis"]
    n_cams, n_frames = uv.shape[:2]
    views = range(n_cams)
    splits = [(a, tuple(c for c in views if c not in a))
              for a in itertools.combinations(views, 2) if 0 in a]  # fmt: skip
    diffs: dict[str, list[np.ndarray]] = {name: [] for name in FLEXIONS}
    for f in range(n_frames):
        for a, b in splits:
            Xa, Xb = (
                pair_triangulation(cams, uv, vis, a, f),
                pair_triangulation(cams, uv, vis, b, f),
            )
            if Xa is None or Xb is None:
                continue
            # Two views alone can agree on a left/right swap in one of them; the other
            # pair's views catch it (and another person), as the reference's third view does.
            cross = [residual(cams[c], X, uv[c, f]) for X, pair in ((Xa, b), (Xb, a)) for c in pair]
            if max(cross) >= SAME_PERSON:
                continue
            for name in FLEXIONS:
                diffs[name].append(flexion(Xa[None], name)[0] - flexion(Xb[None], name)[0])
    return {name: np.array(d).reshape(-1, 2) for name, d in diffs.items()}


def noise_figures(diffs: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per flexion: pair-vs-pair RMS, the two-view and the (approximate) three-view error."""
    out = {}
    for name, d in diffs.items():
        rms = float(np.sqrt(np.nanmean(d**2))) if d.size else float("nan")
        two_view = rms / np.sqrt(2)
        out[name] = {
            "comparisons": int(np.isfinite(d).sum()),
            "pair_vs_pair_rms_deg": round(rms, 1),
            "two_view_rms_deg": round(two_view, 1),
            "three_view_rms_deg": round(two_view * np.sqrt(2 / 3), 1),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", nargs="+", default=[TEST_DEMO])
    ap.add_argument("--cache", type=Path, help="folder for detections (never commit it)")
    args = ap.parse_args(argv)
    print("| demo | flexion | comparisons | pair vs pair RMS | one 2-view reference | "
          "3-view reference (approx.) |\n|---|---|---|---|---|---|")  # fmt: skip
    for demo in args.demo:
        cache = args.cache / f"multiview_{demo}.npz" if args.cache else None
        figures = noise_figures(pair_differences(demo_cameras(demo), detections(demo, cache)))
        for name, fig in figures.items():
            print(f"| {demo} | {name} | {fig['comparisons']} | {fig['pair_vs_pair_rms_deg']} | "
                  f"{fig['two_view_rms_deg']} | {fig['three_view_rms_deg']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
