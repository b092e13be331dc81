"""Latency and rate accounting from the per-packet stage timestamps, in constant memory.

Every stage stamps (enter, leave) on the packet with CLOCK_MONOTONIC, which all processes
of one host share, so capture -> publish latency is a plain subtraction. A live run may
last for days, so latencies are counted in fixed log-spaced bins (``Histogram``) instead
of being kept: percentiles to within half a bin (0.5%) whatever the length of the run.
``pose.status`` (the last second) and ``--stats`` (the whole run) use the same
``Histogram.percentile``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from core.packet import Packet

LOW_MS = 0.01  # values below land in the first bin
HIGH_MS = 100_000.0  # values above land in the last bin
BIN_RATIO = 1.01  # each bin is 1% wider than the one before
N_BINS = math.ceil(math.log(HIGH_MS / LOW_MS) / math.log(BIN_RATIO)) + 1
RECENT = 600  # packets kept for the last-second window (10 s at 60 fps)


class Histogram:
    """Counts of millisecond values in fixed log-spaced bins; exact count, sum and max."""

    def __init__(self, values: Iterable[float] = ()) -> None:
        self.counts = np.zeros(N_BINS, dtype=np.int64)
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        for value in values:
            self.add(value)

    def add(self, ms: float) -> None:
        ratio = max(ms, LOW_MS) / LOW_MS
        self.counts[min(N_BINS - 1, int(math.log(ratio) / math.log(BIN_RATIO)))] += 1
        self.count += 1
        self.total += ms
        self.max = max(self.max, ms)

    def percentile(self, q: float) -> float:
        """The value below which ``q`` percent of the values lie (bin centre); 0 if empty."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(q / 100 * self.count))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        return min(LOW_MS * BIN_RATIO ** (index + 0.5), self.max)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


@dataclass
class LatencyStats:
    """Per-stage and end-to-end milliseconds as histograms; the last packets for rates."""

    stage_ms: dict[str, Histogram] = field(default_factory=dict)
    end_to_end_ms: Histogram = field(default_factory=Histogram)
    frames: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT))  # (leave_ns, e2e_ms)

    def add(self, packet: Packet, published_ns: int) -> None:
        self.frames += 1
        for name, ms in packet.stage_ms().items():
            self.stage_ms.setdefault(name, Histogram()).add(ms)
        e2e = (published_ns - packet.timestamp_ns) / 1e6
        self.end_to_end_ms.add(e2e)
        self.recent.append((published_ns, e2e))

    def window(self, now_ns: int, seconds: float = 1.0) -> tuple[float, Histogram]:
        """(frames per second, latency histogram) over the last ``seconds``."""
        start = now_ns - int(seconds * 1e9)
        latencies = Histogram(ms for t, ms in self.recent if t >= start)
        return latencies.count / seconds, latencies

    def summary(self) -> dict[str, dict[str, float]]:
        """{name: {p50, p95, p99, mean}} in ms for every stage and ``capture->publish``."""
        rows = [*self.stage_ms.items(), ("capture->publish", self.end_to_end_ms)]
        return {
            name: {
                **{f"p{q}": hist.percentile(q) for q in (50, 95, 99)},
                "mean": hist.mean,
            }
            for name, hist in rows
            if hist.count
        }

    def report(self) -> str:
        """Percentile table: one line per stage and one for capture -> publish."""
        lines = [f"{'stage':16s} {'p50':>8s} {'p95':>8s} {'p99':>8s}  (ms, {self.frames} frames)"]
        for name, q in self.summary().items():
            lines.append(f"{name:16s} {q['p50']:8.2f} {q['p95']:8.2f} {q['p99']:8.2f}")
        return "\n".join(lines)
