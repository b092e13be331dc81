"""Random virtual pinhole cameras around a mocap sequence, and projection.

Camera frame is OpenCV's (x right, y down, z forward), the frame MediaPipe's pixels and
the POF targets live in. Viewpoints cover the full azimuth circle, elevation -15..45 deg,
2-8 m, 50-80 deg field of view across the longer side, portrait and landscape frames;
the look-at point is jittered so the person is sometimes only partly in view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.arrays import Array, Random, arange, asarray, astype, cross, namespace, norm, zeros

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

    R: Array  # (B, 3, 3)
    centre: Array  # (B, 3), world
    K: Array  # (B, 3, 3)
    size: Array  # (B, 2) width, height

    def to_camera(self, world: Array) -> Array:
        """(B, T, J, 3) world points -> camera frame."""
        return namespace(world).einsum("bij,btkj->btki", self.R, world - self.centre[:, None, None])


def project(cam_pts: Array, K: Array) -> Array:
    """Pinhole projection of (B, T, J, 3) camera-frame points with (B, 3, 3) intrinsics."""
    xy = cam_pts[..., :2] / cam_pts[..., 2:3]
    f = namespace(K).stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None, None]
    c = K[:, :2, 2][:, None, None]
    return xy * f + c


def look_at(eye: Array, target: Array, roll: Array) -> Array:
    """World->camera rotations (rows: right, down, forward) with a world Y-up horizon."""
    xp = namespace(eye)
    fwd = target - eye
    fwd /= norm(fwd, keepdims=True)
    right = cross(fwd, asarray([0.0, 1.0, 0.0], fwd))
    right /= norm(right, keepdims=True)
    down = cross(fwd, right)
    c, s = xp.cos(roll)[:, None], xp.sin(roll)[:, None]
    right, down = c * right + s * down, -s * right + c * down
    return xp.stack([right, down, fwd], 1)


def random_cameras(rng: Random, world: Array, tries: int = 8) -> Cameras:
    """Cameras looking at each (B, T, J, 3) sequence, resampled until enough joints show.

    ``rng``: a numpy Generator, or models/training/pairs_torch.py's torch one for tensors.
    """
    xp = namespace(world)
    b = len(world)
    centre = world.mean((1, 2))
    out = Cameras(
        *(zeros(shape, "float64", world) for shape in ((b, 3, 3), (b, 3), (b, 3, 3), (b, 2)))
    )
    todo = arange(b, world)
    sizes = astype(asarray(IMAGE_SIZES, world), "float64")
    for attempt in range(tries):
        n = len(todo)
        size = sizes[rng.integers(len(IMAGE_SIZES), size=n)]
        fov = xp.deg2rad(rng.uniform(*FOV_DEG, n))
        f = 0.5 * xp.amax(size, 1) / xp.tan(fov / 2)
        K = zeros((n, 3, 3), "float64", world)
        K[:, 0, 0] = K[:, 1, 1] = f
        K[:, :2, 2] = size / 2 + rng.normal(0, 0.01, (n, 2)) * size
        K[:, 2, 2] = 1
        az = rng.uniform(0, 2 * np.pi, n)
        el = xp.deg2rad(rng.uniform(*ELEVATION_DEG, n))
        dist = rng.uniform(*DISTANCE_M, n)
        ray = xp.stack([xp.cos(el) * xp.sin(az), xp.sin(el), xp.cos(el) * xp.cos(az)], -1)
        half_short = dist * 0.5 * xp.amin(size, 1) / f
        target = centre[todo] + rng.normal(0, 1, (n, 3)) * (AIM_JITTER * half_short)[:, None]
        eye = target + dist[:, None] * ray
        R = look_at(eye, target, xp.deg2rad(rng.normal(0, 3, n)))
        pts = xp.einsum("bij,btkj->btki", R, world[todo] - eye[:, None, None])
        mid = project(pts, K)[:, pts.shape[1] // 2]
        inside = astype(((mid >= 0) & (mid <= size[:, None])).all(-1), "float64").mean(-1)
        ok = (pts[..., 2] > 0.3).all(-1).all(-1) & (inside >= MIN_IN_VIEW)
        ok |= attempt == tries - 1  # rare: keep the last draw rather than loop forever
        i = todo[ok]
        out.R[i], out.centre[i], out.K[i], out.size[i] = R[ok], eye[ok], K[ok], size[ok]
        todo = todo[~ok]
        if not len(todo):
            break
    return out
