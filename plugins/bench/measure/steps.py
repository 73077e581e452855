"""The measurement steps of a bench case, once the model is loaded on the board.

Agreement with host TFLM and on-device accuracy over test windows (with ``auto``, until the
agreement test decides), latency from the firmware's cycle counts, and energy from a meter
around the marker window. Each step returns CSV figures; the source of each (``measured`` or ``simulated``) is named in them.
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
from tinyhil.plugins.bench.measure.agreement import (
    AUTO,
    DISAGREES,
    UNDECIDED,
    AgreementTest,
    lower_bound,
    run_sequential,
    upper_bound,
)
from tinyhil.plugins.bench.measure.energy.analysis import analyse, check_window, idle_power
from tinyhil.plugins.bench.measure.energy.kinds import MLPERF_MIN_WINDOW_S, MLPERF_REPEATS
from tinyhil.plugins.bench.measure.energy.meter import Meter
from tinyhil.plugins.bench.measure.energy.settings import MeterSettings
from tinyhil.plugins.bench.measure.latency import LatencyStats, latency_stats


@dataclass(frozen=True)
class HilSettings:
    """Bench settings (the ``tinyhil bench`` options).

    Attributes:
        device_windows: Test windows sent for agreement and on-device accuracy: ``"auto"`` (the
            sequential agreement test), 0 (the whole test split) or a count (a seeded sample).
        inferences: N timed inferences for latency.
        warmup: W warm-up inferences before the timed ones.
        retries: Extra attempts after a reboot, serial drop or time-out.
        timeout_s: Time allowed for one line from the device.
        seed: Seeds the choice and the order of windows.
        min_agreement: With ``all`` or a count: least share of windows whose class matches host
            TFLM's for ``ok``; below it the case is ``wrong_output``.
        agreement: With ``auto``: the stopping rule (``--max-disagreement``, ``--agreement-confidence``).
        model_ids: Network -> the EEMBC model id the board reports for it (``kws01``), so
            MLPerf Tiny's runner takes a case for one of its benchmarks.
    """

    device_windows: int | str = AUTO
    inferences: int = 10
    warmup: int = 1
    retries: int = 1
    timeout_s: float = 10.0
    seed: int = 0
    min_agreement: float = 0.95
    agreement: AgreementTest = field(default_factory=AgreementTest)
    model_ids: dict[str, str] = field(default_factory=dict)


def window_subset(n_test: int, count: int, seed: int) -> np.ndarray:
    """A seeded, sorted choice of ``count`` test windows; all of them for 0 (or more than there are)."""
    if count <= 0 or count >= n_test:
        return np.arange(n_test)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_test, size=min(count, n_test), replace=False))


def window_order(n_test: int, seed: int) -> np.ndarray:
    """Every test window in a seeded random order: ``auto`` stops part way, on a sample of the whole split."""
    return np.random.default_rng(seed).permutation(n_test)


def classify_in_order(
    client: DeviceClient, windows: list[bytes], first: int, stored: int, rx_buffer: int
) -> tuple[list[int], int]:
    """The board's classes of consecutive windows of the sending order, from position ``first``:
    those its windows partition holds (positions below ``stored``) by index, the rest streamed.
    Returns the classes and how many came from the partition.

    Args:
        client: Device client of the board, the model loaded.
        windows: The windows' bytes in the model's input type (what the board must classify).
        first: Position of the first in the order the windows partition holds.
        stored: How many windows of that order the partition holds.
        rx_buffer: The board's receive buffer, for streaming.
    """
    here = max(0, min(len(windows), stored - first))
    classes = client.classify_stored(first, windows[:here]) if here else []
    if here < len(windows):
        classes = classes + client.classify(windows[here:], rx_buffer)
    return classes, here


def accuracy_figures(
    client: DeviceClient,
    model: bytes,
    x: np.ndarray,
    y: np.ndarray,
    qin: QuantParams,
    source: str,
    settings: HilSettings,
    stored: int = 0,
) -> dict:
    """Runs test windows on the board; accuracy, and agreement with host TFLM on the same windows.

    The windows travel in the model's input type, streamed with ``classify%`` (no round trip
    per window), as many ahead as the board's receive buffer (``m-info-rx-buffer-bytes``) holds.
    With ``auto`` they go in batches, one ``classify%`` each, until the agreement test decides
    (:mod:`tinyhil.plugins.bench.measure.agreement`); the first ``stored`` windows of its order
    are on the board already (its windows partition): those are classified by index
    (``classify windows``), and the board converts them itself.

    Args:
        client: Device client of the board, the model loaded.
        model: The model, for host TFLM.
        x: The whole test split.
        y: Its labels.
        qin: The model's input quantization.
        source: ``measured`` or ``simulated``.
        settings: Which windows (``device_windows``, ``seed``) and the agreement test.
        stored: How many windows of ``auto``'s order the board's windows partition holds.
    """
    auto = settings.device_windows == AUTO
    idx = window_order(len(x), settings.seed) if auto else window_subset(len(x), settings.device_windows, settings.seed)
    host = evaluate_isolated(model, x[idx])  # a model that crashes TFLM must not take the run down
    host_classes = None if host.tflm_scores is None else np.empty(len(x), np.int64)
    if host_classes is not None:  # host TFLM could run it: something to agree with
        host_classes[idx] = np.argmax(host.tflm_scores, axis=1)
    rx_buffer = int(client.info.get("rx-buffer-bytes", "0") or 0)

    position = np.empty(len(x), np.int64)  # where each window is in the order sent (auto's is the stored one)
    position[idx] = np.arange(len(idx))
    from_flash = [0]

    def classify(batch: np.ndarray) -> list[int]:
        windows = [quantize(x[i][None], qin).tobytes() for i in batch]
        first = int(position[batch[0]]) if auto and len(batch) else stored
        classes, here = classify_in_order(client, windows, first, stored, rx_buffer)
        from_flash[0] += here
        return classes

    test = settings.agreement
    t0 = time.monotonic()
    if auto and host_classes is not None:
        result = run_sequential(classify, host_classes, idx, test)
        sent, device_classes = result.order, result.device_classes
        rule = f"{result.outcome}: {test.rule()}"
    else:
        sent = idx if not auto else idx[: test.windows_to_prove(0)]  # auto without host TFLM: one proof's worth
        device_classes = np.asarray(classify(sent), dtype=np.int64)
        rule = f"none (--device-windows {settings.device_windows or 'all'})"
    seconds = time.monotonic() - t0
    figures = {
        "bench_windows_s": round(seconds, 3),
        "acc_device": float(np.mean(device_classes == y[sent])),
        "acc_device_source": source,
        "device_windows": len(sent),
        "device_windows_stored": from_flash[0],
        "device_agreement": None,  # host TFLM could not run it: nothing to agree with
    }
    if host_classes is not None:
        disagreements = int(np.count_nonzero(device_classes != host_classes[sent]))
        figures.update(
            {
                "device_agreement": 1.0 - disagreements / len(sent),
                "device_disagreements": disagreements,
                "disagreement_upper_bound": round(upper_bound(disagreements, len(sent), test.confidence), 6),
                "agreement_test": rule,
            }
        )
        if len(idx) == len(x):  # host TFLM saw the whole split: its accuracy is exact, the device's a sample
            figures["acc_tflm"] = float(np.mean(host_classes == y))
    return figures


def disagreement_reason(figures: dict, settings: HilSettings, n_test: int) -> str | None:
    """Why the case is ``wrong_output``, or None when the board agrees with host TFLM (or there is nothing to agree with).

    With ``auto``: the test proved the disagreement above ``--max-disagreement``, or the split
    ran out undecided and the split's own disagreement is above it. With ``all`` or a count:
    the agreement is below ``--min-agreement``.
    """
    agreement = figures.get("device_agreement")
    if agreement is None:
        return None
    n, test = figures["device_windows"], settings.agreement
    if settings.device_windows != AUTO:
        if agreement >= settings.min_agreement:
            return None
        return (
            f"outputs disagree with host TFLM: the class matches in {agreement:.0%} of "
            f"{n} windows (--min-agreement {settings.min_agreement:g})"
        )
    k = figures["device_disagreements"]
    outcome = test.decide(k, n)
    if outcome == DISAGREES:
        return (
            f"outputs disagree with host TFLM: the class differs in {k} of {n} windows, more than "
            f"{test.max_disagreement:g} of them at confidence {test.confidence:g} (lower bound "
            f"{lower_bound(k, n, test.confidence):.4f}; --max-disagreement {test.max_disagreement:g})"
        )
    if outcome == UNDECIDED and n >= n_test and k / n > test.max_disagreement:
        return (
            f"outputs disagree with host TFLM: the class differs in {k} of the split's {n} windows "
            f"({k / n:.1%}; --max-disagreement {test.max_disagreement:g})"
        )
    return None


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
