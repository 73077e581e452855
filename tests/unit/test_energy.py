"""Energy analysis against waveforms with known integrals, and the meters at their seams."""

import sys
import types

import numpy as np
import pytest

from tinyhil.plugins.bench.measure.energy.__main__ import main
from tinyhil.plugins.bench.measure.energy.analysis import analyse, check_window, idle_power
from tinyhil.plugins.bench.measure.energy.factory import make_meter
from tinyhil.plugins.bench.measure.energy.joulescope_meter import JoulescopeMeter
from tinyhil.plugins.bench.measure.energy.kinds import ENERGY_KINDS
from tinyhil.plugins.bench.measure.energy.nidaqmx_meter import NiDaqMeter
from tinyhil.plugins.bench.measure.energy.replay import ReplayMeter
from tinyhil.plugins.bench.measure.energy.settings import MeterSettings
from tinyhil.plugins.bench.measure.energy.simulated import SimulatedMeter
from tinyhil.plugins.bench.measure.energy.trace import EnergyError, Trace

R = 9.8
V = 3.3


def make_trace(rate, t_total, t_on, t_off, current, marker_analog=False, noise=0.0, seed=0):
    """Trace with the given current(t) function, supply 3.3 V before the shunt."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(t_total * rate))) / rate
    i = current(t)
    v_shunt = i * R + rng.normal(0, noise, len(t))
    v_dut = V - i * R + rng.normal(0, noise * 10, len(t))
    if marker_analog:  # a 3.3 V GPIO sampled on an analog input: edges fall between samples
        marker = np.clip((t - t_on) * rate + 0.5, 0, 1) * np.clip((t_off - t) * rate + 0.5, 0, 1) * 3.3
    else:
        marker = (t >= t_on) & (t < t_off)
    return Trace(rate, v_shunt, v_dut, marker, {"source": "test", "shunt_ohms": R})


def power(i):
    return (V - i * R) * i


def test_rectangular_pulse_recovers_the_known_energy():
    idle, active, t_on, t_off = 0.040, 0.060, 0.0123, 0.0523
    tr = make_trace(100_000, 0.07, t_on, t_off, lambda t: np.where((t >= t_on) & (t < t_off), active, idle))
    r = analyse(tr, 10, R)
    expected_gross = power(active) * (t_off - t_on) / 10 * 1e3
    expected_net = (power(active) - power(idle)) * (t_off - t_on) / 10 * 1e3
    assert r.energy_mj_gross == pytest.approx(expected_gross, rel=0.005)
    assert r.energy_mj_net == pytest.approx(expected_net, rel=0.005)
    assert r.power_mw_mean == pytest.approx(power(active) * 1e3, rel=0.005)
    assert r.idle_power_mw == pytest.approx(power(idle) * 1e3, rel=0.001)


def test_ramp_with_analog_marker_edges_between_samples():
    t_on, t_off = 0.010_004_3, 0.030_007_7
    slope = 1.0  # A/s: current ramps from 40 mA inside the window

    def current(t):
        return np.where((t >= t_on) & (t < t_off), 0.040 + slope * (t - t_on), 0.040)

    tr = make_trace(50_000, 0.05, t_on, t_off, current, marker_analog=True)
    r = analyse(tr, 4, R)
    # ∫ (V - R i) i dt with i = a + b s, s in [0, T]
    a, b, T = 0.040, slope, t_off - t_on
    exact = V * (a * T + b * T**2 / 2) - R * (a**2 * T + a * b * T**2 + b**2 * T**3 / 3)
    assert r.energy_mj_gross == pytest.approx(exact / 4 * 1e3, rel=0.005)
    assert r.window_ms == pytest.approx(T * 1e3, rel=0.005)


def test_noise_averages_out():
    idle, active, t_on, t_off = 0.040, 0.080, 0.02, 0.07
    tr = make_trace(200_000, 0.1, t_on, t_off, lambda t: np.where((t >= t_on) & (t < t_off), active, idle), noise=2e-3)
    r = analyse(tr, 10, R)
    assert r.energy_mj_net == pytest.approx((power(active) - power(idle)) * 0.05 / 10 * 1e3, rel=0.005)


def test_marker_jitter_and_glitches_are_merged():
    rate, t_on, t_off = 100_000, 0.01, 0.04
    tr = make_trace(rate, 0.05, t_on, t_off, lambda t: np.where((t >= t_on) & (t < t_off), 0.06, 0.04))
    marker = tr.marker.copy()
    marker[int(0.02 * rate) : int(0.02 * rate) + 2] = False  # a 20 µs drop inside the window
    marker[int(0.03 * rate)] = False
    tr.marker = marker
    r = analyse(tr, 10, R)
    assert r.window_ms == pytest.approx(30.0, rel=0.005)
    assert r.energy_mj_gross == pytest.approx(power(0.06) * 0.03 / 10 * 1e3, rel=0.005)


def test_given_idle_baseline_is_used():
    tr = make_trace(100_000, 0.05, 0.01, 0.04, lambda t: np.full_like(t, 0.05))
    r = analyse(tr, 1, R, idle_power_w=0.1)
    assert r.energy_mj_net == pytest.approx((power(0.05) - 0.1) * 0.03 * 1e3, rel=0.005)


@pytest.mark.parametrize(
    "t_on, t_off, message",
    [
        (0.0, 0.02, "already high when the trace starts: increase the pre-roll"),
        (0.01, 0.06, "still high when the trace ends: capture longer"),
        (0.07, 0.08, "no marker window in the trace: is the marker GPIO wired"),
    ],
)
def test_windows_at_the_edges_of_the_trace_are_refused(t_on, t_off, message):
    tr = make_trace(10_000, 0.05, t_on, t_off, lambda t: np.full_like(t, 0.05))
    with pytest.raises(EnergyError, match=message):
        analyse(tr, 10, R)


def timestamp_marker(t, t_on, t_off, pulse_s, analog=False, rate=None):
    """EEMBC's timestamp pin: high, a low pulse ending at t_on and one starting at t_off."""
    if analog:  # edges between samples, as an analog input sees them

        def pulse(a, b):
            return np.clip((t - a) * rate + 0.5, 0, 1) * np.clip((b - t) * rate + 0.5, 0, 1)

        return (1 - pulse(t_on - pulse_s, t_on) - pulse(t_off, t_off + pulse_s)) * 3.3
    low = ((t >= t_on - pulse_s) & (t < t_on)) | ((t >= t_off) & (t < t_off + pulse_s))
    return ~low


