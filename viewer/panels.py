"""The viewer's panels, each a few vispy visuals in one ViewBox: the 3D skeleton, the camera
image with its 2D landmarks, and the joint-angle plots.

Panels only draw what they are given; deciding what to show (newest frame, paused, no
person, stale stream) is the window's job. Missing points (NaN) are never drawn, and a
bone is drawn only when both of its ends exist, so a lost limb disappears instead of
collapsing to the origin.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
from vispy import scene

from viewer.skeleton import (
    LEFT,
    RIGHT,
    landmark_bones,
    landmark_side,
    marker_bones,
    marker_side,
    side_colours,
)

GRID_HALF_M = 3.0  # the floor grid spans 6 m x 6 m around the subject
GRID_STEP_M = 0.5
FOLLOW = 0.1  # per frame: how fast the 3D view's centre and floor follow the subject
TEXT = (0.9, 0.9, 0.9, 1.0)
GRID = (0.35, 0.35, 0.35, 1.0)


def set_caption(visual: scene.visuals.Text, text: str, pos: tuple[float, float]) -> None:
    """Change a text only where it differs: laying out glyphs again costs a millisecond."""
    visual.visible = bool(text)
    if text != visual.text:
        visual.text = text
    if not np.allclose(visual.pos[0, :2], pos):
        visual.pos = pos


def _segments(
    points: np.ndarray, pairs: np.ndarray, sides: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Vertices and colours of the segments whose two ends are finite (None: no segment)."""
    if not len(pairs):
        return None, None
    ends = points[pairs]  # (K, 2, D)
    keep = np.isfinite(ends).all(axis=(1, 2))
    if not keep.any():
        return None, None
    colours = np.repeat(side_colours(sides[keep]), 2, axis=0)
    return ends[keep].reshape(-1, points.shape[1]).astype(np.float32), colours


def _set_segments(
    line: scene.visuals.Line, points: np.ndarray, pairs: np.ndarray, sides: np.ndarray
) -> None:
    pos, colours = _segments(points, pairs, sides)
    line.visible = pos is not None
    if pos is not None:
        line.set_data(pos=pos, color=colours)


def _set_points(
    markers: scene.visuals.Markers,
    points: np.ndarray,
    colours: np.ndarray,
    size: float | np.ndarray,
) -> None:
    keep = np.isfinite(points).all(axis=1)
    markers.visible = bool(keep.any())
    if keep.any():
        markers.set_data(
            points[keep].astype(np.float32), face_color=colours[keep], size=size, edge_width=0
        )


class SkeletonView:
    """Markers and bones in 3D over a floor grid; the turntable camera (Y up) orbits with
    the left mouse button and zooms with the wheel, starting from the camera's viewpoint."""

    def __init__(self, view: scene.ViewBox) -> None:
        self.view = view
        view.camera = scene.TurntableCamera(
            up="+y", fov=45.0, elevation=15.0, azimuth=180.0, distance=3.5
        )
        self._grid = scene.visuals.Line(
            parent=view.scene, connect="segments", color=GRID, method="gl"
        )
        self._bones = scene.visuals.Line(parent=view.scene, connect="segments", width=4)
        self._points = scene.visuals.Markers(parent=view.scene)
        self._message = scene.visuals.Text(
            "", parent=view, color=TEXT, font_size=16, anchor_x="center", anchor_y="center"
        )
        self._pairs = np.zeros((0, 2), dtype=np.int64)
        self._sides = np.zeros(0, dtype=int)
        self._colours = np.zeros((0, 4), dtype=np.float32)
        self._sizes = np.zeros(0, dtype=np.float32)
        self._centre: np.ndarray | None = None
        self._floor: float | None = None
        self._grid_at: tuple[float, float, float] | None = None

    def set_names(self, names: Sequence[str]) -> None:
        """The marker order of the coming frames (video markers drawn larger)."""
        self._pairs, self._sides = marker_bones(names)
        self._colours = side_colours([marker_side(n) for n in names])
        self._sizes = np.array([5.0 if n.endswith("_study") else 9.0 for n in names])

    def show(self, xyz: np.ndarray | None, message: str = "") -> None:
        """Draw one frame of markers (N, 3); None hides the skeleton; ``message`` overlays."""
        set_caption(self._message, message, (self.view.size[0] / 2, self.view.size[1] / 2))
        if xyz is None or not len(self._colours):
            self._bones.visible = self._points.visible = False
            return
        _set_segments(self._bones, xyz, self._pairs, self._sides)
        _set_points(self._points, xyz, self._colours, self._sizes)

    def follow(self, xyz: np.ndarray) -> None:
        """Glide the view's centre to the subject and the floor to its lowest marker."""
        finite = xyz[np.isfinite(xyz).all(axis=1)]
        if not len(finite):
            return
        centre, low = finite.mean(axis=0), float(finite[:, 1].min())
        if self._centre is None or self._floor is None:
            self._centre, self._floor = centre, low
        else:
            self._centre = self._centre + FOLLOW * (centre - self._centre)
            self._floor = low if low < self._floor else self._floor + FOLLOW * (low - self._floor)
        self._place(self._centre, self._floor)

    def frame_all(self, frames: np.ndarray) -> None:
        """Centre on a whole recording (T, N, 3) and put the floor under its feet."""
        lows = np.nanmin(frames[..., 1], axis=1)
        if np.isfinite(lows).any():
            self._place(np.nanmean(frames, axis=(0, 1)), float(np.nanpercentile(lows, 2)))

    def _place(self, centre: np.ndarray, floor: float) -> None:
        self.view.camera.center = tuple(float(v) for v in centre)
        grid_at = (round(centre[0]), round(floor, 2), round(centre[2]))  # moves in whole metres
        if grid_at != self._grid_at:
            self._grid_at = grid_at
            self._grid.set_data(pos=_floor_grid(*grid_at))


