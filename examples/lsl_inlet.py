"""Receive the engine's LSL stream, as LabRecorder or any LSL program would: run it beside
``run_live.py --lsl``.

uv run python -m examples.lsl_inlet [--stream monomocap-angles] [--json]

It finds the stream on the local network (by name, and ``--source-id`` if several engines
run), prints its channel layout, then its samples until Ctrl-C. Timestamps are on this
host's ``pylsl.local_clock()`` (``proc_clocksync``: liblsl measures the offset to the
sending host), i.e. the time each frame was captured, not when it arrived. ``--json``
prints one JSON object per line instead: first ``{"info": ...}``, then ``{"t": .., "x":
[..]}`` per sample.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

import pylsl

POLL_S = 0.2


def channel_layout(info: pylsl.StreamInfo) -> dict[str, list[str]]:
    """The label, type and unit of every channel from the stream's XDF metadata."""
    layout: dict[str, list[str]] = {"labels": [], "types": [], "units": []}
    channel = info.desc().child("channels").child("channel")
    while not channel.empty():
        for key, values in (("label", "labels"), ("type", "types"), ("unit", "units")):
            layout[values].append(channel.child_value(key))
        channel = channel.next_sibling()
    return layout


def describe(info: pylsl.StreamInfo) -> dict[str, Any]:
    return {
        "name": info.name(),
        "type": info.type(),
        "channel_count": info.channel_count(),
        "nominal_srate": info.nominal_srate(),
        "source_id": info.source_id(),
        "hostname": info.hostname(),
        **channel_layout(info),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stream", default="monomocap-markers", help="LSL stream name")
    parser.add_argument("--source-id", help="only the stream with this source_id")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    query = f"name='{args.stream}'" + (
        f" and source_id='{args.source_id}'" if args.source_id else ""
    )
    found: list[pylsl.StreamInfo] = []
    while not found and not stop:
        found = pylsl.resolve_bypred(query, minimum=1, timeout=1.0)
    if stop:
        return
    inlet = pylsl.StreamInlet(found[0], processing_flags=pylsl.proc_clocksync)
    info = describe(inlet.info())
    if args.json:
        print(json.dumps({"info": info}), flush=True)
    else:
        print(
            f"{info['name']} ({info['type']}) from {info['hostname']}: {info['channel_count']}"
            f" channels at {info['nominal_srate']:g} Hz, first {info['labels'][:3]}",
            flush=True,
        )
    shown = -1.0
    while not stop:
        samples, stamps = inlet.pull_chunk(timeout=POLL_S)
        for sample, stamp in zip(samples, stamps, strict=True):
            if args.json:
                print(json.dumps({"t": stamp, "x": sample}), flush=True)
            elif stamp - shown >= 1.0:  # about one line a second
                shown = stamp
                print(f"t={stamp:.3f}  {info['labels'][0]}={sample[0]:.3f}", flush=True)
    inlet.close_stream()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    sys.exit(0)
