"""Random virtual pinhole cameras around a mocap sequence, and projection.

Camera frame is OpenCV's (x right, y down, z forward), the frame MediaPipe's pixels and
the POF targets live in. Viewpoints cover the full azimuth circle, elevation -15..45 deg,
2-8 m, 50-80 deg field of view across the longer side, portrait and landscape frames;
the look-at point is jittered so the person is sometimes only partly in view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SIZES = np.array(
    [(1920, 1080), (1280, 720), (640, 480), (1080, 1920), (720, 1280), (480, 640)]
)
ELEVATION_DEG = (-15.0, 45.0)
DISTANCE_M = (2.0, 8.0)
FOV_DEG = (50.0, 80.0)
AIM_JITTER = 0.3  # look-at jitter, fraction of the half field of view across the short side
MIN_IN_VIEW = 0.5  # at least this fraction of joints inside the image (middle frame)


@dataclass
class Cameras:
    """A batch of cameras: world->camera rotation and centre, intrinsics, image size."""

    R: np.ndarray  # (B, 3, 3)
    centre: np.ndarray  # (B, 3), world
    K: np.ndarray  # (B, 3, 3)
    size: np.ndarray  # (B, 2) width, height

    def to_camera(self, world: np.ndarray) -> np.ndarray:
        """(B, T, J, 3) world points -> camera frame."""
        return np.einsum("bij,btkj->btki", self.R, world - self.centre[:, None, None])


def project(cam_pts: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of (B, T, J, 3) camera-frame points with (B, 3, 3) intrinsics."""
    xy = cam_pts[..., :2] / cam_pts[..., 2:3]
    f = np.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None, None]
    c = K[:, :2, 2][:, None, None]
    return xy * f + c


def look_at(eye: np.ndarray, target: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """World->camera rotations (rows: right, down, forward) with a world Y-up horizon."""
    fwd = target - eye
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
    right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(fwd, right)
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, fwd], 1)


def random_cameras(rng: np.random.Generator, world: np.ndarray, tries: int = 8) -> Cameras:
    """Cameras looking at each (B, T, J, 3) sequence, resampled until enough joints show."""
    b = len(world)
    centre = world.mean(axis=(1, 2))
    out = Cameras(np.zeros((b, 3, 3)), np.zeros((b, 3)), np.zeros((b, 3, 3)), np.zeros((b, 2)))
    todo = np.arange(b)
    for attempt in range(tries):
        n = len(todo)
        size = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES), size=n)].astype(np.float64)
        fov = np.radians(rng.uniform(*FOV_DEG, n))
        f = 0.5 * size.max(1) / np.tan(fov / 2)
        K = np.zeros((n, 3, 3))
        K[:, 0, 0] = K[:, 1, 1] = f
        K[:, :2, 2] = size / 2 + rng.normal(0, 0.01, (n, 2)) * size
        K[:, 2, 2] = 1
        az = rng.uniform(0, 2 * np.pi, n)
        el = np.radians(rng.uniform(*ELEVATION_DEG, n))
        dist = rng.uniform(*DISTANCE_M, n)
        ray = np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], -1)
        half_short = dist * 0.5 * size.min(1) / f
        target = centre[todo] + rng.normal(0, 1, (n, 3)) * (AIM_JITTER * half_short)[:, None]
        eye = target + dist[:, None] * ray
        R = look_at(eye, target, np.radians(rng.normal(0, 3, n)))
        pts = np.einsum("bij,btkj->btki", R, world[todo] - eye[:, None, None])
        mid = project(pts, K)[:, pts.shape[1] // 2]
        inside = ((mid >= 0) & (mid <= size[:, None])).all(-1).mean(-1)
        ok = (pts[..., 2] > 0.3).all(axis=(1, 2)) & (inside >= MIN_IN_VIEW)
        ok |= attempt == tries - 1  # rare: keep the last draw rather than loop forever
        i = todo[ok]
        out.R[i], out.centre[i], out.K[i], out.size[i] = R[ok], eye[ok], K[ok], size[ok]
        todo = todo[~ok]
        if not len(todo):
            break
    return out
