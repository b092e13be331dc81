"""Marker and angle confidence on real MediaPipe detections of the Pose2Sim test demo.

One camera's frames go through the real detect stage once; the later stages then run on
copies of those packets: as detected (clean), with one limb's visibility lowered (a limb
MediaPipe sees poorly), with a limb hidden and ``estimate_missing`` on (the markers stage
mirrors it from the other side, as the real pipeline does), and with the legs' left/right
labels exchanged for a stretch of frames (the swap repair undoes it). And the clean
run's markers against the triangulation of the other three cameras: the error falls as
the confidence rises.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.angle_files import confidence_column, write_angle_outputs
from core.angle_set import ANGLE_COLUMNS, ANGLE_GROUPS
from core.demo_data import DEMO_CAMERAS, TEST_DEMO, demo_video
from core.landmarks import LANDMARK
from core.marker_sets import AUGMENTED_FROM, MARKERS_21, MARKERS_64
from core.packet import Packet
from models.confidence import MarkerConfidence
from models.skeleton import JOINTS
from models.training.fit_confidence import aligned_errors, deciles, spearman
from models.training.measure_accuracy import (
    OUTPUT_JOINTS,
    detected_packets,
    reference,
    run_stages,
    split_stages,
)
from models.training.measure_accuracy import with_stages as only
from models.training.multiview import demo_cameras, run_mediapipe
from stages.markers import SWAP_ROWS
from stages.swap_repair import PERMUTATION
from stream.config import with_overrides

LEFT_ARM = ("LElbow", "LWrist")
LEFT_LEG = ("LKnee", "LAnkle", "LHeel", "LBigToe")
SWAPPED = slice(40, 60)  # frames whose leg labels are exchanged (a clean stretch on cam01)


@pytest.fixture(scope="module")
def detected(config: dict[str, Any]) -> list[Packet]:
    """The detect stage's packets of Demo_SinglePerson cam01 (real MediaPipe, ~10 s)."""
    return detected_packets(config, demo_video("cam01"), None)


def later_stages(config: dict[str, Any], packets: list[Packet]) -> list[Packet]:
    """Every stage after detection on copies of ``packets``."""
    return run_stages(only(config, split_stages(config)[1]), copy.deepcopy(packets))


@pytest.fixture(scope="module")
def clean(config: dict[str, Any], detected: list[Packet]) -> list[Packet]:
    return later_stages(config, detected)


def edited(packets: list[Packet], landmarks: tuple[str, ...], visibility: float) -> list[Packet]:
    """Copies of ``packets`` with those landmarks' visibility set to ``visibility``."""
    out = copy.deepcopy(packets)
    rows = [LANDMARK[name] for name in landmarks]
    for packet in out:
        v = packet.data["visibility"].copy()
        v[rows] = visibility
        packet.data["visibility"] = v
    return out


def rows(names: tuple[str, ...]) -> list[int]:
    return [MARKERS_21.index(n) for n in names]


def columns(*groups: str) -> list[int]:
    return [ANGLE_COLUMNS.index(c) for g in groups for c in ANGLE_GROUPS[g]]


def with_person(packets: list[Packet]) -> list[Packet]:
    found = [p for p in packets if p.meta.get("person")]
    assert len(found) > 80  # the subject is seen in (nearly) every frame
    return found


def test_confidences_are_bounded_finite_and_zero_where_missing(clean: list[Packet]) -> None:
    for packet in clean:
        markers = packet.data["markers_64_confidence"]
        angles = packet.data["angles_confidence"]
        assert markers.shape == (len(MARKERS_64),) and angles.shape == (len(ANGLE_COLUMNS),)
        for values in (markers, angles, packet.data["markers_21_confidence"]):
            assert values.dtype == np.float64 and np.all((values >= 0) & (values <= 1))
        assert np.all(markers[~np.isfinite(packet.data["markers_64"]).all(axis=1)] == 0)
        assert np.all(angles[np.isnan(packet.data["angles"])] == 0)


def test_a_clean_frame_is_confident(clean: list[Packet]) -> None:
    observed = np.array([p.data["markers_21_confidence"] for p in with_person(clean)])
    angles = np.array([p.data["angles_confidence"] for p in with_person(clean)])
    assert np.median(observed) > 0.6
    assert np.median(angles[:, columns("knee_r", "knee_l", "hip_r", "hip_l")]) > 0.5


def test_a_poorly_seen_limb_gets_a_low_confidence(
    config: dict[str, Any], detected: list[Packet], clean: list[Packet]
) -> None:
    """Visibility 0.35: still drawn (over ``visibility_min`` 0.3), but MediaPipe is unsure."""
    occluded = later_stages(config, edited(detected, LEFT_ARM, 0.35))
    before = np.array([p.data["markers_21_confidence"] for p in with_person(clean)])
    after = np.array([p.data["markers_21_confidence"] for p in with_person(occluded)])
    arm, rest = rows(LEFT_ARM), rows(("RElbow", "RWrist", "RKnee", "LKnee"))
    assert np.median(after[:, arm]) < 0.5
    assert np.median(before[:, arm] - after[:, arm]) > 0.15
    # the lift and fit weigh the arm less, which moves the others a little, not much
    assert np.median(np.abs(after[:, rest] - before[:, rest])) < 0.05
    elbow = columns("elbow_l")
    conf = np.array([p.data["angles_confidence"][elbow] for p in with_person(occluded)])
    assert np.median(conf) < 0.5


