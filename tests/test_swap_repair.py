"""Swap repair on real MediaPipe detections of the Pose2Sim test demo.

Demo_SinglePerson is the test set (the thresholds were set on Demo_MultiPerson). Which
frames MediaPipe labels the wrong way round is known from the multi-view truth of the other
three cameras (``models/training/swap_truth.py``). Swaps of known kind and length injected
into correctly labelled stretches must be undone from their first frame (a frame of delay
counts as unrepaired), correctly labelled frames must be left alone, and the demo's own
swaps must be found.
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.demo_data import DEMO_CAMERAS, TEST_DEMO, TUNING_DEMO, demo_video
from core.landmarks import MEDIAPIPE_LANDMARKS
from models.training.swap_truth import demo_landmarks, injected, repaired, true_swaps
from offline.runner import process_video
from stages.publish import StreamPublisher
from stages.swap_repair import KINDS, PERMUTATION, SwapRepair, compose, torso_scale
from stream.config import with_overrides
from stream.pipeline import build_stages
from tests.test_live import free_port
from transports.queues import Subscriber
from transports.schema import MARKERS

LENGTHS = (5, 9, 20, 40)  # frames of an injected swap
STEP = 11  # frames between the starts of injected swaps tried in one clean stretch


@pytest.fixture(scope="module")
def demo() -> tuple[dict[str, np.ndarray], list[list[str | None]]]:
    """The detect stage's landmarks of all four cameras (MediaPipe, ~15 s) and their truth."""
    landmarks = demo_landmarks(TEST_DEMO)
    return landmarks, true_swaps(TEST_DEMO, landmarks)


@pytest.fixture()
def stage(config: dict[str, Any]) -> SwapRepair:
    stage = SwapRepair()
    stage.setup(config)
    return stage


def flags(packets: list[Any]) -> list[str]:
    return [p.meta["swap_repaired"] for p in packets]


def test_each_swap_exchanges_left_and_right_names_of_its_part() -> None:
    names = np.array(MEDIAPIPE_LANDMARKS)
    mirrored = [
        n.replace("left", "@").replace("right", "left").replace("@", "right") for n in names
    ]
    assert list(names[PERMUTATION["body"]]) == mirrored
    legs = names[PERMUTATION["legs"] != np.arange(len(names))]
    arms = names[PERMUTATION["arms"] != np.arange(len(names))]
    assert len(legs) == 10 and all(
        n.split("_")[1] in ("hip", "knee", "ankle", "heel", "foot") for n in legs
    )
    assert sorted([*arms, *legs]) == sorted(names[1:])  # all but the nose, each in one part
    for a in KINDS:
        for b in KINDS:
            assert np.array_equal(PERMUTATION[a][PERMUTATION[b]], PERMUTATION[compose(a, b)])


def clean_starts(truth: list[str | None], length: int) -> list[int]:
    """Starts of ``length`` frames that, with a frame either side, are all labelled right."""
    starts, start = [], 1
    while start + length < len(truth):
        if all(k == "" for k in truth[start - 1 : start + length + 1]):
            starts.append(start)
            start += STEP
        else:
            start += 1
    return starts


@pytest.mark.parametrize("kind", ["body", "arms", "legs"])
def test_injected_swaps_are_repaired_from_their_first_frame(
    demo: Any, stage: SwapRepair, kind: str
) -> None:
    landmarks, truth = demo
    swapped = undone = false = 0
    for camera in range(len(DEMO_CAMERAS)):
        plain = flags(repaired(stage, injected(landmarks, camera, "", slice(0))))
        for length in LENGTHS:
            for start in clean_starts(truth[camera], length):
                frames = slice(start, start + length)
                out = repaired(stage, injected(landmarks, camera, kind, frames))
                for f, packet in enumerate(out):
                    if start <= f < start + length:
                        swapped += 1
                        right = np.array_equal(
                            packet.data["landmarks_2d"], landmarks["xy"][camera, f]
                        )
                        undone += packet.meta["swap_repaired"] == kind and right
                    elif truth[camera][f] == "":
                        false += packet.meta["swap_repaired"] != plain[f]
    print(f"{kind}: {undone}/{swapped} injected frames repaired, {false} other frames changed")
    assert swapped > 500
    assert undone >= 0.95 * swapped
    assert false == 0


def test_correctly_labelled_frames_are_left_alone(demo: Any, stage: SwapRepair) -> None:
    landmarks, truth = demo
    right = wrong = 0
    for camera in range(len(DEMO_CAMERAS)):
        out = flags(repaired(stage, injected(landmarks, camera, "", slice(0))))
        for flag, label in zip(out, truth[camera], strict=True):
            if label == "":
                right += 1
                wrong += flag != ""
    print(f"{wrong} of {right} correctly labelled frames repaired")
    assert right > 300
    assert wrong == 0


def test_the_demos_own_swaps_are_found(demo: Any, stage: SwapRepair) -> None:
    """cam02 turns the whole body round at frame 41 for 19 frames, then flickers (the truth
    is sure of frames 68, 70 and 73 there)."""
    landmarks, truth = demo
    cam02 = DEMO_CAMERAS.index("cam02")
    assert truth[cam02][41:60] == ["body"] * 19
    found = total = 0
    for camera in range(len(DEMO_CAMERAS)):
        out = flags(repaired(stage, injected(landmarks, camera, "", slice(0))))
        for flag, label in zip(out, truth[camera], strict=True):
            if label:
                total += 1
                found += flag == label
    print(f"{found} of {total} truly swapped frames repaired")
    assert total >= 19
    assert found >= 0.95 * total