@pytest.mark.parametrize("analog", [False, True])
def test_eembc_timestamp_pulses_bound_the_window(analog):
    rate, idle, active = 100_000, 0.040, 0.060
    t_on, t_off, pulse = 0.010_004_3, 0.040_007_7, 100e-6
    tr = make_trace(rate, 0.06, t_on, t_off, lambda t: np.where((t >= t_on) & (t < t_off), active, idle))
    t = np.arange(len(tr.v_shunt)) / rate
    tr.marker = timestamp_marker(t, t_on, t_off, pulse, analog, rate)
    r = analyse(tr, 10, R)
    # the window runs from the end of the first pulse to the start of the second: the inferences alone
    assert r.window_ms == pytest.approx((t_off - t_on) * 1e3, rel=0.005)
    assert r.energy_mj_gross == pytest.approx(power(active) * (t_off - t_on) / 10 * 1e3, rel=0.005)
    assert r.idle_power_mw == pytest.approx(power(idle) * 1e3, rel=0.005)


def test_eembc_timestamp_marker_needs_both_pulses():
    rate = 10_000
    tr = make_trace(rate, 0.05, 0.01, 0.08, lambda t: np.full_like(t, 0.05))
    t = np.arange(len(tr.v_shunt)) / rate
    tr.marker = timestamp_marker(t, 0.01, 0.08, 1e-3)  # the end pulse falls after the capture
    with pytest.raises(EnergyError, match="high at both ends of the trace with 1 low pulse"):
        analyse(tr, 10, R)


def test_window_check_against_cycle_counts():
    assert check_window(10.05, [1.0] * 10, 0.1).startswith("ok: window 10.050 ms vs cycle counts 10.000 ms (+0.5%)")
    assert check_window(12.0, [1.0] * 10, 0.1).startswith("mismatch beyond 10%")


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_saved_trace_replays_to_the_same_figures(tmp_path, suffix):
    meter = SimulatedMeter(MeterSettings(kind="simulated"), {"idle_current_ma": 40, "active_current_ma": 70}, seed=3)
    meter.start(0.01, "case")
    live = meter.finish(0.01)
    live_result = analyse(live, 10, R)
    (tmp_path / "traces").mkdir()
    live.save(tmp_path / "traces" / f"C_1-lite-x{suffix}")
    replay = ReplayMeter(MeterSettings(kind="replay", replay_dir=str(tmp_path / "traces")))
    replay.start(0.01, "C_1-lite-x")
    again = replay.finish(0.0)
    assert again.meta["source"] == "replayed" and again.meta["original_source"] == "simulated"
    replayed = analyse(again, 10, R)
    tol = 0 if suffix == ".npz" else 1e-6
    assert replayed.energy_mj_gross == pytest.approx(live_result.energy_mj_gross, rel=tol)
    assert replayed.energy_mj_net == pytest.approx(live_result.energy_mj_net, rel=tol)


