"""Augment: 21 video markers -> 64 markers with Pose2Sim's (OpenCap) LSTM augmenter.

Two networks ship with Pose2Sim (``v0.3_lower``: 15 markers -> 35, ``v0.3_upper``: 7 -> 8).
Their input per frame is the feature markers minus the mid-hip ``Hip``, divided by the
subject's height, then height and mass, standardized with the shipped mean and std; the
output times height plus ``Hip`` gives the augmented markers. The networks are causal, so
instead of re-running a window every frame the LSTM state is carried from frame to frame
(``stages.lstm_cell``): the same result as Pose2Sim's whole-sequence run at constant cost.

Missing data never enters the recurrent state as NaN. Per source, each network keeps the
last hip-relative position of each of its feature markers. A frame counts as a person for
a network when ``Hip`` and at least half of its feature markers are observed; then the
missing ones are held at their last position (written to the output too, flagged
estimated) and the network steps. A feature marker not seen since the last reset has
nothing to hold yet: it starts from its partner mirrored through the mid-sagittal plane
(``stages.markers.mirror_missing``), flagged estimated. Without a person, or when such a
marker cannot be mirrored either, the network does not step: its outputs
are NaN and its state is kept. After more than ``max_gap_frames`` consecutive frames
without a person its state and held markers are forgotten, so a person who comes back
starts a fresh sequence; a shorter gap continues as if the gap frames were not there.

``markers_64_estimated`` is True for every finite value that is not a direct observation:
markers flagged upstream (``markers_21_estimated``), held feature markers and all
augmented markers.

``markers_64_confidence`` (64,) in [0, 1] (models/confidence.py): the 21 video markers keep
``markers_21_confidence``, a held feature marker gets the probability measured for an
estimated marker, an augmented marker that of the least sure video marker it follows
(``core.marker_sets.AUGMENTED_FROM``); 0 where a marker is missing.
"""

from __future__ import annotations

import copy
import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.marker_sets import (
    AUGMENT_LOWER_INPUTS,
    AUGMENT_LOWER_OUTPUTS,
    AUGMENT_UPPER_INPUTS,
    AUGMENT_UPPER_OUTPUTS,
    AUGMENTED_SOURCES,
    MARKERS_21,
    MARKERS_64,
    indices,
)
from core.packet import Packet
from core.stage import Stage
from models.confidence import MarkerConfidence
from stages.lstm_cell import LstmStack
from stages.markers import mirror_missing

MARKER_SETS = {
    "lower": (AUGMENT_LOWER_INPUTS, AUGMENT_LOWER_OUTPUTS),
    "upper": (AUGMENT_UPPER_INPUTS, AUGMENT_UPPER_OUTPUTS),
}
HIP = MARKERS_21.index("Hip")
MIN_OBSERVED_FRACTION = 0.5  # of a network's feature markers, for a frame to count as a person
# (43, 2) rows of MARKERS_21 each augmented marker follows (one source: repeated)
SOURCE_ROWS = np.array([indices((names[0], names[-1])) for names in AUGMENTED_SOURCES])


AUGMENTER_FILES = ("model.onnx", "mean.npy", "std.npy")  # what a part's folder gives


def augmenter_dir(part: str) -> Path:
    """The folder of augmenter ``part`` ("lower" or "upper") in the installed Pose2Sim."""
    package = importlib.resources.files("Pose2Sim")
    return Path(str(package / f"MarkerAugmenter/LSTM/v0.3_{part}"))


class AugmenterModel:
    """One augmenter network with its own recurrent state, stepped one frame at a time."""

    def __init__(self, part: str, model_dir: Path) -> None:
        self.part = part
        self.inputs, self.outputs = MARKER_SETS[part]
        self.model_dir = model_dir
        onnx, mean, std = (model_dir / name for name in AUGMENTER_FILES)
        self.mean = np.load(mean)
        self.std = np.load(std)
        self._stack = LstmStack.from_onnx(onnx)
        self._state = self._stack.zero_state()

    @classmethod
    def from_package(cls, part: str) -> AugmenterModel:
        """Load ``part`` ("lower" or "upper") from the installed Pose2Sim package."""
        return cls(part, augmenter_dir(part))

    def fresh(self) -> AugmenterModel:
        """Another instance sharing the weights, starting from the zero state."""
        twin = copy.copy(self)  # shares weights, normalization and any onnxruntime session
        twin.reset()
        return twin

    def reset(self) -> None:
        """Start a new sequence."""
        self._state = self._stack.zero_state()

    def features(self, relative: np.ndarray, height: float, mass: float) -> np.ndarray:
        """Network input from feature markers relative to ``Hip`` (..., n_in, 3), metres."""
        relative = np.asarray(relative, dtype=np.float64)
        lead = relative.shape[:-2]
        subject = np.broadcast_to([height, mass], (*lead, 2))
        row = np.concatenate((relative.reshape(*lead, -1) / height, subject), axis=-1)
        return (row - self.mean) / self.std

    def step(self, features: np.ndarray) -> np.ndarray:
        """Advance by one frame; augmented markers relative to ``Hip`` in heights (n_out, 3)."""
        return self._stack.step(features, self._state).reshape(-1, 3)