def _floor_grid(x: float, y: float, z: float) -> np.ndarray:
    """Segments of a square grid in the plane Y = y, centred on (x, z)."""
    ticks = np.arange(-GRID_HALF_M, GRID_HALF_M + 1e-9, GRID_STEP_M)
    lines = []
    for t in ticks:
        lines += [(x + t, y, z - GRID_HALF_M), (x + t, y, z + GRID_HALF_M)]
        lines += [(x - GRID_HALF_M, y, z + t), (x + GRID_HALF_M, y, z + t)]
    return np.array(lines, dtype=np.float32)


class CameraView:
    """The camera image (the stream's preview) with MediaPipe's landmarks drawn over it;
    landmarks below the visibility threshold are left out, as the pipeline does."""

    def __init__(self, view: scene.ViewBox, visibility_min: float) -> None:
        self.view = view
        self.visibility_min = visibility_min
        view.camera = scene.PanZoomCamera(aspect=1.0)
        view.camera.flip = (False, True, False)  # image rows run downwards
        self._image = scene.visuals.Image(
            np.zeros((2, 2, 3), np.uint8), parent=view.scene, interpolation="linear"
        )
        self._bones = scene.visuals.Line(parent=view.scene, connect="segments", width=2)
        self._points = scene.visuals.Markers(parent=view.scene)
        for order, visual in enumerate((self._image, self._bones, self._points)):
            visual.order = order
            visual.set_gl_state("translucent", depth_test=False)
        self._message = scene.visuals.Text(
            "waiting for the camera", parent=view, color=TEXT, font_size=12, anchor_x="center"
        )
        self._pairs, self._sides = landmark_bones()
        self._colours = side_colours([landmark_side(i) for i in range(33)])
        self._size: tuple[int, int] | None = None

    def show(
        self, rgb: np.ndarray | None, landmarks: np.ndarray | None, visibility: np.ndarray | None
    ) -> None:
        """Draw an image (H, W, 3) and its landmarks (33, 2) in image pixels (None: none)."""
        if rgb is not None:
            self._image.set_data(rgb)
            size = (rgb.shape[1], rgb.shape[0])
            if size != self._size:
                self._size = size
                self.view.camera.rect = (0, 0, size[0], size[1])
        waiting = "" if self._size else "waiting for the camera"
        set_caption(self._message, waiting, (self.view.size[0] / 2, self.view.size[1] / 2))
        if landmarks is None or visibility is None:
            self._bones.visible = self._points.visible = False
            return
        xy = np.where((visibility >= self.visibility_min)[:, None], landmarks, np.nan)
        _set_segments(self._bones, xy, self._pairs, self._sides)
        _set_points(self._points, xy, self._colours, 6.0)