def test_a_track_reset_or_a_long_absence_starts_from_mediapipes_labels(
    demo: Any, stage: SwapRepair
) -> None:
    landmarks, _ = demo
    sequence = injected(landmarks, 0, "body", slice(30, 95))
    assert flags(repaired(stage, sequence))[30:95] == ["body"] * 65
    switch = dict(sequence, track_reset=sequence["track_reset"].copy())
    switch["track_reset"][50] = True  # detect locked onto another person (stages/detect.py)
    assert flags(repaired(stage, switch))[30:95] == ["body"] * 20 + [""] * 45
    for lost, kept in ((5, True), (40, False)):  # frames at 60 fps; max_gap_s is 0.5 s
        gap = dict(sequence, person=sequence["person"].copy())
        gap["person"][40 : 40 + lost] = False
        out = flags(repaired(stage, gap))
        assert out[30:40] == ["body"] * 10 and out[40 : 40 + lost] == [""] * lost
        assert out[40 + lost : 95] == ["body" if kept else ""] * (55 - lost)


def test_disabled_it_passes_every_frame_unchanged(demo: Any, config: dict[str, Any]) -> None:
    landmarks, _ = demo
    stage = SwapRepair()
    stage.setup(with_overrides(config, {"swap_repair.enabled": False}))
    sequence = injected(landmarks, 0, "body", slice(30, 70))
    out = repaired(stage, sequence)
    assert flags(out) == [""] * len(out)
    assert np.array_equal(np.array([p.data["world_3d"] for p in out]), sequence["world"])


def test_the_flag_reaches_pose_markers_and_the_raw_landmarks_csv(
    config: dict[str, Any], tmp_path: Path
) -> None:
    """The whole offline chain on cam02, whose frames 41-59 MediaPipe labels body-swapped."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    publisher = StreamPublisher(endpoint)
    publisher.setup(config)
    subscriber = Subscriber(endpoint, (MARKERS,))
    published: dict[int, str] = {}
    done = threading.Event()

    def collect() -> None:
        while (message := subscriber.recv(timeout_s=0.5)) is not None or not done.is_set():
            if message is not None:
                published[message[1]["frame_index"]] = message[1]["swap_repaired"]

    stages = [*build_stages(config), publisher]
    time.sleep(0.5)  # the subscription reaches the publisher before the first frame
    listener = threading.Thread(target=collect)
    listener.start()
    try:
        process_video(demo_video("cam02"), config, tmp_path, stages, progress=False)
    finally:
        done.set()
        listener.join()
        subscriber.close()
        for stage in stages:
            stage.close()
    with (tmp_path / "cam02" / "cam02_raw_landmarks.csv").open() as file:
        written = [row["swap_repaired"] for row in csv.DictReader(file)]
    assert written[41:60] == ["body"] * 19
    assert len(published) > 90
    assert all(published[f] == written[f] for f in published)


def _twisted(points: np.ndarray) -> bool:
    """Shoulder and hip lines of (33, D) landmarks point opposite ways, both clearly long
    (a tenth of the torso scale: a line seen end-on points anywhere)."""
    left, right = (
        [MEDIAPIPE_LANDMARKS.index(f"{side}_{joint}") for joint in ("shoulder", "hip")]
        for side in ("left", "right")
    )
    shoulders, hips = points[left] - points[right]
    short = 0.1 * torso_scale(points)
    lengths = np.linalg.norm(shoulders), np.linalg.norm(hips)
    return bool(shoulders @ hips < 0 and min(lengths) > short)


@pytest.mark.parametrize("name", [TUNING_DEMO, TEST_DEMO])
def test_a_repair_never_twists_a_straight_trunk(demo: Any, stage: SwapRepair, name: str) -> None:
    """Where MediaPipe's shoulder and hip lines point the same way, the repaired ones do too
    (a one-part repair there turns the trunk 180 degrees, which the lift makes hip jumps of).
    Demo_MultiPerson cam03 frame 54, after 4 frames without the man: his arms' tracks said
    swapped, his foreshortened hips not, and an arms-only repair crossed the trunk for 19
    frames (hip jumps of 0.2-0.27 m); Demo_SinglePerson cam02 frame 60."""
    landmarks = demo[0] if name == TEST_DEMO else demo_landmarks(name)
    checked = twisted = 0
    for camera in range(len(DEMO_CAMERAS)):
        sequence = injected(landmarks, camera, "", slice(0))
        for f, packet in enumerate(repaired(stage, sequence)):
            if packet.meta["person"]:
                checked += 1
                twisted += any(
                    _twisted(packet.data[key]) and not _twisted(sequence[raw][f])
                    for key, raw in (("landmarks_2d", "xy"), ("world_3d", "world"))
                )
    assert checked > 300
    assert twisted == 0, f"{twisted} of {checked} frames twisted by the repair"
