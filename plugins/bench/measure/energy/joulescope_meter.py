"""A Joulescope JS220 or JS110 (the ``joulescope`` package, on ``pyjoulescope_driver``).

Current and voltage, the marker on its general-purpose input.
"""

from __future__ import annotations

import atexit
import math
import time
from typing import Any

import numpy as np

from tinyhil.plugins.bench.measure.energy.meter import Meter
from tinyhil.plugins.bench.measure.energy.settings import MeterSettings
from tinyhil.plugins.bench.measure.energy.trace import EnergyError, Trace

JOULESCOPE_BUFFER_S = 30.0  # the joulescope package's default stream buffer
JOULESCOPE_START_TIMEOUT_S = 5.0
_JOULESCOPE_GPI_FIELDS = {0: ("current_lsb", "gpi0"), 1: ("voltage_lsb", "gpi1")}


class JoulescopeMeter(Meter):
    """A Joulescope JS220 or JS110 through the ``joulescope`` package (built on ``pyjoulescope_driver``).

    The Joulescope sits in the DUT's supply and measures its current and the voltage at its
    output; the marker GPIO goes to a general-purpose input. The trace keeps the NI-DAQmx
    layout so that :func:`analyse`, replay and the saved files are shared: ``v_shunt`` is the
    current times ``settings.shunt_ohms`` (for a Joulescope that resistance is only this
    scale, recorded in the trace), ``v_dut`` the measured voltage, ``marker`` the input.

    The device streams from the first capture on; a capture takes its pre-roll from samples
    already in the stream buffer, so no start-up delay eats into it.

    Args:
        settings: Rate, shunt scale, pre- and post-roll, which Joulescope and which input.
        js: The ``joulescope`` module; injected by the tests, imported otherwise.

    Raises:
        EnergyError: When the package or the device is missing, saying what to install or connect.
    """

    def __init__(self, settings: MeterSettings, js: Any = None):
        self.s = settings
        if js is None:
            try:
                import joulescope as js
            except ImportError:
                raise EnergyError(
                    "the joulescope Python package is missing: pip install joulescope (it brings pyjoulescope_driver)"
                ) from None
        if settings.joulescope_gpi not in _JOULESCOPE_GPI_FIELDS:
            raise EnergyError(f"Joulescope input IN{settings.joulescope_gpi} does not exist: use IN0 or IN1")
        if settings.trigger != "software":
            raise EnergyError("the Joulescope meter starts in software with pre-roll: drop --daq-trigger marker")
        self.js = js
        self.device = self._find_device()
        self._streaming = False
        self._first = self._n = 0
        atexit.register(self.close)

    def _find_device(self) -> Any:
        try:
            devices = list(self.js.scan(config="auto"))
        except Exception as e:  # the driver raises its own types when USB access fails
            raise EnergyError(
                f"the Joulescope driver cannot scan for devices ({type(e).__name__}: {e}); on Linux install "
                "Joulescope's udev rules, or run with --energy none"
            ) from None
        serials = [str(d.serial_number) for d in devices]
        want = self.s.joulescope_serial
        if want:
            chosen = [d for d, sn in zip(devices, serials, strict=True) if sn == want]
            if not chosen:
                raise EnergyError(
                    f"Joulescope {want!r} not found (present: {', '.join(serials) or 'none'}); "
                    "check its USB cable and serial number"
                )
            return chosen[0]
        if not devices:
            raise EnergyError(
                "no Joulescope found: connect the JS220 or JS110 to USB (on Linux, Joulescope's udev rules "
                "give access to it), or run with --energy none"
            )
        if len(devices) > 1:
            raise EnergyError(f"{len(devices)} Joulescopes found ({', '.join(serials)}): choose one by serial number")
        return devices[0]

    def _open(self) -> None:
        lsb_parameter, gpi_value = _JOULESCOPE_GPI_FIELDS[self.s.joulescope_gpi]
        parameters = [
            ("sampling_frequency", int(self.s.sample_rate_hz)),
            ("buffer_duration", JOULESCOPE_BUFFER_S),
            ("io_voltage", "3.3V"),  # the ESP32's logic level, for the input's threshold
            # the JS110 carries its inputs in the sample LSBs; the JS220 streams them anyway
            (lsb_parameter, gpi_value),
        ]
        for name, value in parameters:
            try:
                self.device.parameter_set(name, value)
            except (KeyError, ValueError) as e:
                raise EnergyError(f"the Joulescope refuses {name} = {value!r} ({e}); check --sample-rate") from None
        try:
            self.device.open()
            self.device.start()  # no duration: streams until close()
        except Exception as e:  # the driver's own error types
            raise EnergyError(
                f"cannot open the Joulescope ({type(e).__name__}: {e}): is the Joulescope UI or another "
                "program using it?"
            ) from None
        self._streaming = True

    def _range(self) -> tuple[int, int]:
        start, end = self.device.stream_buffer.sample_id_range
        return (start or 0), (end or 0)

    def start(self, expected_s: float, label: str) -> None:
        s = self.s
        total_s = s.pre_roll_s + expected_s + s.post_roll_s
        if total_s + 1.0 > JOULESCOPE_BUFFER_S:
            raise EnergyError(
                f"a capture of {total_s:.1f} s does not fit the Joulescope's {JOULESCOPE_BUFFER_S:g} s stream buffer"
            )
        pre = int(round(s.pre_roll_s * s.sample_rate_hz))
        if not self._streaming:
            self._open()
        deadline = time.monotonic() + JOULESCOPE_START_TIMEOUT_S
        first, end = self._range()
        while end - first < pre:
            if time.monotonic() > deadline:
                raise EnergyError("the Joulescope sends no samples: check its USB connection and power")
            time.sleep(0.01)
            first, end = self._range()
        self._first = end - pre
        self._n = int(math.ceil(total_s * s.sample_rate_hz))

    def finish(self, window_hint_s: float) -> Trace:
        s = self.s
        stop = self._first + self._n
        deadline = time.monotonic() + self._n / s.sample_rate_hz + 10.0
        while self._range()[1] < stop:
            if time.monotonic() > deadline:
                raise EnergyError("the Joulescope stopped streaming before the capture was complete")
            time.sleep(0.01)
        field_name = _JOULESCOPE_GPI_FIELDS[s.joulescope_gpi][0]
        data = self.device.stream_buffer.samples_get(self._first, stop, fields=["current", "voltage", field_name])
        got = data["time"]["sample_id_range"]["value"]
        if list(got) != [self._first, stop]:
            raise EnergyError(
                f"the Joulescope's buffer holds samples {got[0]}..{got[1]}, not {self._first}..{stop}: "
                "the capture took longer than its buffer"
            )
        signals = data["signals"]
        current = np.asarray(signals["current"]["value"], dtype=float)
        voltage = np.asarray(signals["voltage"]["value"], dtype=float)
        if np.isnan(current).any() or np.isnan(voltage).any():
            raise EnergyError(
                "the Joulescope dropped samples (USB): connect it to a port of its own, or lower --sample-rate"
            )
        rate = float(data["time"].get("sampling_frequency", {}).get("value", s.sample_rate_hz))
        return Trace(
            rate,
            current * s.shunt_ohms,
            voltage,
            np.asarray(signals[field_name]["value"]).astype(bool),
            {
                "source": "measured",
                "shunt_ohms": s.shunt_ohms,
                "device": f"joulescope-{self.device.serial_number}",
                "v_shunt": "current x shunt_ohms (Joulescope)",
            },
        )

    def close(self) -> None:
        """Stops the stream and closes the device (also at exit)."""
        if self._streaming:
            self._streaming = False
            try:
                self.device.stop()
            finally:
                self.device.close()