class AnglePlots:
    """Joint angles over the last ``history_s`` seconds: one band per joint, stacked in one
    view, left and right in their side colours; each band's range follows its data. All of
    it is one line and one text visual: with software OpenGL every visual costs about a
    millisecond per redraw, and every new text a few more."""

    def __init__(self, view: scene.ViewBox, wanted: Sequence[str], history_s: float) -> None:
        self.view = view
        self.history_s = history_s
        self._joints: dict[str, list[str]] = {}
        for name in wanted:  # "knee_l_flex_deg" -> band "knee flex", line "l"; "knee_angle_r"
            parts = name.removesuffix("_deg").split("_")
            joint = " ".join(p for p in parts if p not in ("l", "r"))
            self._joints.setdefault(joint, []).append(name)
        view.camera = scene.PanZoomCamera(interactive=False)
        view.camera.rect = (-history_s, 0.0, history_s, float(len(self._joints)))
        self._line = scene.visuals.Line(parent=view.scene, width=2)
        self._text = scene.visuals.Text(
            "", parent=view.scene, font_size=9, anchor_x="left", anchor_y="bottom"
        )  # vispy's "bottom" hangs the text below its position when Y points up
        self._index: dict[str, int] = {}
        self._times: deque[int] = deque()
        self._values: deque[np.ndarray] = deque()

    @property
    def samples(self) -> int:
        """How many angle frames are buffered."""
        return len(self._times)

    def set_columns(self, columns: Sequence[str]) -> None:
        """The stream's angle order (the control socket's ``angles``)."""
        names = [n for names in self._joints.values() for n in names]
        self._index = {name: columns.index(name) for name in names if name in columns}

    def add(self, timestamp_ns: int, angles: np.ndarray) -> None:
        if not self._index:
            return
        self._times.append(timestamp_ns)
        self._values.append(np.array([angles[i] for i in self._index.values()]))
        while timestamp_ns - self._times[0] > self.history_s * 1e9:
            self._times.popleft()
            self._values.popleft()

    def redraw(self) -> None:
        if not self._times:
            self._line.visible = self._text.visible = False
            return
        t = (np.array(self._times) - self._times[-1]) / 1e9
        values = np.array(self._values)
        column = {name: k for k, name in enumerate(self._index)}
        curves: list[tuple[np.ndarray, str]] = []  # (points (N, 2), column name)
        labels: list[tuple[str, tuple, tuple]] = []  # (text, position, colour)
        n_bands = len(self._joints)
        x_label = -self.history_s * 0.99
        for k, (joint, names) in enumerate(self._joints.items()):
            base = n_bands - 1 - k  # the first joint on top
            shown = {n: values[:, column[n]] for n in names if n in column}
            low, high = _range(np.concatenate([*shown.values(), [np.nan]]))
            for name, y in shown.items():
                scaled = base + 0.05 + 0.8 * (y - low) / (high - low)
                curves.append((np.column_stack([t, scaled]), name))
            curves.append((np.array([[-self.history_s, base], [0.0, base]]), "separator"))
            labels.append((f"{joint}  {low:.0f} .. {high:.0f} deg", (x_label, base + 0.97), TEXT))
        per_second = self.view.size[0] / self.history_s  # px
        for offset, (word, colour) in enumerate((("right", RIGHT), ("left", LEFT))):
            labels.append((word, (-(40 + 40 * offset) / per_second, n_bands - 0.03), colour))
        pos, colours, pairs = _polylines(curves)
        self._line.visible = self._text.visible = True
        self._line.set_data(pos=pos, color=colours, connect=pairs)
        text, pos, colours = zip(*labels, strict=True)
        if list(text) != self._text.text:
            self._text.text = list(text)
            self._text.color = list(colours)
        self._text.pos = np.array(pos)


def _range(values: np.ndarray) -> tuple[float, float]:
    """A band's vertical range: the data's, widened to whole multiples of 10 degrees (at
    least 30) so the scale, and its label, change only now and then."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return 0.0, 30.0
    low = 10 * np.floor(finite.min() / 10)
    high = max(10 * np.ceil(finite.max() / 10), low + 30)
    return float(low), float(high)


def _polylines(curves: list[tuple[np.ndarray, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, colours and segment pairs of several polylines broken at missing values;
    a curve's colour is its side's (``..._l_...`` or ``..._l`` left, ``_r`` right: ISB
    angles and OpenSim coordinates), grey otherwise."""
    pos, colours, pairs, offset = [], [], [], 0
    for points, name in curves:
        good = np.isfinite(points).all(axis=1)
        steps = np.flatnonzero(good[:-1] & good[1:])
        side = -1 if "_l_" in f"{name}_" else 1 if "_r_" in f"{name}_" else 0
        colour = side_colours([side])[0] if side else np.array(GRID, np.float32)
        pos.append(np.where(good[:, None], points, 0.0))
        colours.append(np.repeat(colour[None], len(points), axis=0))
        pairs.append(np.column_stack([steps, steps + 1]) + offset)
        offset += len(points)
    return (
        np.concatenate(pos).astype(np.float32),
        np.concatenate(colours),
        np.concatenate(pairs).astype(np.uint32),
    )
