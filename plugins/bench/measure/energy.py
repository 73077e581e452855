"""Energy meters and the analysis of a current trace.

Energy per inference = (1/N) ∫ V_dut(t) · V_shunt(t) / R_shunt dt over the window in
which the firmware holds its marker GPIO high around N inferences (README, Bench set-up),
or, with the firmware's EEMBC timestamp pin, between the two low pulses that mark the
window's edges. A meter produces a :class:`Trace`; :func:`analyse` turns it into figures.
Meters:

- :class:`NiDaqMeter`: NI-DAQmx (the reference bench: PCI-6251), shunt and supply on
  differential analog inputs, the marker on a digital line (clocked by the analog sample
  clock) or an analog input; software start with pre-roll, or a reference trigger on
  the marker edge;
- :class:`JoulescopeMeter`: a Joulescope JS220 or JS110 (the ``joulescope`` package, on
  ``pyjoulescope_driver``), current and voltage, the marker on its general-purpose input;
- :class:`ReplayMeter`: a recorded trace (``--save-traces`` writes them) analysed again;
- :class:`SimulatedMeter`: a power model for the virtual board; its figures are simulated.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyhil.plugins.bench.measure.meter_kinds import ENERGY_KINDS

MLPERF_MIN_WINDOW_S = 10.0
MLPERF_REPEATS = 5


class EnergyError(Exception):
    """A trace that cannot give an energy figure, or a meter that cannot capture one."""


@dataclass
class Trace:
    """A capture: shunt and supply voltages and the marker, at a fixed sample rate.

    Attributes:
        sample_rate_hz: Samples per second per channel.
        v_shunt: Volts across the shunt.
        v_dut: Volts at the DUT's supply pin (after the shunt).
        marker: Marker samples: bool (digital line) or volts (analog input).
        meta: Shunt ohms, source (measured/replayed/simulated), channel names, case id.
    """

    sample_rate_hz: float
    v_shunt: np.ndarray
    v_dut: np.ndarray
    marker: np.ndarray
    meta: dict = field(default_factory=dict)

    def save(self, path: Path) -> Path:
        """Writes ``.npz`` (default) or ``.csv`` (columns t_s, v_shunt_v, v_dut_v, marker)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".csv":
            with open(path, "w", newline="") as f:
                f.write(f"# tinyhil trace {json.dumps({'sample_rate_hz': self.sample_rate_hz, **self.meta})}\n")
                w = csv.writer(f)
                w.writerow(["t_s", "v_shunt_v", "v_dut_v", "marker"])
                t = np.arange(len(self.v_shunt)) / self.sample_rate_hz
                for row in zip(t, self.v_shunt, self.v_dut, self.marker.astype(float), strict=True):
                    w.writerow([f"{v:.9g}" for v in row])
        else:
            np.savez_compressed(
                path,
                v_shunt=self.v_shunt,
                v_dut=self.v_dut,
                marker=self.marker,
                sample_rate_hz=self.sample_rate_hz,
                meta=json.dumps(self.meta),
            )
        return path

    @classmethod
    def load(cls, path: Path) -> Trace:
        """Reads a trace written by :meth:`save` (or by hand in the same CSV layout).

        Raises:
            EnergyError: naming the file and what is wrong with it.
        """
        path = Path(path)
        if not path.exists():
            raise EnergyError(f"trace {path} does not exist; record it on the bench with --save-traces")
        try:
            if path.suffix == ".csv":
                text = path.read_text()
                first = text.splitlines()[0] if text else ""
                meta = json.loads(first.split("tinyhil trace", 1)[1]) if first.startswith("# tinyhil trace") else {}
                body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
                data = np.genfromtxt(io.StringIO(body), delimiter=",", names=True)
                rate = float(meta.pop("sample_rate_hz", 0) or 1.0 / np.median(np.diff(data["t_s"])))
                return cls(rate, data["v_shunt_v"], data["v_dut_v"], data["marker"], meta)
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    float(z["sample_rate_hz"]), z["v_shunt"], z["v_dut"], z["marker"], json.loads(str(z["meta"]))
                )
        except (KeyError, ValueError, OSError, IndexError) as e:
            raise EnergyError(
                f"trace {path} is not a tinyhil trace ({e}); expected columns t_s,v_shunt_v,v_dut_v,marker"
            ) from None


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


@dataclass(frozen=True)
class MeterSettings:
    """Options of the energy meters (see ``pytest --help``, group tinyhil)."""

    kind: str = "none"
    shunt_ohms: float = 9.8
    supply_volts: float = 3.3
    sample_rate_hz: float = 100_000.0
    device: str = "Dev1"
    shunt_channel: str = "ai0"
    supply_channel: str = "ai1"
    marker_channel: str = "port0/line0"
    trigger: str = "software"  # software (pre-roll) | marker (reference trigger on trigger_source)
    trigger_source: str = "/Dev1/PFI0"
    pre_roll_s: float = 0.02
    post_roll_s: float = 0.02
    shunt_range_v: float = 1.0  # the shunt drops about 0.4-0.6 V: +-1 V keeps its resolution
    supply_range_v: float = 5.0  # the 3V3 rail
    replay_dir: str = ""
    timing_rule: str = "paper"
    tolerance: float = 0.10
    idle_ms: int = 200
    joulescope_serial: str = ""  # empty: the one Joulescope connected
    joulescope_gpi: int = 0  # the general-purpose input the marker is wired to (IN0 or IN1)


class Meter:
    """Captures one trace around a device action: ``start(expected_s)``, act, ``finish(window_hint_s)``."""

    source = "measured"

    def start(self, expected_s: float, label: str) -> None:
        raise NotImplementedError

    def finish(self, window_hint_s: float) -> Trace:
        raise NotImplementedError

    def close(self) -> None:
        """Releases the instrument; a meter that holds none has nothing to do."""

    def abort(self) -> None:
        """Drops a capture that was started and will not be finished (the device failed in between)."""


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


