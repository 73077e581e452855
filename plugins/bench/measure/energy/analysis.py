"""Figures from a trace: the marker window, the energy integral, the idle baseline.

Energy per inference = (1/N) ∫ V_dut(t) · V_shunt(t) / R_shunt dt over the marker window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyhil.plugins.bench.measure.energy.trace import EnergyError, Trace


@dataclass(frozen=True)
class EnergyResult:
    """Figures of one marker window."""

    energy_mj_gross: float
    energy_mj_net: float
    power_mw_mean: float
    idle_power_mw: float
    window_ms: float
    n_inferences: int


def _window(marker: np.ndarray, rate: float, min_gap_s: float) -> tuple[float, float]:
    """Start and end (seconds) of the timed window, edges interpolated, glitches merged.

    A marker low at both ends of the trace is tinyhil's window (high during it); one high at
    both ends is EEMBC's timestamp pin, whose low pulses mark the window's edges.
    """
    m = np.asarray(marker, dtype=float)
    if m.dtype == bool or set(np.unique(m)) <= {0.0, 1.0}:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = np.percentile(m, 2), np.percentile(m, 98)
        if hi - lo < 0.5 * (m.max() - m.min()):
            # one level holds over 96 % of the samples (short timestamp pulses, a short
            # window in a long capture): the percentiles miss the other level
            lo, hi = m.min(), m.max()
    if hi - lo <= 0:
        raise EnergyError("the marker never changes: check the marker wiring and channel")
    thr = (lo + hi) / 2
    high = m > thr

    def crossing(i: int) -> float:  # between samples i and i+1
        a, b = m[i], m[i + 1]
        frac = 0.5 if a == b else (thr - a) / (b - a)
        return (i + min(max(frac, 0.0), 1.0)) / rate

    if high[0] and high[-1]:
        return _timestamp_window(high, crossing)
    if high[0]:
        raise EnergyError("the marker is already high when the trace starts: increase the pre-roll")
    if high[-1]:
        raise EnergyError("the marker is still high when the trace ends: capture longer")
    edges = np.flatnonzero(np.diff(high.astype(np.int8)))
    rises, falls = edges[::2], edges[1::2]
    if len(rises) == 0:
        raise EnergyError("no marker window in the trace: is the marker GPIO wired to the marker channel?")
    # merge windows separated by glitches shorter than min_gap_s (marker jitter, bounce)
    segments = [[rises[0], falls[0]]]
    for r, f in zip(rises[1:], falls[1:], strict=True):
        if (r - segments[-1][1]) / rate < min_gap_s:
            segments[-1][1] = f
        else:
            segments.append([r, f])
    r, f = max(segments, key=lambda s: s[1] - s[0])
    return crossing(r), crossing(f)


def _timestamp_window(high: np.ndarray, crossing) -> tuple[float, float]:
    """The window between EEMBC timestamp pulses: from the end of the first to the start of the last.

    The firmware pulses just before the first timed inference and just after the last, so
    this span holds the inferences alone (EEMBC's monitor, which times falling edges,
    counts the first pulse in).
    """
    edges = np.flatnonzero(np.diff(high.astype(np.int8)))
    falls, rises = edges[::2], edges[1::2]  # the marker starts high: falls come first
    if len(falls) < 2:
        raise EnergyError(
            f"the marker is high at both ends of the trace with {len(falls)} low pulse(s): with EEMBC's "
            "timestamp pin the trace needs the pulses at both edges of the window (capture longer); with "
            "tinyhil's window marker the window covers the whole trace (increase the pre-roll, capture longer)"
        )
    return crossing(rises[0]), crossing(falls[-1])


def _integral(p: np.ndarray, rate: float, t0: float, t1: float) -> float:
    """∫ p dt over [t0, t1] of the piecewise-linear signal through the samples."""
    t = np.arange(len(p)) / rate
    inner = (t > t0) & (t < t1)
    ts = np.concatenate([[t0], t[inner], [t1]])
    ps = np.concatenate([[np.interp(t0, t, p)], p[inner], [np.interp(t1, t, p)]])
    return float(np.sum((ps[1:] + ps[:-1]) * np.diff(ts)) / 2)


def analyse(
    trace: Trace,
    n_inferences: int,
    shunt_ohms: float,
    idle_power_w: float | None = None,
    min_gap_s: float = 50e-6,
    guard_s: float = 1e-3,
) -> EnergyResult:
    """Energy per inference from one trace.

    Args:
        trace: The capture.
        n_inferences: N, the inferences inside the marker window.
        shunt_ohms: The shunt resistance.
        idle_power_w: The idle baseline; when None, the mean power of the marker-low
            samples (outside a guard band around the window) is used.
        min_gap_s: Marker drops shorter than this inside the window are glitches.
        guard_s: Samples this close to the window are not used for the baseline.

    Raises:
        EnergyError: when the trace has no complete marker window.
    """
    rate = trace.sample_rate_hz
    p = np.asarray(trace.v_dut, float) * np.asarray(trace.v_shunt, float) / shunt_ohms
    t0, t1 = _window(trace.marker, rate, min_gap_s)
    energy = _integral(p, rate, t0, t1)
    duration = t1 - t0
    if idle_power_w is None:
        t = np.arange(len(p)) / rate
        outside = (t < t0 - guard_s) | (t > t1 + guard_s)
        if not outside.any():
            raise EnergyError("no idle samples around the marker window: increase the pre-roll")
        idle_power_w = float(p[outside].mean())
    return EnergyResult(
        energy_mj_gross=energy / n_inferences * 1e3,
        energy_mj_net=(energy - idle_power_w * duration) / n_inferences * 1e3,
        power_mw_mean=energy / duration * 1e3,
        idle_power_mw=idle_power_w * 1e3,
        window_ms=duration * 1e3,
        n_inferences=n_inferences,
    )


def idle_power(trace: Trace, shunt_ohms: float) -> float:
    """Mean power (W) of a trace captured while the device idles."""
    return float(np.mean(np.asarray(trace.v_dut, float) * np.asarray(trace.v_shunt, float)) / shunt_ohms)


def check_window(window_ms: float, latencies_ms: list[float], tolerance: float) -> str:
    """Compares the marker window with the firmware's cycle-count latency of the same runs."""
    expected = float(sum(latencies_ms))
    if expected <= 0:
        return "no latency to compare"
    diff = (window_ms - expected) / expected
    verdict = "ok" if abs(diff) <= tolerance else f"mismatch beyond {tolerance:.0%}"
    return f"{verdict}: window {window_ms:.3f} ms vs cycle counts {expected:.3f} ms ({diff:+.1%})"
