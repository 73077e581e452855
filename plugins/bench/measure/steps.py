"""The measurement steps of a bench case, once the model is loaded on the board.

On-device accuracy and agreement with host TFLM over test windows, latency from the
firmware's cycle counts, and energy from a meter around the marker window. Each step
returns CSV figures; the source of each (``measured`` or ``simulated``) is named in them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyhil.models.host_eval import evaluate_isolated
from tinyhil.models.tflm import QuantParams, quantize
from tinyhil.plugins.bench.link.device import DeviceClient, InferResult
from tinyhil.plugins.bench.link.protocol import MAX_TIMED_RUNS
from tinyhil.plugins.bench.measure.energy.analysis import analyse, check_window, idle_power
from tinyhil.plugins.bench.measure.energy.kinds import MLPERF_MIN_WINDOW_S, MLPERF_REPEATS
from tinyhil.plugins.bench.measure.energy.meter import Meter
from tinyhil.plugins.bench.measure.energy.settings import MeterSettings
from tinyhil.plugins.bench.measure.latency import LatencyStats, latency_stats


@dataclass(frozen=True)
class HilSettings:
    """Bench settings (the ``tinyhil bench`` options).

    Attributes:
        device_windows: Test windows sent for on-device accuracy and agreement (0: the whole test split).
        inferences: N timed inferences for latency.
        warmup: W warm-up inferences before the timed ones.
        retries: Extra attempts after a reboot, serial drop or time-out.
        timeout_s: Time allowed for one line from the device.
        seed: Seeds the choice of windows.
        min_agreement: Least share of windows whose class matches host TFLM's for ``ok``;
            below it the case is ``wrong_output``.
        model_ids: Network -> the EEMBC model id the board reports for it (``kws01``), so
            MLPerf Tiny's runner takes a case for one of its benchmarks.
    """

    device_windows: int = 0
    inferences: int = 10
    warmup: int = 1
    retries: int = 1
    timeout_s: float = 10.0
    seed: int = 0
    min_agreement: float = 0.95
    model_ids: dict[str, str] = field(default_factory=dict)


def window_subset(n_test: int, count: int, seed: int) -> np.ndarray:
    """A seeded, sorted choice of ``count`` test windows; all of them for 0 (or more than there are)."""
    if count <= 0 or count >= n_test:
        return np.arange(n_test)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_test, size=min(count, n_test), replace=False))


def accuracy_figures(
    client: DeviceClient,
    model: bytes,
    x: np.ndarray,
    y: np.ndarray,
    qin: QuantParams,
    source: str,
) -> dict:
    """Runs each window on the board; accuracy, and agreement with host TFLM on the same windows.

    The windows travel in the model's input type, streamed with ``classify%`` (no round trip
    per window), as many ahead as the board's receive buffer (``m-info-rx-buffer-bytes``) holds."""
    host = evaluate_isolated(model, x)  # a model that crashes TFLM must not take the run down
    t0 = time.monotonic()
    rx_buffer = int(client.info.get("rx-buffer-bytes", "0") or 0)
    device_classes = np.array(client.classify([quantize(w[None], qin).tobytes() for w in x], rx_buffer))
    seconds = time.monotonic() - t0
    return {
        "bench_windows_s": round(seconds, 3),
        "acc_device": float(np.mean(device_classes == y)),
        "acc_device_source": source,
        "device_windows": len(x),
        "device_agreement": (
            float(np.mean(device_classes == np.argmax(host.tflm_scores, axis=1)))
            if host.tflm_scores is not None
            else None  # host TFLM could not run it: nothing to agree with
        ),
    }


def latency_figures(
    client: DeviceClient, window: np.ndarray, qin: QuantParams, settings: HilSettings, source: str
) -> tuple[LatencyStats, InferResult, dict]:
    """N timed inferences after W warm-up runs, from the firmware's cycle counts."""
    client.send_data("input", quantize(window, qin).tobytes())
    t_limit = max(settings.timeout_s, 5.0 * (settings.inferences + settings.warmup))
    t0 = time.monotonic()
    timed = client.infer(settings.inferences, settings.warmup, timeout=t_limit)
    seconds = time.monotonic() - t0
    stats = latency_stats(timed.cycles, timed.cpu_mhz)
    figures = {
        "latency_ms_median": stats.median_ms,
        "latency_ms_mean": stats.mean_ms,
        "latency_ms_std": stats.std_ms,
        "latency_ms_min": stats.min_ms,
        "latency_ms_max": stats.max_ms,
        "latency_runs": stats.runs,
        "latency_source": source,
        "bench_infer_s": round(seconds, 3),
    }
    return stats, timed, figures


