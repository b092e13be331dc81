"""Lab Streaming Layer outlets fed from the public stream (``run_live.py --lsl``).

LabRecorder and every other LSL program see the engine as one more device beside EEG, EMG
and force plates. Each entry of ``OUTLETS`` turns one array field of one public topic into
one LSL stream; another outlet (e.g. ``monomocap-ik`` once a ``pose.ik`` topic exists) is
one more entry. An outlet is created with the first payload that carries its field, so an
optional field (``confidence``) gets its outlet exactly when the pipeline produces it, and
the nominal rate is the source's (``pose.markers`` ``fps``).

Each sample is stamped with the frame's *capture* time on LSL's clock, not the time it is
pushed, so LabRecorder aligns the body with the other devices despite the pipeline's
latency. The payload's ``timestamp_ns`` is ``CLOCK_MONOTONIC`` of the capturing host, the
host this process runs on; ``pylsl.local_clock()`` is ``std::chrono::steady_clock``, on
Linux the same ``CLOCK_MONOTONIC``: the offset between the two is measured once at start
(``ClockMap``) rather than assumed, so a platform whose clocks differ by a constant is
mapped right too.

Channel metadata follows the XDF meta-data conventions (``<desc><channels><channel>`` with
``label``, ``marker``, ``type``, ``unit``; MoCap positions ``PositionX/Y/Z`` in meters,
``Confidence`` normalized).
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pylsl

from core.provenance import SOFTWARE, software_version
from transports.schema import ANGLES, COORDINATES, MARKERS

LINGER_S = 0.2  # outlets stay up this long after the last sample, so inlets receive it
Channel = dict[str, str]  # XDF channel metadata: label, type, unit, ...


def _positions(marker: str) -> list[Channel]:
    return [
        {"label": f"{marker}_{axis}", "marker": marker, "type": f"Position{axis}", "unit": "meters"}
        for axis in "XYZ"
    ]


def _marker_confidence(marker: str) -> list[Channel]:
    label = f"{marker}_confidence"
    return [{"label": label, "marker": marker, "type": "Confidence", "unit": "normalized"}]


ANGLE_KINDS = {"flex": "Flexion", "abd": "Abduction", "rot": "Rotation"}


def _angle(name: str) -> list[Channel]:
    """``hip_r_flex_deg`` -> joint ``hip_r``, type ``Flexion``, unit degrees."""
    joint, _, rest = name.rpartition("_deg")[0].rpartition("_")
    kind = ANGLE_KINDS.get(rest, "Angle")
    return [{"label": name, "joint": joint, "type": kind, "unit": "degrees"}]


def _angle_confidence(name: str) -> list[Channel]:
    joint = name.removesuffix("_deg").rpartition("_")[0]
    label = f"{name}_confidence"
    return [{"label": label, "joint": joint, "type": "Confidence", "unit": "normalized"}]


@dataclass(frozen=True)
class OutletSpec:
    """One LSL stream: which payload field it carries and how its channels are described."""

    name: str  # the LSL stream name
    type: str  # the LSL content type (XDF: "MoCap" for marker positions)
    topic: str  # the public-stream topic it follows
    field: str  # the array in that topic's payload
    names: str  # the control socket's schema list that names the array's rows
    channels: Callable[[str], list[Channel]]  # one row name -> its channels


OUTLETS = (
    OutletSpec("monomocap-markers", "MoCap", MARKERS, "markers", "markers", _positions),
    OutletSpec(
        "monomocap-markers-confidence",
        "MoCap",
        MARKERS,
        "confidence",
        "markers",
        _marker_confidence,
    ),
    OutletSpec("monomocap-angles", "Angles", ANGLES, "angles", "angles", _angle),
    OutletSpec(
        "monomocap-angles-confidence", "Angles", ANGLES, "confidence", "angles", _angle_confidence
    ),
)


class ClockMap:
    """Maps ``CLOCK_MONOTONIC`` nanoseconds of this host onto ``pylsl.local_clock()``."""

    READS = 21

    def __init__(self) -> None:
        offsets = []
        for _ in range(self.READS):
            before = time.monotonic_ns()
            lsl = pylsl.local_clock()
            after = time.monotonic_ns()
            offsets.append(lsl - (before + after) / 2e9)
        self.offset_s = statistics.median(offsets)  # ~1e-8 s on Linux: the same clock

    def __call__(self, monotonic_ns: int) -> float:
        return monotonic_ns / 1e9 + self.offset_s


def source_id(source: str) -> str:
    """Stable per camera and host, so LabRecorder reconnects a restarted pipeline to the
    same recording: ``monomocap@<host>:<source>`` (the payloads' ``source_id``)."""
    return f"{SOFTWARE}@{socket.gethostname()}:{source}"


def stream_info(
    spec: OutletSpec, names: Sequence[str], rate: float, source: str
) -> pylsl.StreamInfo:
    """The stream's header with XDF channel metadata, acquisition and coordinates."""
    channels = [channel for name in names for channel in spec.channels(name)]
    info = pylsl.StreamInfo(
        spec.name, spec.type, len(channels), rate, pylsl.cf_float32, source_id(source)
    )
    desc = info.desc()
    described = desc.append_child("channels")
    for channel in channels:
        element = described.append_child("channel")
        for key, value in channel.items():
            element.append_child_value(key, value)
    acquisition = desc.append_child("acquisition")
    acquisition.append_child_value("manufacturer", SOFTWARE)
    acquisition.append_child_value("model", "markerless, one camera")
    acquisition.append_child_value("version", software_version())
    acquisition.append_child_value("source", source)
    desc.append_child_value("coordinates", COORDINATES)
    return info


class LslOutlets:
    """The ``OUTLETS`` of one run: push each public-stream payload to its streams."""

    def __init__(self, names: Mapping[str, Sequence[str]], specs: Sequence[OutletSpec] = OUTLETS):
        """``names``: the control socket's schema (``markers``, ``angles`` lists); an outlet
        whose list is empty (e.g. no angle stage) is never created."""
        self.clock = ClockMap()
        self._names = names
        self._specs = [spec for spec in specs if names.get(spec.names)]
        self.topics = frozenset(spec.topic for spec in self._specs)
        self._outlets: dict[str, pylsl.StreamOutlet] = {}
        self._rate = pylsl.IRREGULAR_RATE  # until a payload names the source's

    def push(self, topic: str, payload: Mapping[str, Any]) -> None:
        """Send the payload's fields to their outlets, stamped with its capture time."""
        self._rate = float(payload.get("fps", self._rate))
        stamp = self.clock(int(payload["timestamp_ns"]))
        for spec in self._specs:
            if spec.topic != topic or spec.field not in payload:
                continue
            outlet = self._outlets.get(spec.name)
            if outlet is None:
                outlet = self._open(spec, str(payload["source_id"]))
            values = np.asarray(payload[spec.field], dtype=np.float32).ravel()
            outlet.push_sample(values, stamp)

    def _open(self, spec: OutletSpec, source: str) -> pylsl.StreamOutlet:
        info = stream_info(spec, self._names[spec.names], self._rate, source)
        self._outlets[spec.name] = outlet = pylsl.StreamOutlet(info)
        return outlet

    @property
    def streams(self) -> list[str]:
        """The names of the outlets open so far."""
        return list(self._outlets)

    def close(self) -> None:
        if self._outlets:
            time.sleep(LINGER_S)
        self._outlets.clear()  # an outlet is withdrawn from the network when destroyed
