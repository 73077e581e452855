"""The ESP32 target: the tinyhil firmware on a board (or the virtual board), driven over serial.

Per case: write the model into the ``model`` partition (esptool through pytest-embedded's
serial on the bench; the flash file of the virtual board), load it with ``model%``, send
a subset of the test windows for on-device accuracy and agreement with host TFLM, then
time N inferences. Device failures map to verdicts; reboots, serial drops and time-outs
are retried once (each attempt starts from a fresh model load, so a retry is safe).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.boards import Board
from models.compression import summarize_error
from models.host_eval import evaluate_isolated
from models.pipeline import CaseArtifacts, Study
from models.tflm import QuantParams, classify_failure, dequantize, quantize
from models.verdict import MEMORY_STATUSES, Verdict
from plugins.device import (
    DeviceClient,
    DeviceError,
    DeviceErrorResponse,
    DeviceGarbage,
    DeviceRebooted,
    DeviceTimeout,
)
from plugins.energy import MLPERF_MIN_WINDOW_S, MLPERF_REPEATS, Meter, MeterSettings, analyse, check_window, idle_power
from plugins.protocol import latency_stats
from plugins.targets import Outcome

PARTITIONS_CSV = Path(__file__).resolve().parents[2] / "firmware" / "partitions.csv"


@dataclass(frozen=True)
class HilSettings:
    """Bench settings (options of :mod:`plugins.hil`).

    Attributes:
        device_windows: Test windows sent for on-device accuracy and agreement.
        inferences: N timed inferences for latency.
        warmup: W warm-up inferences before the timed ones.
        retries: Extra attempts after a reboot, serial drop or time-out.
        timeout_s: Time allowed for one line from the device.
        seed: Seeds the choice of windows.
    """

    device_windows: int = 50
    inferences: int = 10
    warmup: int = 1
    retries: int = 1
    timeout_s: float = 10.0
    seed: int = 0


def model_partition(csv_path: Path = PARTITIONS_CSV) -> tuple[int, int]:
    """``(offset, size)`` of the ``model`` partition in the firmware's partition table."""
    with open(csv_path) as f:
        rows = [r for r in csv.reader(line for line in f if line.strip() and not line.lstrip().startswith("#"))]
    for row in rows:
        cells = [c.strip() for c in row]
        if cells and cells[0] == "model":
            if not cells[3]:
                raise ValueError(f"{csv_path}: give the model partition an explicit offset so esptool can write it")
            return int(cells[3], 0), int(cells[4], 0)
    raise ValueError(f"{csv_path} has no partition named 'model'")


class FlashFileDelivery:
    """The virtual board's model partition is a file; writing it stands for esptool."""

    def __init__(self, flash_file: Path):
        self.flash_file = Path(flash_file)

    def write(self, model: bytes, client: DeviceClient) -> None:
        self.flash_file.write_bytes(model)


class EsptoolDelivery:
    """Writes the model into the ``model`` partition with esptool, through pytest-embedded's serial.

    esptool resets the board into the bootloader and back; the firmware's boot banner
    is read afterwards, so each case starts on a freshly booted board.
    """

    def __init__(self, serial, offset: int, size: int, boot_timeout_s: float = 15.0):
        self.serial, self.offset, self.size, self.boot_timeout_s = serial, offset, size, boot_timeout_s

    def write(self, model: bytes, client: DeviceClient) -> None:
        import tempfile

        import esptool
        from pytest_embedded_serial_esp.serial import EspSerial

        if len(model) > self.size:
            raise ValueError(f"model {len(model)} B > model partition {self.size} B")
        with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
            f.write(model)
            f.flush()

            @EspSerial.use_esptool()
            def _write(serial):
                esptool.main(["write-flash", hex(self.offset), f.name], esp=serial.esp)
                serial.esp.hard_reset()

            _write(self.serial)
        client.wait_boot(self.boot_timeout_s)