def test_a_mirrored_limb_gets_the_confidence_measured_for_mirrored_markers(
    config: dict[str, Any], detected: list[Packet], clean: list[Packet]
) -> None:
    mirroring = with_overrides(config, {"markers.estimate_missing": True})
    mirrored = later_stages(mirroring, edited(detected, LEFT_LEG, 0.0))
    assert clean  # the same frames, seen whole
    estimated = MarkerConfidence.load().estimated
    assert estimated < 0.5
    leg = rows(LEFT_LEG)
    following = [MARKERS_64.index(m) for m, src in AUGMENTED_FROM.items() if "LKnee" in src]
    right_knees = []
    for packet in with_person(mirrored):
        assert packet.data["markers_21_estimated"][leg].all()  # the real mirroring happened
        np.testing.assert_allclose(packet.data["markers_21_confidence"][leg], estimated)
        assert np.all(packet.data["markers_64_confidence"][following] <= estimated)
        assert np.all(packet.data["angles_confidence"][columns("knee_l")] <= estimated)
        right_knees.append(packet.data["angles_confidence"][columns("knee_r")])
    assert np.median(right_knees) > estimated + 0.1  # the seen leg stays confident


def test_a_repaired_swap_lowers_the_confidence_of_its_part(
    config: dict[str, Any], detected: list[Packet], clean: list[Packet]
) -> None:
    swapped = copy.deepcopy(detected)
    for packet in swapped[SWAPPED]:
        for key in ("landmarks_2d", "visibility", "world_3d"):
            packet.data[key] = packet.data[key][PERMUTATION["legs"]]
    repaired = later_stages(config, swapped)
    factor = float(config["confidence"]["swap_factor"])
    legs, arms = SWAP_ROWS["legs"], SWAP_ROWS["arms"]
    frames = [f for f in range(SWAPPED.start, SWAPPED.stop) if clean[f].meta["person"]]
    assert len(frames) > 15
    for f in frames:
        assert repaired[f].meta["swap_repaired"] == "legs"
        after, before = (p[f].data["markers_21_confidence"] for p in (repaired, clean))
        np.testing.assert_allclose(after[legs], factor * before[legs], atol=1e-9)
        np.testing.assert_allclose(after[arms], before[arms], atol=1e-9)
    assert repaired[SWAPPED.stop].meta["swap_repaired"] == ""  # MediaPipe's labels are right again
    after, before = (p[SWAPPED.stop].data["markers_21_confidence"] for p in (repaired, clean))
    np.testing.assert_allclose(after[legs], factor * before[legs], atol=1e-9)  # swap_hold_s


def test_angle_csvs_carry_each_angles_confidence(tmp_path: Path, clean: list[Packet]) -> None:
    times = np.array([p.media_time_s for p in clean])
    angles = np.array([p.data["angles"] for p in clean])
    confidence = np.array([p.data["angles_confidence"] for p in clean])
    write_angle_outputs(tmp_path, "cam01", times, angles, plots=False, confidence=confidence)
    path = tmp_path / "joint_angles" / "cam01_knee_l.csv"
    header = path.read_text().splitlines()[0].split(",")
    knee = ANGLE_GROUPS["knee_l"]
    assert header == ["time", *knee, *(confidence_column(c) for c in knee)]
    assert confidence_column("knee_l_flex_deg") == "knee_l_flex_confidence"
    table = np.genfromtxt(path, delimiter=",", skip_header=1)
    np.testing.assert_allclose(table[:, 4:], confidence[:, columns("knee_l")], atol=1e-6)


def test_the_error_falls_as_the_confidence_rises(clean: list[Packet]) -> None:
    """cam01 against the other three cameras' triangulation (MediaPipe on each, ~20 s)."""
    shape = (len(DEMO_CAMERAS), len(clean), len(JOINTS))
    detections = {"uv": np.full((*shape, 2), np.nan), "vis": np.zeros(shape)}
    for c, camera in enumerate(DEMO_CAMERAS[1:], start=1):
        uv, vis, _ = run_mediapipe(demo_video(camera, TEST_DEMO))
        detections["uv"][c], detections["vis"][c] = uv, vis
    frames, truth, _ = reference(demo_cameras(TEST_DEMO), detections, 0, clean)
    assert len(frames) > 80
    out = [clean[f].data for f in frames]
    error = np.array(
        [aligned_errors(d["markers_21"][OUTPUT_JOINTS], t) for d, t in zip(out, truth, strict=True)]
    )
    confidence = np.array([d["markers_21_confidence"][OUTPUT_JOINTS] for d in out])
    ok = np.isfinite(error)
    tenths = [t["median_error"] for t in deciles(confidence[ok], error[ok])]
    assert spearman(confidence[ok], error[ok]) < -0.15
    assert tenths[0] > tenths[-1] + 0.02  # m: the least sure tenth against the surest
    assert np.mean(tenths[:3]) > np.mean(tenths[-3:]) + 0.01
