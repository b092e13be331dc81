"""The engine core: inline execution hands stages read-only arrays, exactly as the socket
codec does; the supervisor checks its config before it creates anything."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from core.packet import Packet
from core.stage import Stage
from stream.config import ConfigError, with_overrides
from stream.pipeline import StageError, run_inline
from stream.supervisor import LiveOptions, Supervisor
from transports.codec import decode, encode


class AddsMarkers(Stage):
    name = "adds"

    def process(self, packet: Packet) -> Packet:
        packet.data["markers"] = np.zeros((3, 3))
        return packet


class WritesItsInput(Stage):
    name = "writes"

    def process(self, packet: Packet) -> Packet:
        packet.data["markers"][0] = 1.0  # a bug: it must copy first
        return packet


class CopiesFirst(Stage):
    name = "copies"

    def process(self, packet: Packet) -> Packet:
        markers = packet.data["markers"].copy()
        markers[0] = 1.0
        packet.data["markers"] = markers
        return packet


class InterruptedInCompiledCode(Stage):
    """What CPython raises when a signal handler raised while a numba function ran: the
    dispatcher returns a result with the handler's exception set (CI saw it in 'fit')."""

    name = "compiled"

    def process(self, packet: Packet) -> Packet:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as stop:
            raise SystemError("CPUDispatcher returned a result with an exception set") from stop


def frame() -> Packet:
    return Packet("cam", 0, 0, 0.0, (4, 4), image=np.zeros((4, 4, 3), np.uint8))


def test_a_stage_that_writes_to_its_input_fails_offline_as_it_would_live() -> None:
    with pytest.raises(StageError, match="stage 'writes' failed on frame 0.*read-only"):
        run_inline([AddsMarkers(), WritesItsInput()], frame())
    live = decode(encode(AddsMarkers()(frame())))  # what the next process would receive
    with pytest.raises(ValueError, match="read-only"):
        WritesItsInput()(live)


def test_a_stage_that_copies_first_works() -> None:
    out = run_inline([AddsMarkers(), CopiesFirst()], frame())
    assert out is not None
    np.testing.assert_array_equal(out.data["markers"][0], 1.0)
    assert not out.image.flags.writeable


def test_a_bad_live_config_fails_before_the_supervisor_creates_anything(
    config, tmp_path, monkeypatch
) -> None:
    """A transport the schema would reject, handed to the supervisor directly."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bad = with_overrides(config, {"live.transport": "udp"})
    with pytest.raises(ConfigError, match="transport"):
        Supervisor(bad, LiveOptions(source="0"))
    assert not list(tmp_path.iterdir()), "no run folder, no socket, nothing"


def test_a_signal_inside_compiled_code_stays_a_signal_not_a_stage_failure() -> None:
    with pytest.raises(KeyboardInterrupt):
        run_inline([AddsMarkers(), InterruptedInCompiledCode()], frame())