def test_replay_names_the_missing_trace(tmp_path):
    with pytest.raises(EnergyError, match="not a folder of traces"):
        ReplayMeter(MeterSettings(kind="replay", replay_dir=str(tmp_path / "none")))
    m = ReplayMeter(MeterSettings(kind="replay", replay_dir=str(tmp_path)))
    m.start(0.01, "C_9-lite")
    with pytest.raises(EnergyError, match="no trace C_9-lite.npz or .csv"):
        m.finish(0.0)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(EnergyError, match="not a tinyhil trace"):
        Trace.load(tmp_path / "bad.csv")


def test_offline_analysis_command(tmp_path, capsys):
    meter = SimulatedMeter(MeterSettings(kind="simulated"), {}, seed=1)
    meter.start(0.005, "x")
    meter.finish(0.005).save(tmp_path / "t.npz")
    assert main([str(tmp_path / "t.npz"), "--inferences", "10"]) == 0
    out = capsys.readouterr().out
    assert "source simulated" in out and "gross" in out
    assert main([str(tmp_path / "missing.npz")]) == 2


def test_simulated_idle_capture_has_no_window():
    meter = SimulatedMeter(MeterSettings(kind="simulated"), {"idle_current_ma": 40}, seed=0)
    meter.start(0.2, "idle")
    tr = meter.finish(0.0)
    assert not tr.marker.any()
    assert idle_power(tr, R) == pytest.approx(power(0.040), rel=1e-3)


class FakeWorld:
    """One timeline every fake task samples: the marker high for ``width`` samples from ``edge``,
    the shunt current 60 mA then, 40 mA otherwise (sample 0 is when the analog task starts)."""

    edge, width = 300, 400


class FakeTask:
    """An nidaqmx.Task at the seam: records its configuration and, read through the stream
    readers, returns the world's samples as the card would. A finite task returns the first
    ``n`` samples after its clock starts; with a reference trigger, ``pre`` samples before the
    trigger edge and the rest after it (NI-DAQmx's default read position for a reference trigger)."""

    instances: list = []
    fail_on: str | None = None  # a configuration call that raises, as the driver does on a bad channel

    def __init__(self, name=""):
        self.name, self.calls, self.closed, self.started = name, [], False, False
        self.n, self.pre = 0, None
        rec = self.calls

        def recorder(kind):
            def call(*a, **k):
                if FakeTask.fail_on == kind:
                    raise RuntimeError(f"DaqError in {kind}")
                rec.append((kind, a, k))
                if kind == "timing":
                    self.n = k["samps_per_chan"]
                if kind == "ref_trig":
                    self.pre = a[1]

            return call

        self.ai_channels = types.SimpleNamespace(add_ai_voltage_chan=recorder("ai"))
        self.di_channels = types.SimpleNamespace(add_di_chan=recorder("di"))
        self.timing = types.SimpleNamespace(cfg_samp_clk_timing=recorder("timing"))
        self.triggers = types.SimpleNamespace(
            reference_trigger=types.SimpleNamespace(cfg_dig_edge_ref_trig=recorder("ref_trig"))
        )
        self.in_stream = self
        FakeTask.instances.append(self)

    def start(self):
        self.started = True

    def samples(self, n):
        first = 0 if self.pre is None else FakeWorld.edge - self.pre
        t = np.arange(first, first + n)
        return (t >= FakeWorld.edge) & (t < FakeWorld.edge + FakeWorld.width)

    def close(self):
        self.closed = True


