"""The ESP32 targets: the tinyhil firmware on a board, or the virtual board, driven over serial.

Per case: write the model into the ``model`` partition (:mod:`tinyhil.plugins.bench.link.delivery`),
load it with ``model …%``, then run the measurement steps (:mod:`tinyhil.plugins.bench.measure.steps`):
on-device accuracy and agreement with host TFLM, latency, and energy when a meter is
set. Failures become verdicts (:mod:`tinyhil.plugins.bench.measure.reply_verdicts`); reboots, serial drops and
time-outs are retried (each attempt starts from a fresh model load, so a retry is safe).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinyhil.models.boards import Board, check_flash
from tinyhil.models.compression import summarize_error
from tinyhil.models.inspection import ModelInfo
from tinyhil.models.model_files import data_fits
from tinyhil.models.pipeline import CaseArtifacts, Study
from tinyhil.models.tflm import QuantParams
from tinyhil.models.verdict import Verdict
from tinyhil.plugins.bench.link.delivery import (
    EsptoolDelivery,
    FlashFileDelivery,
    ModelDelivery,
    UploadDelivery,
    build_model_partition,
)
from tinyhil.plugins.bench.link.device import (
    DeviceClient,
    DeviceError,
    DeviceErrorResponse,
    DeviceGarbage,
    DeviceGone,
    DeviceRebooted,
    DeviceTimeout,
    DutLink,
)
from tinyhil.plugins.bench.link.windows import build_image, capacity
from tinyhil.plugins.bench.measure.agreement import AUTO
from tinyhil.plugins.bench.measure.energy.meter import Meter
from tinyhil.plugins.bench.measure.reply_verdicts import link_failed, load_refused
from tinyhil.plugins.bench.measure.steps import (
    EnergyMeasurement,
    HilSettings,
    accuracy_figures,
    disagreement_reason,
    latency_figures,
    window_order,
)
from tinyhil.plugins.targets.base import Outcome, TargetContext, register_target

BOOT_TIMEOUT_S = 15.0
PORT_RETURN_S = 15.0  # how long a vanished port is waited for (a DevKit re-enumerates in 1-5 s)

# A board to reach again after its port vanished: returns the port to reopen and, for a virtual
# board (restarted on a new pty, with a new model partition file), the delivery that reaches it.
Revive = Callable[[], "tuple[str, ModelDelivery | None]"]


class Esp32Target:
    """A board speaking protocol v1.

    Args:
        name: Target name, the last part of the case id.
        client: Device client on the board's serial link.
        delivery: How the model reaches the model partition.
        settings: Bench settings.
        simulated: True for the virtual board (figures are labelled simulated).
        boot_timeout_s: When > 0 the DUT was just reset: read its boot banner first.
        energy: Energy measurement, or None for no energy figures.
        port: The serial port of this board (each xdist worker has its own), for the row.
        arena_source: What the board's ``arena_used_bytes`` is, for the row's ``arena_source``.
        where: How the reason names the board; None: the chip and clock from its report.
        revive: Reaches the board again after its port vanished (see :data:`Revive`); None: wait
            for the same port to come back, as a USB board does after it re-enumerates.
    """

    def __init__(
        self,
        name: str,
        client: DeviceClient,
        delivery: ModelDelivery,
        settings: HilSettings,
        simulated: bool,
        boot_timeout_s: float = 0,
        energy: EnergyMeasurement | None = None,
        port: str = "",
        arena_source: str = "measured-device",
        where: str | None = None,
        revive: Revive | None = None,
    ):
        self.name, self.client, self.delivery, self.settings = name, client, delivery, settings
        self.simulated, self.boot_timeout_s, self.energy = simulated, boot_timeout_s, energy
        self.port, self.arena_source, self.where = port, arena_source, where
        self.revive = revive or (lambda: (self.port, None))

    @property
    def source(self) -> str:
        return "simulated" if self.simulated else "measured"

    def run(self, art: CaseArtifacts, study: Study, board: Board) -> Outcome:
        conv = art.conversion
        if not conv.ok:
            return Outcome(Verdict("convert_error", f"converter: {summarize_error(conv.error)}", None, False))
        flash = check_flash(board, len(conv.tflite))
        if flash is not None:
            return Outcome(Verdict(flash.status, flash.reason, False, False))
        failures: list[DeviceError] = []
        lost: DeviceGone | None = None
        for _ in range(self.settings.retries + 1):
            try:
                return self._attempt(conv.tflite, art.info, art.spec.id, f"{art.key}-{self.name}", study, board)
            except (DeviceRebooted, DeviceTimeout, DeviceGarbage, DeviceGone) as e:
                failures.append(e)
                # before the retry, and after the last attempt before the next case
                lost = self._recover(e)
                if lost is not None:
                    break  # the board is out of reach: no attempt can reach it
        return Outcome(link_failed(failures, lost))

    def _recover(self, error: DeviceError) -> DeviceGone | None:
        """Brings the link back to a known state before a retry or the next case: after a reboot
        too, since the windows a stream had sent ahead reach the rebooted firmware as junk commands.
        A port that vanished is reopened first (:meth:`_reach_again`). Returns the failure when the
        board cannot be reached again."""
        for _ in range(2):
            try:
                if isinstance(error, DeviceGone):
                    self._reach_again()
                self.client.resync()
                self.client.sync()
                return None
            except DeviceGone as e:
                error = e  # it vanished now, or while resyncing: reach it again, once
            except DeviceError:
                return None
        return error if isinstance(error, DeviceGone) else None

    def _stored_windows(self, x: np.ndarray, figures: dict) -> int:
        """How many windows of ``auto``'s order the board holds in its windows partition, written
        first when it holds others (once a session: the next cases find them); 0 when the board
        has no such partition, nothing writes it, or the windows go by count or all."""
        part = int(self.client.info.get("windows-partition-bytes", "0") or 0)
        if self.settings.device_windows != AUTO or not part:
            return 0
        order = window_order(len(x), self.settings.seed)
        image = build_image(x[order[: capacity(part, x[0].size)]], part)
        if image.count == 0 or self.client.stored_windows().holds(image):
            return image.count
        t0 = time.monotonic()
        if not self.delivery.write_windows(image.data, self.client):
            return 0
        figures["bench_windows_write_s"] = round(time.monotonic() - t0, 3)
        held = self.client.stored_windows()
        if not held.holds(image):
            raise DeviceGarbage(
                f"windows: wrote {image.count} windows (sha256 {image.sha256[:12]}…), the board reads "
                f"{held.count} (sha256 {held.sha256[:12] or 'none'}…)",
                [],
            )
        return image.count

    def _reach_again(self) -> None:
        """Reopens the link after the port vanished: on the same port once it is back (a board
        on USB re-enumerates), or on a restarted virtual board's new pty.

        Raises:
            DeviceGone: the board could not be reached again.
        """
        try:
            port, delivery = self.revive()
        except (OSError, RuntimeError) as e:
            raise DeviceGone(f"the board could not be restarted ({e})") from None
        link = self.client.link
        if not hasattr(link, "reopen"):
            raise DeviceGone(f"the serial port {self.port} is gone and this link cannot reopen it")
        link.reopen(port, PORT_RETURN_S)
        self.port = port
        if delivery is not None:
            self.delivery = delivery
        self.boot_timeout_s = 0

    def _attempt(
        self, model: bytes, model_info: ModelInfo, network: str, label: str, study: Study, board: Board
    ) -> Outcome:
        client = self.client
        if self.boot_timeout_s:
            client.wait_boot(self.boot_timeout_s)
            self.boot_timeout_s = 0
        info = client.sync()
        if info.get("simulated") == "1" and not self.simulated:
            # a virtual board behind a port (a labgrid place, a pty): its figures are simulated, whatever the target
            self.simulated = True
            self.arena_source = "firmware-host-build" if info.get("host-build") else "simulated"
            self.where = f"{self.where or 'a virtual board'} (its banner says simulated)"
        environment = {
            "esp_idf": info.get("idf", ""),
            "esp_tflite_micro": info.get("tflm", "") + (" +esp-nn" if info.get("esp-nn") == "1" else ""),
            "firmware_hash": info.get("fw-sha256", ""),
            "bench_port": self.port,
            "bench_mac": info.get("mac", ""),
        }
        mismatch = kernel_mismatch(info.get("kernels"), board)
        if mismatch is not None:  # the host verdict and the expected verdicts are the other library's
            return Outcome(mismatch, {}, environment)
        measured_board = board
        if not self.simulated and info.get("heap-free") and info.get("heap-largest"):
            measured_board = board.with_measured_heap(int(info["heap-free"]), int(info["heap-largest"]))
        figures: dict = {"fit_budget_source": "estimated" if measured_board.budget_is_estimate else "measured"}

        ds = study.dataset
        stored = 0
        if data_fits(model_info, ds):  # before the model: a flash write resets the board
            stored = self._stored_windows(ds.x_test, figures)
        t0 = time.monotonic()
        self.delivery.write(model, client)
        try:
            dm = client.load_model(self.delivery.source, model, "auto", board.model_location)
        except DeviceErrorResponse as e:
            return Outcome(load_refused(e), figures, environment)
        figures["bench_write_s"] = round(time.monotonic() - t0, 3)
        if network in self.settings.model_ids:  # so MLPerf Tiny's runner takes it for its benchmark
            client.command("model_id", self.settings.model_ids[network])
        # the smallest arena that loads (the firmware's bisection); an older firmware gives only TFLM's
        # arena_used_bytes(), which can be a few hundred bytes short of it
        figures["arena_bytes"] = dm.arena_min_bytes if dm.arena_min_bytes is not None else dm.arena_used_bytes
        figures["arena_device_bytes"] = dm.arena_used_bytes
        figures["arena_source"] = self.arena_source
        figures["arena_pointer_bits"] = info.get("pointer-bits", "")

        qin = QuantParams(dm.input_dtype, dm.input_scale, dm.input_zero_point)
        if data_fits(model_info, ds):
            x = ds.x_test
            figures.update(accuracy_figures(client, model, x, ds.y_test, qin, self.source, self.settings, stored))
        else:  # a user's model that takes other inputs: timed on zeros, no accuracy
            x = np.zeros(model_info.input_shape, np.float32)
        stats, timed, latency = latency_figures(client, x[:1], qin, self.settings, self.source)
        figures.update(latency)
        if self.energy is not None:
            figures.update(self.energy.figures(stats.median_ms, label))
        where = self.where or f"{info.get('chip', 'esp32')} at {timed.cpu_mhz:g} MHz"
        reason = f"runs on {where}: arena {figures['arena_bytes']} B, heap left {dm.heap_free} B"
        disagreement = disagreement_reason(figures, self.settings, len(ds.x_test))
        if disagreement is not None:
            # every figure is recorded first: a wrong answer still shows its latency and energy
            return Outcome(Verdict("wrong_output", f"{disagreement}; {reason}", True, True), figures, environment)
        return Outcome(Verdict("ok", reason, True, True), figures, environment)


def kernel_mismatch(kernels: str | None, board: Board) -> Verdict | None:
    """A ``device_error`` when the firmware's kernel library (its banner's ``kernels``) is not the
    one the run judges for (``board.kernels``), else None (also for a firmware that does not say)."""
    if not kernels or kernels == board.kernels:
        return None
    why = "the board profile's" if board.kernels == board.profile_kernels else "--tflm-source without --esp-nn-source"
    return Verdict(
        "device_error",
        f"the board's firmware runs the {kernels} kernels (m-info-kernels-{kernels}), this run judges for "
        f"{board.kernels} ({why}): flash a firmware built with {board.kernels}, or give a board profile "
        f'with "kernels": "{kernels}"',
        None,
        False,
    )


def _energy(ctx: TargetContext, client: DeviceClient, meter: Meter | None) -> EnergyMeasurement | None:
    if meter is None:
        return None
    s = ctx.settings
    trace_dir = Path(s.report_dir) / "traces" if s.options.save_traces else None
    return EnergyMeasurement(client, meter, s.meter, s.hil, trace_dir)


@register_target(
    "esp32",
    "hil",
    "the tinyhil firmware on an ESP32 on --port, flashed and driven through pytest-embedded",
    selected=lambda s: not s.virtual_board,
)
def bench_esp32(ctx: TargetContext) -> Esp32Target:
    s = ctx.settings
    meter = ctx.fixture("energy_meter")  # first: a missing meter stops the run before the board is touched
    dut = ctx.fixture("dut")
    opt = ctx.fixture("pytestconfig").option
    port = opt.port  # this worker's board when --port or --labgrid-places lists several
    client = DeviceClient(DutLink(dut, port), s.hil.timeout_s)
    if "idf" in str(opt.embedded_services or ""):  # pytest-embedded flashed the firmware: esptool writes models
        try:
            windows: tuple[int, int] | None = build_model_partition(dut.app, "windows")
        except ValueError:  # a build from before the windows partition: windows travel with each case
            windows = None
        delivery: ModelDelivery = EsptoolDelivery(dut.serial, *build_model_partition(dut.app), windows=windows)
        boot_timeout = BOOT_TIMEOUT_S
    else:  # a board running the firmware already, reached through its serial port only
        delivery, boot_timeout = UploadDelivery(), 0
    return Esp32Target(
        "esp32",
        client,
        delivery,
        s.hil,
        simulated=False,
        boot_timeout_s=boot_timeout,
        energy=_energy(ctx, client, meter),
        port=port,
    )


def _on_virtual_board(ctx: TargetContext, name: str, arena_source: str, where: str) -> Esp32Target:
    """A target on this process's virtual board (Python or the firmware's host build): the
    model partition is a file, every figure simulated."""
    s = ctx.settings
    meter = ctx.fixture("energy_meter")
    vb = ctx.fixture("virtual_board_process")
    restart = ctx.fixture("restart_virtual_board")
    client = DeviceClient(DutLink(ctx.fixture("dut"), vb.port), s.hil.timeout_s)

    def revive() -> tuple[str, ModelDelivery]:
        new = restart()  # the dead board's process ends; a new one comes up on a new pty
        return new.port, FlashFileDelivery(new.flash_file, new.baud)

    return Esp32Target(
        name,
        client,
        FlashFileDelivery(vb.flash_file, vb.baud),
        s.hil,
        simulated=True,
        energy=_energy(ctx, client, meter),
        port=vb.port,
        arena_source=arena_source,
        where=where,
        revive=revive,
    )


@register_target(
    "virtual-esp32",
    "hil",
    "the virtual ESP32 on a pseudo-terminal (figures simulated)",
    selected=lambda s: s.virtual_board and not s.firmware_host,
)
def virtual_esp32(ctx: TargetContext) -> Esp32Target:
    return _on_virtual_board(ctx, "virtual-esp32", "simulated", "virtual board (simulated)")


@register_target(
    "firmware-host",
    "hil",
    "the firmware's own code built for Linux against --tflm-source, on a pseudo-terminal (figures simulated)",
    selected=lambda s: s.firmware_host,
)
def firmware_host(ctx: TargetContext) -> Esp32Target:
    return _on_virtual_board(
        ctx, "firmware-host", "firmware-host-build", "the firmware built for Linux (host timing, simulated)"
    )
