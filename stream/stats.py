"""Latency and rate accounting from the per-packet stage timestamps.

Every stage stamps (enter, leave) on the packet with CLOCK_MONOTONIC, which all processes
of one host share, so capture -> publish latency is a plain subtraction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from core.packet import Packet


@dataclass
class LatencyStats:
    """Collects per-stage and end-to-end milliseconds; summarizes them as percentiles."""

    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    end_to_end_ms: list[float] = field(default_factory=list)
    frames: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=600))  # (leave_ns, e2e_ms)

    def add(self, packet: Packet, published_ns: int) -> None:
        self.frames += 1
        for name, ms in packet.stage_ms().items():
            self.stage_ms.setdefault(name, []).append(ms)
        e2e = (published_ns - packet.timestamp_ns) / 1e6
        self.end_to_end_ms.append(e2e)
        self.recent.append((published_ns, e2e))

    def window(self, now_ns: int, seconds: float = 1.0) -> tuple[float, list[float]]:
        """(frames per second, latencies) over the last ``seconds``."""
        start = now_ns - int(seconds * 1e9)
        latencies = [ms for t, ms in self.recent if t >= start]
        return len(latencies) / seconds, latencies

    def summary(self) -> dict[str, dict[str, float]]:
        """{name: {p50, p95, p99, mean}} in ms for every stage and ``capture->publish``."""
        rows = [*self.stage_ms.items(), ("capture->publish", self.end_to_end_ms)]
        out = {}
        for name, values in rows:
            if values:
                p50, p95, p99 = np.percentile(values, [50, 95, 99])
                out[name] = {"p50": p50, "p95": p95, "p99": p99, "mean": float(np.mean(values))}
        return out

    def report(self) -> str:
        """Percentile table: one line per stage and one for capture -> publish."""
        lines = [f"{'stage':16s} {'p50':>8s} {'p95':>8s} {'p99':>8s}  (ms, {self.frames} frames)"]
        for name, q in self.summary().items():
            lines.append(f"{name:16s} {q['p50']:8.2f} {q['p95']:8.2f} {q['p99']:8.2f}")
        return "\n".join(lines)