class FakeReaders:
    class AnalogMultiChannelReader:
        def __init__(self, task):
            self.task = task

        def read_many_sample(self, data, number_of_samples_per_channel, timeout):
            marker = self.task.samples(number_of_samples_per_channel)
            i = np.where(marker, 0.06, 0.04)
            data[0], data[1] = i * R, V - i * R
            if len(data) > 2:
                data[2] = np.where(marker, 3.3, 0.0)

    class DigitalSingleChannelReader:
        def __init__(self, task):
            self.task = task

        def read_many_sample_port_uint32(self, data, number_of_samples_per_channel, timeout):
            data[:] = self.task.samples(number_of_samples_per_channel)


def fake_nidaqmx(devices=("Dev1",), driver=True):
    constants = types.SimpleNamespace(
        TerminalConfiguration=types.SimpleNamespace(DIFF="DIFF", RSE="RSE"),
        AcquisitionType=types.SimpleNamespace(FINITE="FINITE"),
        Edge=types.SimpleNamespace(RISING="RISING"),
        LineGrouping=types.SimpleNamespace(CHAN_PER_LINE="CHAN_PER_LINE"),
    )

    def local():
        if not driver:
            raise RuntimeError("Could not find an installation of NI-DAQmx")
        return types.SimpleNamespace(devices=[types.SimpleNamespace(name=d) for d in devices])

    system = types.SimpleNamespace(System=types.SimpleNamespace(local=local))
    return types.SimpleNamespace(Task=FakeTask, constants=constants, system=system, stream_readers=FakeReaders)


def test_nidaqmx_task_configuration_through_the_seam():
    FakeTask.instances = []
    s = MeterSettings(kind="nidaqmx", sample_rate_hz=50_000, pre_roll_s=0.01, post_roll_s=0.01)
    meter = NiDaqMeter(s, daq=fake_nidaqmx())
    meter.start(0.02, "C_1-lite")
    ai, di = FakeTask.instances
    assert [c for c in ai.calls if c[0] == "ai"] == [  # the shunt's range fits its ~0.5 V, the supply's 3V3
        ("ai", ("Dev1/ai0",), {"terminal_config": "DIFF", "min_val": -1.0, "max_val": 1.0}),
        ("ai", ("Dev1/ai1",), {"terminal_config": "DIFF", "min_val": -5.0, "max_val": 5.0}),
    ]
    assert ("timing", (50_000,), {"sample_mode": "FINITE", "samps_per_chan": 2000}) in ai.calls
    assert di.calls[0] == ("di", ("Dev1/port0/line0",), {"line_grouping": "CHAN_PER_LINE"})
    assert di.calls[1][2]["source"] == "/Dev1/ai/SampleClock"  # marker sampled on the analog clock
    assert di.started and ai.started
    trace = meter.finish(0.0)
    assert ai.closed and di.closed and trace.meta["source"] == "measured"
    r = analyse(trace, 10, R)
    assert r.power_mw_mean == pytest.approx(power(0.06) * 1e3, rel=1e-3)


@pytest.mark.parametrize("marker_channel", ["port0/line0", "ai2"])
@pytest.mark.parametrize("trigger, edge", [("software", 300), ("marker", 40_000)])
def test_the_marker_window_lines_up_with_the_current_in_every_trigger_mode(trigger, edge, marker_channel, monkeypatch):
    """With --daq-trigger marker the analog task keeps the samples around the trigger edge; the
    digital marker must be those same samples, not the first ones after its start."""
    FakeTask.instances = []
    monkeypatch.setattr(FakeWorld, "edge", edge)
    rate = 10_000
    s = MeterSettings(
        kind="nidaqmx", trigger=trigger, marker_channel=marker_channel, sample_rate_hz=rate, pre_roll_s=0.02
    )
    meter = NiDaqMeter(s, daq=fake_nidaqmx())
    meter.start(FakeWorld.width / rate, "case")
    r = analyse(meter.finish(FakeWorld.width / rate), 10, R)
    assert r.window_ms == pytest.approx(FakeWorld.width / rate * 1e3, abs=0.2)
    assert r.power_mw_mean == pytest.approx(power(0.06) * 1e3, rel=1e-3)  # the 60 mA inside the window
    assert all(t.closed for t in FakeTask.instances)