def _error_status(error: str, log: list[str]) -> str:
    """Maps an ``e-[…]`` answer of ``model%`` to a verdict status."""
    if error.startswith("arena:"):
        return "arena_overflow"
    if error.startswith("ram:"):
        return "ram_overflow"
    if re.match(r"model: \d+ bytes > partition", error):
        return "flash_overflow"
    if error.startswith("tflm:"):
        return classify_failure("\n".join(log) or error)
    return "device_error"


def _reason(prefix: str, error: str, log: list[str]) -> str:
    tail = " | ".join(log[-4:])
    return f"{prefix}: {error}" + (f" | {tail}" if tail else "")


def window_subset(n_test: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_test, size=min(count, n_test), replace=False))


class Esp32Target:
    """A board speaking protocol v1.

    Args:
        client: Device client on the board's serial link.
        delivery: How the model reaches the model partition.
        settings: Bench settings.
        simulated: True for the virtual board (figures are labelled simulated).
        boot_timeout_s: When > 0 the DUT was just reset: read its boot banner first.
        meter: Energy meter, or None for no energy figures.
        meter_settings: Shunt, timing rule, tolerance, idle capture.
        trace_dir: Where raw traces are saved (``--save-traces``), or None.
    """

    marker = "hil"

    def __init__(
        self,
        client: DeviceClient,
        delivery,
        settings: HilSettings,
        simulated: bool,
        boot_timeout_s: float = 0,
        meter: Meter | None = None,
        meter_settings: MeterSettings | None = None,
        trace_dir: Path | None = None,
    ):
        self.client, self.delivery, self.settings, self.simulated = client, delivery, settings, simulated
        self.boot_timeout_s = boot_timeout_s
        self.meter, self.meter_settings, self.trace_dir = meter, meter_settings or MeterSettings(), trace_dir
        self.label = "case"
        self.name = "virtual-esp32" if simulated else "esp32"
        self.device_env: dict[str, str] = {}

    @property
    def source(self) -> str:
        return "simulated" if self.simulated else "measured"

    def run(self, art: CaseArtifacts, study: Study, board: Board) -> Outcome:
        self.label = f"{art.case_id}-{self.name}"
        conv = art.conversion
        if not conv.ok:
            return Outcome(Verdict("convert_error", f"converter: {summarize_error(conv.error)}", None, False))
        model = conv.tflite
        if len(model) > board.model_partition_bytes:
            reason = f"model {len(model)} B > model partition {board.model_partition_bytes} B on {board.name}"
            return Outcome(Verdict("flash_overflow", reason, False, False))
        last: DeviceError | None = None
        for attempt in range(self.settings.retries + 1):
            try:
                return self._attempt(model, study, board)
            except (DeviceRebooted, DeviceTimeout, DeviceGarbage) as e:
                last = e
                if attempt < self.settings.retries:
                    self._recover(e)
        status = "timeout" if isinstance(last, DeviceTimeout) else "device_error"
        tries = self.settings.retries + 1
        return Outcome(Verdict(status, _reason(f"device ({tries} attempts)", str(last), last.log), None, False))

    def _recover(self, error: DeviceError) -> None:
        """Brings the link back to a known state before a retry."""
        if isinstance(error, DeviceRebooted):
            return  # the banner was read; the device is ready
        try:
            self.client.sync()
        except DeviceError:
            pass

    def _attempt(self, model: bytes, study: Study, board: Board) -> Outcome:
        client, s = self.client, self.settings
        if self.boot_timeout_s:
            client.wait_boot(self.boot_timeout_s)
            self.boot_timeout_s = 0
        info = client.sync()
        self.device_env = {
            "esp_idf": info.get("idf", ""),
            "esp_tflite_micro": info.get("tflm", "") + (" +esp-nn" if info.get("esp-nn") == "1" else ""),
            "firmware_hash": info.get("fw-sha256", ""),
        }
        measured_board = board
        if not self.simulated and info.get("heap-free") and info.get("heap-largest"):
            measured_board = board.with_measured_heap(int(info["heap-free"]), int(info["heap-largest"]))
        budget = "estimated" if measured_board.budget_is_estimate else "measured"
        figures: dict = {"fit_budget_source": budget}

        self.delivery.write(model, client)
        try:
            dm = client.load_model("partition", model, "auto", board.model_location)
        except DeviceErrorResponse as e:
            status = _error_status(e.error, e.log)
            fits = False if status in MEMORY_STATUSES else None
            return Outcome(Verdict(status, _reason("device", e.error, e.log), fits, False), figures)
        figures["arena_bytes"] = dm.arena_used_bytes
        figures["arena_source"] = "simulated" if self.simulated else "measured-device"

        ds = study.dataset
        idx = window_subset(len(ds.x_test), s.device_windows, s.seed)
        x, y = ds.x_test[idx], ds.y_test[idx]
        host = evaluate_isolated(model, x)  # a model that crashes TFLM must not take the run down
        qin = QuantParams(dm.input_dtype, dm.input_scale, dm.input_zero_point)
        qout = QuantParams(dm.output_dtype, dm.output_scale, dm.output_zero_point)
        device_scores = []
        for window in x:
            client.send_data("input", quantize(window[None], qin).tobytes())
            device_scores.append(dequantize(client.infer(1, 0).outputs, qout))
        device_classes = np.argmax(np.stack(device_scores), axis=1)
        figures.update(
            acc_device=float(np.mean(device_classes == y)),
            acc_device_source=self.source,
            device_windows=len(idx),
            device_agreement=(
                float(np.mean(device_classes == np.argmax(host.tflm_scores, axis=1)))
                if host.tflm_scores is not None
                else None  # host TFLM could not run it: nothing to agree with
            ),
        )

        client.send_data("input", quantize(x[:1], qin).tobytes())
        t_limit = max(s.timeout_s, 5.0 * (s.inferences + s.warmup))
        timed = client.infer(s.inferences, s.warmup, timeout=t_limit)
        stats = latency_stats(timed.cycles, timed.cpu_mhz)
        figures.update(
            latency_ms_median=stats.median_ms,
            latency_ms_mean=stats.mean_ms,
            latency_ms_std=stats.std_ms,
            latency_ms_min=stats.min_ms,
            latency_ms_max=stats.max_ms,
            latency_runs=stats.runs,
            latency_source=self.source,
        )
        if self.meter is not None:
            figures.update(self._energy(stats.median_ms))
        where = (
            "virtual board (simulated)" if self.simulated else f"{info.get('chip', 'esp32')} at {timed.cpu_mhz:g} MHz"
        )
        reason = f"runs on {where}: arena used {dm.arena_used_bytes} B, heap left {dm.heap_free} B"
        return Outcome(Verdict("ok", reason, True, True), figures)

    def _energy(self, latency_ms: float) -> dict:
        """Idle baseline, then the marker window(s) around N inferences, per the timing rule."""
        client, meter, ms = self.client, self.meter, self.meter_settings
        idle_w = None
        if ms.idle_ms > 0:
            meter.start(ms.idle_ms / 1000, f"{self.label}-idle")
            client.command("idle", ms.idle_ms, timeout=self.settings.timeout_s + ms.idle_ms / 1000)
            idle_trace = meter.finish(0.0)
            self._save(idle_trace, f"{self.label}-idle")
            idle_w = idle_power(idle_trace, ms.shunt_ohms)
        if ms.timing_rule == "mlperf":
            n = max(self.settings.inferences, int(np.ceil(MLPERF_MIN_WINDOW_S * 1000 / max(latency_ms, 1e-6))))
            repeats = MLPERF_REPEATS
        else:
            n, repeats = self.settings.inferences, 1
        runs = []
        for k in range(repeats):
            label = self.label if repeats == 1 else f"{self.label}-{k}"
            meter.start(n * latency_ms / 1000, label)
            result = client.infer(n, 0, timeout=max(self.settings.timeout_s, 3 * n * latency_ms / 1000 + 5))
            laps_ms = [c / (result.cpu_mhz * 1000) for c in result.cycles]
            trace = meter.finish(sum(laps_ms) / 1000)
            saved = self._save(trace, label)
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
        }

    def _save(self, trace, label: str) -> Path | None:
        if self.trace_dir is None:
            return None
        return trace.save(self.trace_dir / f"{label}.npz")
