"""The public stream's schema: topics, payload fields, units and frame (the external API).

External programs subscribe to ``pose.*`` topics on the PUB socket and may ask the control
socket for this description (``{"cmd": "schema"}``), so a client never has to hard-code
marker order or units. ``pose.preview`` (a small camera image) is published only while the
live viewer is open (``[detect] preview``): clients that want poses only subscribe to the
other topics by name.
"""

from __future__ import annotations

from typing import Any

from core.marker_sets import MARKERS_64

# 1.1: pose.status source, reconnects, person_switches; restarts may name capture
# 1.2: levelled lab frame: Y is the true vertical and the floor is Y = 0 (the calibration's
#      world with extrinsics, else origin on the floor below the camera), no longer the
#      camera's up with the origin at the camera; pose.markers swap_repaired (left/right
#      label swaps undone by stages/swap_repair.py); pose.angles NaN also where a value is
#      outside its anatomical range (core/joint_limits.py)
# 1.3: pose.markers confidence and pose.angles confidence (per marker / per angle, 0..1:
#      models/confidence.py)
#      pose.ik (OpenSim coordinates of each frame with run_live --ik); the schema's
#      ik_coordinates names them
#      pose.markers fps (the source's nominal frame rate; LSL's nominal rate); the control
#      socket's run command (the run's provenance)
API_VERSION = "1.3"

COORDINATES = (
    "metres, right-handed, Y up (true vertical), floor at Y = 0; with a calibration that "
    "has extrinsics: its world frame turned to Y up (lab X = world X, Y = world Z, Z = "
    "-world Y); else origin on the floor below the camera, X = the camera's right projected "
    "on the floor, Z = X x Y (toward the camera)"
)

MARKERS, ANGLES, PREVIEW, STATUS = "pose.markers", "pose.angles", "pose.preview", "pose.status"
IK = "pose.ik"
TOPICS: dict[str, dict[str, str]] = {
    MARKERS: {
        "source_id": "str: video file stem, webcam index or stream URL",
        "frame_index": "int: frame number in the source, from 0",
        "timestamp_ns": "int: capture time, CLOCK_MONOTONIC of the capturing host, ns",
        "media_time_s": "float: time in the source, s",
        "fps": "float: the source's nominal frame rate (a file's, or what the camera "
        "reports), frames/s; 0 = unknown",
        "person": "bool: a person was detected in this frame",
        "markers": "ndarray float64 (64, 3): marker positions, m, NaN = missing; order = names",
        "estimated": "ndarray bool (64,): value is estimated, not directly observed",
        "confidence": "ndarray float64 (64,): 0..1, the calibrated probability that the marker "
        "is within 5 cm of the truth (models/confidence.py); 0 = missing",
        "swap_repaired": "str: the left/right labels MediaPipe swapped and the engine swapped "
        'back in this frame: "" none, "body", "arms" (arms, shoulders and face) or "legs" '
        "(hips, legs and feet)",
    },
    ANGLES: {
        "source_id": "str",
        "frame_index": "int",
        "timestamp_ns": "int",
        "angles": "ndarray float64 (N,): joint angles, degrees, NaN = not computable or outside "
        "the joint's anatomical range; order = the control socket's 'angles' reply",
        "confidence": "ndarray float64 (N,): 0..1 per angle, same order: the confidence of the "
        "least sure marker its segment frames are built from; 0 where the angle is NaN",
    },
    IK: {
        "source_id": "str",
        "frame_index": "int",
        "timestamp_ns": "int",
        "values": "ndarray float64 (C,): OpenSim model coordinates, degrees (rotations) or m "
        "(pelvis_tx, pelvis_ty, pelvis_tz), NaN = not solved (no model yet, too few markers); "
        "order = the control socket's 'ik_coordinates' reply",
        "rms_m": "float: RMS distance of the model's markers to the measured ones, m (NaN = "
        "not solved)",
        "max_m": "float: largest of those distances, m",
        "markers": "int: markers the frame was solved with (0 = not solved)",
        "scaled": "bool: a scaled model is in use (false while the first [opensim] scale_s "
        "seconds are collected to scale it)",
        "skipped": "int: frames with a model that were left unsolved so far",
    },
    PREVIEW: {
        "source_id": "str",
        "frame_index": "int",
        "timestamp_ns": "int",
        "person": "bool: a person was detected in this frame",
        "jpeg": "bytes: the frame downscaled (longer side [detect] preview_size px), JPEG",
        "size": "[int, int]: width, height of the preview image, px",
        "landmarks_2d": "ndarray float64 (33, 2): MediaPipe landmarks in preview pixels "
        "(x right, y down), NaN = no person",
        "visibility": "ndarray float64 (33,): MediaPipe visibility, 0..1",
    },
    STATUS: {
        "source_fps": "float: frames captured per second (last interval)",
        "published_fps": "float: frames published per second (last interval)",
        "published": "int: frames published since the start",
        "latency_ms_p50": "float: capture -> publish, median over the last interval",
        "latency_ms_p95": "float: capture -> publish, 95th percentile over the last interval",
        "person": "bool: a person is detected in the newest frame",
        "dropped": "int: frames dropped at the capture end so far (newest frame wins)",
        "restarts": "map str -> int: process restarts so far, by stage name or 'capture'",
        "source": "str: 'ok', or 'reconnecting' while a dropped network stream is retried",
        "reconnects": "int: times a dropped network stream came back so far",
        "person_switches": "int: times detection moved to another person so far ([detect] "
        "person_lock: only after lock_timeout_s without the locked one; stages reset)",
    },
}

ARRAY_ENCODING = (
    'numpy arrays are msgpack maps {"__ndarray__": true, "dtype": "<f8", "shape": [64, 3], '
    '"data": <raw little-endian bytes, C order>}'
)


def schema(angle_names: tuple[str, ...] = (), ik_names: tuple[str, ...] = ()) -> dict[str, Any]:
    """The whole description, as the control socket returns it; ``ik_names``: the OpenSim
    coordinates of ``pose.ik`` (empty without --ik)."""
    return {
        "version": API_VERSION,
        "coordinates": COORDINATES,
        "array_encoding": ARRAY_ENCODING,
        "topics": TOPICS,
        "markers": list(MARKERS_64),
        "angles": list(angle_names),
        "ik_coordinates": list(ik_names),
    }