def test_nidaqmx_tasks_are_closed_on_every_path():
    FakeTask.instances = []
    meter = NiDaqMeter(MeterSettings(kind="nidaqmx"), daq=fake_nidaqmx())
    FakeTask.fail_on = "di"  # the driver refuses the marker line: the analog task made before it is released
    try:
        with pytest.raises(RuntimeError, match="DaqError in di"):
            meter.start(0.01, "a")
    finally:
        FakeTask.fail_on = None
    assert [t.closed for t in FakeTask.instances] == [True, True]
    meter.start(0.01, "b")  # the board failed after start: the next capture releases the card first
    meter.start(0.01, "c")
    assert [t.closed for t in FakeTask.instances] == [True, True, True, True, False, False]
    meter.close()
    assert all(t.closed for t in FakeTask.instances)


def test_nidaqmx_analog_marker_and_reference_trigger():
    FakeTask.instances = []
    s = MeterSettings(kind="nidaqmx", marker_channel="ai2", trigger="marker", sample_rate_hz=10_000, pre_roll_s=0.01)
    NiDaqMeter(s, daq=fake_nidaqmx()).start(0.01, "x")
    (ai,) = FakeTask.instances
    assert ("ai", ("Dev1/ai2",), {"terminal_config": "RSE", "min_val": 0.0, "max_val": 5.0}) in ai.calls
    assert ("ref_trig", ("/Dev1/PFI0", 100), {"trigger_edge": "RISING"}) in ai.calls


def test_missing_driver_or_device_says_what_to_do():
    with pytest.raises(EnergyError, match="Install NI-DAQmx.*--energy none"):
        NiDaqMeter(MeterSettings(kind="nidaqmx"), daq=fake_nidaqmx(driver=False))
    with pytest.raises(EnergyError, match=r"DAQ device 'Dev1' not found \(present: Dev2\).*--daq-device"):
        NiDaqMeter(MeterSettings(kind="nidaqmx"), daq=fake_nidaqmx(devices=("Dev2",)))


def test_the_real_nidaqmx_package_without_driver_gives_the_install_hint():
    system = pytest.importorskip("nidaqmx.system")
    try:  # asked of the package itself, before the meter: is there a driver on this machine?
        driver = system.System.local().driver_version
    except Exception:  # DaqNotFoundError: no driver, the case this test is about
        driver = None
    if driver is not None:
        pytest.skip(f"an NI-DAQmx driver ({driver}) is installed on this machine")
    with pytest.raises(EnergyError, match=r"NI-DAQmx driver not usable .*Install NI-DAQmx from ni\.com.*--energy none"):
        NiDaqMeter(MeterSettings(kind="nidaqmx"))


