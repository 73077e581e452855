"""Latency statistics from the firmware's cycle counts, as ``firmware/PROTOCOL.md`` defines them.

The C++ core computes the same figures; both are checked against the ``stats`` rows of
``firmware/components/tinyhil_core/test/vectors.tsv``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    runs: int


def latency_stats(cycles: list[int], cpu_mhz: float) -> LatencyStats:
    """Median, mean, sample std (n - 1), min, max in ms, as PROTOCOL.md defines them."""
    if not cycles or cpu_mhz <= 0:
        raise ValueError("latency needs at least one cycle count and a positive clock")
    per_ms = cpu_mhz * 1000.0
    ms = sorted(c / per_ms for c in cycles)
    n = len(ms)
    mean = sum(ms) / n
    median = ms[n // 2] if n % 2 else (ms[n // 2 - 1] + ms[n // 2]) / 2
    std = math.sqrt(sum((v - mean) ** 2 for v in ms) / (n - 1)) if n > 1 else 0.0
    return LatencyStats(median, mean, std, ms[0], ms[-1], n)