@dataclass
class _Track:
    """One network's state for one source."""

    model: AugmenterModel
    held: np.ndarray  # (n_in, 3) last observed positions relative to Hip; NaN = never seen
    gap: int = 0  # consecutive frames without a step

    def forget(self) -> None:
        """Back to the state of a source never seen before."""
        self.model.reset()
        self.held[:] = np.nan
        self.gap = 0


@dataclass
class _Part:
    """A loaded network and where its markers sit in MARKERS_21 / MARKERS_64."""

    model: AugmenterModel
    input_rows: np.ndarray = field(init=False)
    output_rows: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.input_rows = np.array(indices(self.model.inputs))
        self.output_rows = np.array(indices(self.model.outputs, MARKERS_64))

    def new_track(self) -> _Track:
        return _Track(self.model.fresh(), np.full((len(self.input_rows), 3), np.nan))


class Augment(Stage):
    """Adds ``markers_64`` and ``markers_64_estimated`` (policy in the module docstring)."""

    name = "augment"

    def __init__(self) -> None:
        self._parts: list[_Part] = []
        self._tracks: dict[str, list[_Track]] = {}

    def setup(self, config: Mapping[str, Any]) -> None:
        self.height = float(config["subject"]["height"])
        self.mass = float(config["subject"]["mass"])
        self.max_gap_frames = int(config["augment"]["max_gap_frames"])
        self._parts = [_Part(AugmenterModel.from_package(part)) for part in MARKER_SETS]
        self.estimated_confidence = MarkerConfidence.load().estimated

    def process(self, packet: Packet) -> Packet:
        markers = packet.data["markers_21"]
        tracks = self._tracks.get(packet.source_id)
        if tracks is None:
            tracks = self._tracks[packet.source_id] = [p.new_track() for p in self._parts]
        out = np.full((len(MARKERS_64), 3), np.nan)
        out[: len(MARKERS_21)] = markers
        estimated = np.zeros(len(MARKERS_64), bool)
        estimated[: len(MARKERS_21)] = packet.data.get("markers_21_estimated", False)
        mirrored = markers.copy()
        missing = ~np.isfinite(markers).all(axis=1)
        if missing.any():  # the usual frame has all 21: nothing to mirror
            mirror_missing(mirrored, missing)
        for part, track in zip(self._parts, tracks, strict=True):
            self._advance(part, track, markers, mirrored, out, estimated)
        present = np.isfinite(out).all(axis=1)
        estimated &= present
        packet.data["markers_64"] = out
        packet.data["markers_64_estimated"] = estimated
        packet.data["markers_64_confidence"] = self._confidence(packet, present)
        return packet

    def _confidence(self, packet: Packet, present: np.ndarray) -> np.ndarray:
        """``markers_64_confidence`` (module docstring)."""
        n = len(MARKERS_21)
        video = np.zeros(n)
        if "markers_21_confidence" in packet.data:
            video[:] = packet.data["markers_21_confidence"]
        held = present[:n] & ~np.isfinite(packet.data["markers_21"]).all(axis=1)
        video[held] = self.estimated_confidence
        confidence = np.concatenate([video, video[SOURCE_ROWS].min(axis=1)])
        confidence[~present] = 0.0
        return confidence

    def reset(self, source_id: str | None = None) -> None:
        if source_id is None:
            self._tracks.clear()
        else:
            self._tracks.pop(source_id, None)

    def _advance(
        self,
        part: _Part,
        track: _Track,
        markers: np.ndarray,
        mirrored: np.ndarray,
        out: np.ndarray,
        estimated: np.ndarray,
    ) -> None:
        """Step one network if the frame allows it, writing its markers into ``out``."""
        hip = markers[HIP]
        inputs = markers[part.input_rows]
        observed = np.isfinite(inputs).all(axis=1)
        share = np.count_nonzero(observed) / len(observed)  # observed.mean(), without its set-up
        if not (np.isfinite(hip).all() and share >= MIN_OBSERVED_FRACTION):
            track.gap += 1
            if track.gap > self.max_gap_frames:
                track.forget()
            return
        track.gap = 0
        track.held[observed] = inputs[observed] - hip
        never_seen = ~np.isfinite(track.held).all(axis=1)
        if never_seen.any():  # (only until every feature marker has been seen once)
            track.held[never_seen] = mirrored[part.input_rows][never_seen] - hip
            if not np.isfinite(track.held).all():
                return  # a feature marker neither seen nor mirrorable: nothing to hold yet
        features = track.model.features(track.held, self.height, self.mass)
        out[part.output_rows] = track.model.step(features) * self.height + hip
        estimated[part.output_rows] = True
        if not observed.all():
            held_rows = part.input_rows[~observed]
            out[held_rows] = track.held[~observed] + hip
            estimated[held_rows] = True
