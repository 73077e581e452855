"""NI-DAQmx (the reference bench: PCI-6251).

Shunt and supply on differential analog inputs, the marker on a digital line (clocked by
the analog sample clock) or an analog input; software start with pre-roll, or a reference
trigger on the marker edge.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinyhil.plugins.bench.measure.energy.meter import Meter
from tinyhil.plugins.bench.measure.energy.settings import MeterSettings
from tinyhil.plugins.bench.measure.energy.trace import EnergyError, Trace


class NiDaqMeter(Meter):
    """NI-DAQmx acquisition (reference bench: NI PCI-6251).

    Args:
        settings: Channels, rate, shunt, trigger.
        daq: The ``nidaqmx`` module; injected by the tests, imported otherwise.

    Raises:
        EnergyError: when the NI-DAQmx driver or the device is missing, saying what to install or connect.
    """

    def __init__(self, settings: MeterSettings, daq: Any = None):
        self.s = settings
        if daq is None:
            try:
                import nidaqmx as daq
                import nidaqmx.stream_readers  # noqa: F401 (daq.stream_readers: the readers into numpy)
            except ImportError:
                raise EnergyError("the nidaqmx Python package is missing: pip install nidaqmx") from None
        self.daq = daq
        self._check_device()
        self._tasks: list = []
        self._n = 0

    def _check_device(self) -> None:
        try:
            devices = [d.name for d in self.daq.system.System.local().devices]
        except Exception as e:  # DaqNotFoundError when the driver is absent
            raise EnergyError(
                f"NI-DAQmx driver not usable ({type(e).__name__}: {e}). Install NI-DAQmx from ni.com "
                "(Linux: python -m nidaqmx installdriver), or run with --energy none"
            ) from None
        if self.s.device not in devices:
            raise EnergyError(
                f"DAQ device {self.s.device!r} not found (present: {', '.join(devices) or 'none'}); "
                "check the card in NI MAX and pass its name with --daq-device"
            )

    def _chan(self, name: str) -> str:
        return name if "/" in name and name.startswith(self.s.device) else f"{self.s.device}/{name}"

    @property
    def marker_is_digital(self) -> bool:
        return "line" in self.s.marker_channel or "port" in self.s.marker_channel

    def start(self, expected_s: float, label: str) -> None:
        """Arms the tasks: analog (shunt, supply, and an analog marker) and, for a digital marker, a
        digital task on the analog task's sample clock. With ``--daq-trigger marker`` both take the
        same reference trigger, so both return the samples around the same edge; otherwise the
        digital task is armed first and its first sample is the analog task's first."""
        self.abort()  # a capture the device failed in the middle of: its tasks hold the card
        try:
            self._arm(expected_s, label)
        except BaseException:
            self.abort()
            raise

    def _arm(self, expected_s: float, label: str) -> None:
        c, s = self.daq.constants, self.s
        total_s = s.pre_roll_s + expected_s + s.post_roll_s
        self._n = int(math.ceil(total_s * s.sample_rate_hz))
        pre = int(s.pre_roll_s * s.sample_rate_hz)
        ai = self.daq.Task(f"tinyhil-ai-{label}")
        self._tasks = [ai]
        for ch, rng in ((s.shunt_channel, s.shunt_range_v), (s.supply_channel, s.supply_range_v)):
            ai.ai_channels.add_ai_voltage_chan(
                self._chan(ch), terminal_config=c.TerminalConfiguration.DIFF, min_val=-rng, max_val=rng
            )
        if not self.marker_is_digital:
            ai.ai_channels.add_ai_voltage_chan(
                self._chan(s.marker_channel), terminal_config=c.TerminalConfiguration.RSE, min_val=0.0, max_val=5.0
            )
        ai.timing.cfg_samp_clk_timing(s.sample_rate_hz, sample_mode=c.AcquisitionType.FINITE, samps_per_chan=self._n)
        if s.trigger == "marker":
            ai.triggers.reference_trigger.cfg_dig_edge_ref_trig(s.trigger_source, pre, trigger_edge=c.Edge.RISING)
        if self.marker_is_digital:
            di = self.daq.Task(f"tinyhil-di-{label}")
            self._tasks.append(di)
            di.di_channels.add_di_chan(self._chan(s.marker_channel), line_grouping=c.LineGrouping.CHAN_PER_LINE)
            di.timing.cfg_samp_clk_timing(
                s.sample_rate_hz,
                source=f"/{s.device}/ai/SampleClock",
                sample_mode=c.AcquisitionType.FINITE,
                samps_per_chan=self._n,
            )
            if s.trigger == "marker":  # the same edge and pre-trigger count as the analog task
                di.triggers.reference_trigger.cfg_dig_edge_ref_trig(s.trigger_source, pre, trigger_edge=c.Edge.RISING)
            di.start()  # armed: it samples on the analog task's clock, which starts with ai
        ai.start()

    def finish(self, window_hint_s: float) -> Trace:
        readers, s = self.daq.stream_readers, self.s
        timeout = self._n / s.sample_rate_hz + 10.0
        try:
            analog = np.zeros((2 if self.marker_is_digital else 3, self._n), dtype=np.float64)
            readers.AnalogMultiChannelReader(self._tasks[0].in_stream).read_many_sample(
                analog, number_of_samples_per_channel=self._n, timeout=timeout
            )
            if self.marker_is_digital:
                lines = np.zeros(self._n, dtype=np.uint32)
                readers.DigitalSingleChannelReader(self._tasks[1].in_stream).read_many_sample_port_uint32(
                    lines, number_of_samples_per_channel=self._n, timeout=timeout
                )
                marker = lines != 0  # a one-line channel reads as bit 0
            else:
                marker = analog[2]
        finally:
            self.abort()
        return Trace(
            s.sample_rate_hz,
            analog[0],
            analog[1],
            marker,
            {"source": "measured", "shunt_ohms": s.shunt_ohms, "device": s.device},
        )

    def abort(self) -> None:
        for task in self._tasks:
            try:
                task.close()
            except Exception:  # a task the driver already dropped
                pass
        self._tasks = []

    def close(self) -> None:
        self.abort()