class ReplayMeter(Meter):
    """Reads ``<replay-dir>/<label>.npz`` (or ``.csv``) instead of acquiring."""

    source = "replayed"

    def __init__(self, settings: MeterSettings):
        self.dir = Path(settings.replay_dir)
        if not self.dir.is_dir():
            raise EnergyError(f"--replay-dir {self.dir} is not a folder of traces (written by --save-traces)")
        self._label = ""

    def start(self, expected_s: float, label: str) -> None:
        self._label = label

    def finish(self, window_hint_s: float) -> Trace:
        for suffix in (".npz", ".csv"):
            path = self.dir / f"{self._label}{suffix}"
            if path.exists():
                trace = Trace.load(path)
                trace.meta["original_source"] = trace.meta.get("source", "unknown")
                trace.meta["source"] = "replayed"
                return trace
        raise EnergyError(f"no trace {self._label}.npz or .csv in {self.dir}")


class SimulatedMeter(Meter):
    """A power model for the virtual board: idle and active current, white noise.

    The marker window lasts what the board reported (the simulated cycle counts); the
    current is ``active_current_ma`` inside it and ``idle_current_ma`` outside.
    """

    source = "simulated"

    def __init__(self, settings: MeterSettings, model: dict, seed: int = 0):
        self.s = settings
        self.idle_a = model.get("idle_current_ma", 40.0) / 1e3
        self.active_a = model.get("active_current_ma", 60.0) / 1e3
        self.rng = np.random.default_rng(seed)

    def start(self, expected_s: float, label: str) -> None:
        self.label = label

    def finish(self, window_hint_s: float) -> Trace:
        s = self.s
        rate = s.sample_rate_hz
        if window_hint_s <= 0:  # an idle capture: no marker window
            n = max(2, int(round((s.pre_roll_s + s.post_roll_s) * rate)))
            return self._trace(np.full(n, self.idle_a), np.zeros(n, bool))
        n_pre, n_win, n_post = (max(1, int(round(v * rate))) for v in (s.pre_roll_s, window_hint_s, s.post_roll_s))
        marker = np.concatenate([np.zeros(n_pre, bool), np.ones(n_win, bool), np.zeros(n_post, bool)])
        return self._trace(np.where(marker, self.active_a, self.idle_a), marker)

    def _trace(self, current: np.ndarray, marker: np.ndarray) -> Trace:
        """Shunt and DUT voltages for a current, with 0.1 mV and 1 mV of white noise."""
        s = self.s
        v_shunt = current * s.shunt_ohms + self.rng.normal(0, 1e-4, len(current))
        v_dut = s.supply_volts - current * s.shunt_ohms + self.rng.normal(0, 1e-3, len(current))
        return Trace(s.sample_rate_hz, v_shunt, v_dut, marker, {"source": "simulated", "shunt_ohms": s.shunt_ohms})


def make_meter(
    settings: MeterSettings,
    simulation_model: dict | None = None,
    daq: Any = None,
    seed: int = 0,
    joulescope: Any = None,
) -> Meter | None:
    """The meter ``settings.kind`` names, or None for ``none``.

    Args:
        settings: The meter options.
        simulation_model: The board profile's power model, for ``simulated``.
        daq: A stand-in for the ``nidaqmx`` module (tests); imported when None.
        seed: Seeds the simulated meter's noise.
        joulescope: A stand-in for the ``joulescope`` module (tests); imported when None.

    Raises:
        EnergyError: For an unknown kind, or a meter that cannot start.
    """
    if settings.kind == "none":
        return None
    if settings.kind == "nidaqmx":
        return NiDaqMeter(settings, daq)
    if settings.kind == "joulescope":
        return JoulescopeMeter(settings, joulescope)
    if settings.kind == "replay":
        return ReplayMeter(settings)
    if settings.kind == "simulated":
        return SimulatedMeter(settings, simulation_model or {}, seed)
    raise EnergyError(f"unknown --energy {settings.kind!r}; known: {', '.join(ENERGY_KINDS)}")


def main(argv: list[str] | None = None) -> int:
    """``python -m tinyhil.plugins.bench.measure.energy TRACE --inferences N``: analyse a saved trace again."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m tinyhil.plugins.bench.measure.energy", description="analyse a saved tinyhil trace"
    )
    parser.add_argument("trace", type=Path, help="a .npz or .csv written by --save-traces")
    parser.add_argument("--inferences", type=int, default=10, help="N inferences in the marker window (Default: 10)")
    parser.add_argument("--shunt-ohms", type=float, default=None, help="(Default: the value recorded in the trace)")
    parser.add_argument(
        "--idle-trace", type=Path, help="idle capture for the baseline (Default: samples around the window)"
    )
    args = parser.parse_args(argv)
    try:
        trace = Trace.load(args.trace)
        shunt = args.shunt_ohms or float(trace.meta.get("shunt_ohms", 9.8))
        idle = idle_power(Trace.load(args.idle_trace), shunt) if args.idle_trace else None
        r = analyse(trace, args.inferences, shunt, idle)
    except EnergyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    source = trace.meta.get("source", "unknown")
    print(f"source {source}; window {r.window_ms:.4f} ms; {r.n_inferences} inferences")
    print(f"energy per inference: gross {r.energy_mj_gross:.6f} mJ, net {r.energy_mj_net:.6f} mJ")
    print(f"mean power {r.power_mw_mean:.3f} mW; idle {r.idle_power_mw:.3f} mW")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