class EnergyMeasurement:
    """Idle baseline, then the marker window(s) around N inferences, per the timing rule.

    Args:
        client: Device client of the board.
        meter: The meter that captures each trace.
        settings: Shunt, timing rule, tolerance, idle capture.
        hil: Bench settings (N, time-outs).
        trace_dir: Where raw traces are saved (``--save-traces``), or None.
    """

    def __init__(
        self, client: DeviceClient, meter: Meter, settings: MeterSettings, hil: HilSettings, trace_dir: Path | None
    ):
        self.client, self.meter, self.settings, self.hil, self.trace_dir = client, meter, settings, hil, trace_dir

    def figures(self, latency_ms: float, label: str) -> dict:
        """Energy figures of the case; a capture the device fails in the middle of is dropped
        (the meter's tasks released) before the error goes on to become the case's verdict."""
        try:
            return self._figures(latency_ms, label)
        except BaseException:
            self.meter.abort()
            raise

    def _figures(self, latency_ms: float, label: str) -> dict:
        t0 = time.monotonic()
        client, meter, ms = self.client, self.meter, self.settings
        idle_w = None
        if ms.idle_ms > 0:
            meter.start(ms.idle_ms / 1000, f"{label}-idle")
            client.command("idle", ms.idle_ms, timeout=self.hil.timeout_s + ms.idle_ms / 1000)
            idle_trace = meter.finish(0.0)
            self._save(idle_trace, f"{label}-idle")
            idle_w = idle_power(idle_trace, ms.shunt_ohms)
        if ms.timing_rule == "mlperf":
            n = max(self.hil.inferences, int(np.ceil(MLPERF_MIN_WINDOW_S * 1000 / max(latency_ms, 1e-6))))
            repeats = MLPERF_REPEATS
        else:
            n, repeats = self.hil.inferences, 1
        runs = []
        for k in range(repeats):
            run_label = label if repeats == 1 else f"{label}-{k}"
            meter.start(n * latency_ms / 1000, run_label)
            timeout = max(self.hil.timeout_s, 3 * n * latency_ms / 1000 + 5)
            if n <= MAX_TIMED_RUNS:
                result = client.infer(n, 0, timeout=timeout)
                laps_ms = [c / (result.cpu_mhz * 1000) for c in result.cycles]
            else:
                # more runs than the firmware keeps laps for (MLPerf's >= 10 s on a fast model):
                # EEMBC's form, timed by its two timestamps; each run counts as the mean
                window_ms = client.infer_window(n, timeout=timeout)
                laps_ms = [window_ms / n] * n
            trace = meter.finish(sum(laps_ms) / 1000)
            saved = self._save(trace, run_label)
            runs.append((analyse(trace, n, ms.shunt_ohms, idle_w), laps_ms, saved))
        runs.sort(key=lambda r: r[0].energy_mj_net)
        e, laps_ms, saved = runs[len(runs) // 2]  # the median run
        source = (
            meter.source if meter.source != "replayed" else f"replayed-{trace.meta.get('original_source', 'unknown')}"
        )
        return {
            "energy_mj_gross": e.energy_mj_gross,
            "energy_mj_net": e.energy_mj_net,
            "power_mw_mean": e.power_mw_mean,
            "idle_power_mw": e.idle_power_mw,
            "energy_window_ms": e.window_ms,
            "energy_window_check": check_window(e.window_ms, laps_ms, ms.tolerance),
            "energy_source": source,
            "energy_trace": str(saved) if saved else None,
            "timing_rule": ms.timing_rule,
            "bench_energy_s": round(time.monotonic() - t0, 3),
        }

    def _save(self, trace, label: str) -> Path | None:
        if self.trace_dir is None:
            return None
        return trace.save(self.trace_dir / f"{label}.npz")