class FakeStreamBuffer:
    """The joulescope package's stream buffer: samples arrive as time goes by (here: per look)."""

    def __init__(self, rate, t_on, t_off, gpi, step=2_000, nan=False, keep=None):
        self.rate, self.t_on, self.t_off, self.gpi = rate, t_on, t_off, gpi
        self.end, self.step, self.nan, self.keep = 0, step, nan, keep

    @property
    def sample_id_range(self):
        self.end += self.step
        start = 0 if self.keep is None else max(0, self.end - self.keep)
        return start, self.end

    def samples_get(self, start, stop, fields):
        first = 0 if self.keep is None else max(0, self.end - self.keep)
        start = max(start, first)
        t = np.arange(start, stop) / self.rate
        window = (t >= self.t_on) & (t < self.t_off)
        current = np.where(window, 0.06, 0.04).astype(np.float32)
        if self.nan:
            current[len(current) // 2] = np.nan
        signals = {
            "current": {"value": current, "units": "A"},
            "voltage": {"value": np.full(len(t), 3.2, np.float32), "units": "V"},
            "current_lsb": {"value": (window if self.gpi == 0 else ~window).astype(np.uint8), "units": ""},
            "voltage_lsb": {"value": (window if self.gpi == 1 else ~window).astype(np.uint8), "units": ""},
        }
        return {
            "time": {"sample_id_range": {"value": [start, stop]}, "sampling_frequency": {"value": self.rate}},
            "signals": {k: v for k, v in signals.items() if k in fields},
        }


class FakeJoulescope:
    """A device of the ``joulescope`` package (v1 API: JS220 and JS110)."""

    def __init__(self, serial="001234", fail_open=False, **buffer):
        self.serial_number, self.fail_open, self.buffer = serial, fail_open, buffer
        self.calls, self.stream_buffer = [], None

    def parameter_set(self, name, value):
        if name == "sampling_frequency" and value not in (50_000, 100_000, 1_000_000):
            raise ValueError(f"invalid sampling frequency {value}")
        self.calls.append((name, value))

    def open(self):
        if self.fail_open:
            raise RuntimeError("device in use")
        rate = dict(self.calls)["sampling_frequency"]
        self.stream_buffer = FakeStreamBuffer(rate, **self.buffer)
        self.calls.append(("open",))

    def start(self, stop_fn=None, duration=None, contiguous_duration=None):
        self.calls.append(("start", duration, contiguous_duration))

    def stop(self):
        self.calls.append(("stop",))

    def close(self):
        self.calls.append(("close",))


def fake_joulescope_module(*devices, scan_error=None):
    def scan(name=None, config=None):
        if scan_error:
            raise scan_error
        assert config == "auto"
        return list(devices)

    return types.SimpleNamespace(scan=scan)


@pytest.mark.parametrize("gpi, field", [(0, "current_lsb"), (1, "voltage_lsb")])
def test_joulescope_capture_through_the_seam(gpi, field):
    # marker window 30..50 ms after the stream started; the capture starts 10 ms in (pre-roll 10 ms)
    dev = FakeJoulescope(t_on=0.03, t_off=0.05, gpi=gpi, step=500)
    s = MeterSettings(kind="joulescope", sample_rate_hz=50_000, pre_roll_s=0.01, post_roll_s=0.01, joulescope_gpi=gpi)
    meter = make_meter(s, joulescope=fake_joulescope_module(dev))
    assert isinstance(meter, JoulescopeMeter)
    meter.start(0.06, "C_1-lite")
    assert dev.calls[:5] == [
        ("sampling_frequency", 50_000),
        ("buffer_duration", 30.0),
        ("io_voltage", "3.3V"),
        (field, f"gpi{gpi}"),
        ("open",),
    ]
    assert dev.calls[5] == ("start", None, None)  # streams until close: pre-roll comes from the buffer
    trace = meter.finish(0.0)
    assert len(trace.v_shunt) == 4000 and trace.sample_rate_hz == 50_000
    assert trace.meta == {
        "source": "measured",
        "shunt_ohms": 9.8,
        "device": "joulescope-001234",
        "v_shunt": "current x shunt_ohms (Joulescope)",
    }
    # the same trace format as NI-DAQmx's: analysis and replay are shared
    r = analyse(trace, 10, s.shunt_ohms)
    assert r.window_ms == pytest.approx(20.0, rel=0.005)
    assert r.power_mw_mean == pytest.approx(0.06 * 3.2 * 1e3, rel=1e-4)
    meter.start(0.01, "C_1-lite-again")  # a second capture reuses the open stream
    assert dev.calls.count(("open",)) == 1
    meter.close()
    assert dev.calls[-2:] == [("stop",), ("close",)]


def test_joulescope_refuses_what_it_cannot_capture():
    with pytest.raises(EnergyError, match="refuses sampling_frequency = 12345.*--sample-rate"):
        dev = FakeJoulescope(t_on=0.01, t_off=0.02, gpi=0)
        JoulescopeMeter(MeterSettings(kind="joulescope", sample_rate_hz=12345), fake_joulescope_module(dev)).start(
            0.01, "x"
        )
    dev = FakeJoulescope(t_on=0.01, t_off=0.02, gpi=0, nan=True)
    meter = JoulescopeMeter(MeterSettings(kind="joulescope"), fake_joulescope_module(dev))
    meter.start(0.01, "x")
    with pytest.raises(EnergyError, match="dropped samples"):
        meter.finish(0.0)
    dev = FakeJoulescope(t_on=0.01, t_off=0.02, gpi=0, keep=2500)  # a buffer shorter than the capture
    meter = JoulescopeMeter(MeterSettings(kind="joulescope"), fake_joulescope_module(dev))
    meter.start(0.05, "x")
    with pytest.raises(EnergyError, match="took longer than its buffer"):
        meter.finish(0.0)
    with pytest.raises(EnergyError, match="does not fit the Joulescope's 30 s stream buffer"):
        meter.start(40.0, "long")
    with pytest.raises(EnergyError, match="Joulescope UI"):
        JoulescopeMeter(
            MeterSettings(kind="joulescope"),
            fake_joulescope_module(FakeJoulescope(fail_open=True, t_on=0, t_off=0, gpi=0)),
        ).start(0.01, "x")
    with pytest.raises(EnergyError, match="IN2 does not exist"):
        JoulescopeMeter(MeterSettings(kind="joulescope", joulescope_gpi=2), fake_joulescope_module())
    with pytest.raises(EnergyError, match="drop --daq-trigger marker"):
        JoulescopeMeter(MeterSettings(kind="joulescope", trigger="marker"), fake_joulescope_module())


def test_joulescope_missing_package_or_device_says_what_to_do(monkeypatch):
    with pytest.raises(EnergyError, match="no Joulescope found: connect the JS220 or JS110.*--energy none"):
        JoulescopeMeter(MeterSettings(kind="joulescope"), fake_joulescope_module())
    a, b = FakeJoulescope("111", t_on=0, t_off=0, gpi=0), FakeJoulescope("222", t_on=0, t_off=0, gpi=0)
    with pytest.raises(EnergyError, match=r"2 Joulescopes found \(111, 222\): choose one by serial number"):
        JoulescopeMeter(MeterSettings(kind="joulescope"), fake_joulescope_module(a, b))
    assert (
        JoulescopeMeter(MeterSettings(kind="joulescope", joulescope_serial="222"), fake_joulescope_module(a, b)).device
        is b
    )
    with pytest.raises(EnergyError, match=r"Joulescope '333' not found \(present: 111, 222\)"):
        JoulescopeMeter(MeterSettings(kind="joulescope", joulescope_serial="333"), fake_joulescope_module(a, b))
    with pytest.raises(EnergyError, match="cannot scan for devices.*udev rules"):
        JoulescopeMeter(MeterSettings(kind="joulescope"), fake_joulescope_module(scan_error=OSError("libusb")))
    monkeypatch.setitem(sys.modules, "joulescope", None)  # as if not installed
    with pytest.raises(EnergyError, match="pip install joulescope"):
        JoulescopeMeter(MeterSettings(kind="joulescope"))


def test_the_real_joulescope_package_without_a_device_says_to_connect_one():
    js = pytest.importorskip("joulescope")
    try:  # asked of the package itself, before the meter: is a Joulescope connected?
        connected = js.scan(config="auto")
    except Exception:  # the driver's own types when USB access fails: the meter must say so
        expected = "the Joulescope driver cannot scan for devices"
    else:
        if connected:
            pytest.skip("a Joulescope is connected to this machine")
        expected = "no Joulescope found: connect the JS220 or JS110"
    with pytest.raises(EnergyError, match=expected):  # plain text: no regex characters in either
        JoulescopeMeter(MeterSettings(kind="joulescope"))


def test_energy_joulescope_on_the_command_line_gives_the_joulescope_meter():
    """``--energy joulescope``, resolved as a run resolves it, makes the meter on the Joulescope found."""
    import argparse

    from tinyhil.plugins.settings.resolve import build_settings
    from tinyhil.plugins.settings.table import OPTIONS

    energy = next(o for o in OPTIONS if o.name == "energy").parse
    values = {o.name: (False if o.is_flag else o.parse(o.default)) for o in OPTIONS}
    values["energy"] = energy(" joulescope ")
    device = FakeJoulescope("111", t_on=0, t_off=0, gpi=0)
    meter = make_meter(build_settings(values).meter, joulescope=fake_joulescope_module(device))
    assert isinstance(meter, JoulescopeMeter) and meter.device is device
    known = ", ".join(ENERGY_KINDS)
    with pytest.raises(argparse.ArgumentTypeError, match=f"unknown value 'joulescop'; known: {known}$"):
        energy("joulescop")


def test_a_device_failure_during_a_capture_releases_the_meter():
    """The DAQ tasks armed for the idle capture are closed when the board times out in between."""
    from tinyhil.plugins.bench.link.device import DeviceTimeout
    from tinyhil.plugins.bench.measure.steps import EnergyMeasurement, HilSettings

    class SilentClient:
        def command(self, *a, **k):
            raise DeviceTimeout("no line from the device within 10 s")

    FakeTask.instances = []
    meter = NiDaqMeter(MeterSettings(kind="nidaqmx"), daq=fake_nidaqmx())
    hil = HilSettings(device_windows=1, inferences=10, warmup=1, retries=0, timeout_s=10.0, seed=0, min_agreement=0.9)
    with pytest.raises(DeviceTimeout):
        EnergyMeasurement(SilentClient(), meter, MeterSettings(kind="nidaqmx"), hil, None).figures(1.0, "case")
    assert FakeTask.instances and all(t.closed for t in FakeTask.instances)
