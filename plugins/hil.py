"""Bench options, the virtual board, and the guard that stops ``-m hil`` when no board is configured.

pytest-embedded owns ``--port``, ``--target``, ``--embedded-services``, ``--app-path``
and ``--build-dir``; tinyhil only fills in defaults it leaves empty (the ``esp,idf``
services, ``firmware/`` and its ``build_esp32_default`` build, ELF sha256 check so the
same firmware is not flashed twice) and never shadows them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from models.boards import get_board
from plugins.energy import EnergyError, MeterSettings, make_meter
from plugins.matrix import add_ini_option, option
from plugins.targets.esp32 import Esp32Target, EsptoolDelivery, FlashFileDelivery, HilSettings, model_partition
from plugins.virtual_board import FAULTS

ROOT = Path(__file__).resolve().parent.parent
NO_BOARD = (
    "tinyhil: {n} bench (hil) cases are selected but no board is configured.\n"
    "  On the bench: build firmware/ once (idf.py build), connect the ESP32 DevKit by USB and pass its serial port:\n"
    "      pytest -m hil --port /dev/ttyUSB0        (see README, 'Bench set-up')\n"
    "  Without hardware: pass --virtual-board to run them against the simulated ESP32 on a pseudo-terminal."
)
_HIL_OPTIONS = [
    # name, type, default, help
    ("device-windows", int, 50, "test windows sent to the board for on-device accuracy and agreement"),
    ("inferences", int, 10, "N timed inferences per case (the paper's 10)"),
    ("warmup", int, 1, "W warm-up inferences before the timed ones"),
    ("hil-retries", int, 1, "extra attempts after a reboot, serial drop or time-out"),
    ("device-timeout", float, 10.0, "seconds allowed for one line from the board"),
]


_ENERGY_OPTIONS = [
    # name, help, ini default
    ("energy", "energy meter: none, nidaqmx (bench), replay (recorded traces), simulated (virtual board)", "none"),
    ("daq-device", "NI-DAQmx device name, as NI MAX shows it", "Dev1"),
    ("daq-shunt-channel", "differential analog input across the shunt", "ai0"),
    ("daq-supply-channel", "differential analog input across the DUT supply (3V3 to GND)", "ai1"),
    ("daq-marker-channel", "marker input: a digital line (port0/line0) or an analog input (ai2)", "port0/line0"),
    ("daq-trigger", "software (start with pre-roll) or marker (reference trigger on --daq-trigger-source)", "software"),
    ("daq-trigger-source", "terminal the marker GPIO is also wired to, for --daq-trigger marker", "/Dev1/PFI0"),
    ("shunt-ohms", "shunt resistance in ohms", "9.8"),
    ("supply-volts", "supply voltage in volts (the simulated meter uses it)", "3.3"),
    ("sample-rate", "samples per second per channel", "100000"),
    ("pre-roll-ms", "capture time before the marker window", "20"),
    ("idle-ms", "idle capture for the baseline (0: use the samples around the window)", "200"),
    ("timing-rule", "paper (N consecutive inferences) or mlperf (>= 10 s windows, median of 5)", "paper"),
    ("energy-tolerance", "allowed relative gap between the marker window and the cycle-count latency", "0.10"),
    ("replay-dir", "folder of traces for --energy replay", ""),
]


def meter_settings(config: pytest.Config) -> MeterSettings:
    """Reads and checks the energy options.

    Raises:
        pytest.UsageError: naming the option and what it accepts.
    """

    def number(name: str, cast=float):
        raw = option(config, name)
        try:
            value = cast(raw)
        except ValueError:
            raise pytest.UsageError(f"--{name} must be a number, got {raw!r}") from None
        if value < 0 or (value == 0 and name not in ("idle-ms", "pre-roll-ms")):
            raise pytest.UsageError(f"--{name} must be positive, got {raw!r}")
        return value

    kind = option(config, "energy")
    if kind not in ("none", "nidaqmx", "replay", "simulated"):
        raise pytest.UsageError(f"unknown --energy {kind!r}; known: none, nidaqmx, replay, simulated")
    virtual = config.getoption("virtual_board")
    if kind == "simulated" and not virtual:
        raise pytest.UsageError(
            "--energy simulated only goes with --virtual-board: a real board needs --energy nidaqmx"
        )
    if kind == "nidaqmx" and virtual:
        raise pytest.UsageError(
            "--energy nidaqmx measures a real board: drop --virtual-board, or use --energy simulated"
        )
    if kind == "replay" and not option(config, "replay-dir"):
        raise pytest.UsageError("--energy replay needs --replay-dir=FOLDER (traces written by --save-traces)")
    rule, trigger = option(config, "timing-rule"), option(config, "daq-trigger")
    if rule not in ("paper", "mlperf"):
        raise pytest.UsageError(f"unknown --timing-rule {rule!r}; known: paper, mlperf")
    if trigger not in ("software", "marker"):
        raise pytest.UsageError(f"unknown --daq-trigger {trigger!r}; known: software, marker")
    pre_roll = number("pre-roll-ms") / 1000
    return MeterSettings(
        kind=kind,
        shunt_ohms=number("shunt-ohms"),
        supply_volts=number("supply-volts"),
        sample_rate_hz=number("sample-rate"),
        device=option(config, "daq-device"),
        shunt_channel=option(config, "daq-shunt-channel"),
        supply_channel=option(config, "daq-supply-channel"),
        marker_channel=option(config, "daq-marker-channel"),
        trigger=trigger,
        trigger_source=option(config, "daq-trigger-source"),
        pre_roll_s=pre_roll,
        post_roll_s=pre_roll,
        replay_dir=option(config, "replay-dir"),
        timing_rule=rule,
        tolerance=number("energy-tolerance"),
        idle_ms=int(number("idle-ms")),
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tinyhil")
    group.addoption(
        "--virtual-board",
        action="store_true",
        default=False,
        help="run hil cases against the virtual ESP32 on a pseudo-terminal; its figures are simulated (Default: off)",
    )
    group.addoption(
        "--virtual-fault",
        choices=FAULTS,
        default="none",
        help="make the virtual board fail this way, to test the failure path (Default: none)",
    )
    for name, typ, default, text in _HIL_OPTIONS:
        group.addoption(f"--{name}", type=typ, default=default, help=f"{text} (Default: {default})")
    for name, text, default in _ENERGY_OPTIONS:
        add_ini_option(parser, name, text, default)
    group.addoption(
        "--save-traces",
        action="store_true",
        default=False,
        help="write every case's raw energy trace to <report-dir>/traces (Default: off)",
    )


def board_configured(config: pytest.Config) -> bool:
    return bool(config.getoption("virtual_board") or config.getoption("port", default=None))


VB_KEY = pytest.StashKey["VirtualBoardProcess | None"]()


def _runs_tests(config: pytest.Config) -> bool:
    """False on the xdist controller, which only distributes tests."""
    return hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None)


METER_KEY = pytest.StashKey[MeterSettings]()


def pytest_configure(config: pytest.Config) -> None:
    opt = config.option
    config.stash[VB_KEY] = None
    config.stash[METER_KEY] = meter_settings(config)
    if config.getoption("virtual_board"):
        if not getattr(opt, "embedded_services", ""):
            opt.embedded_services = "serial"
        if _runs_tests(config):
            # pytest-embedded resolves --port in an autouse fixture: the pty must exist first
            import tempfile

            workdir = Path(tempfile.mkdtemp(prefix="tinyhil-virtual-board-"))
            vb = start_virtual_board(option(config, "board"), workdir, config.getoption("virtual_fault"))
            config.stash[VB_KEY] = vb
            opt.port = vb.port
    elif getattr(opt, "port", None):
        if not getattr(opt, "embedded_services", ""):
            opt.embedded_services = "esp,idf"
        if not getattr(opt, "app_path", None):
            opt.app_path = str(ROOT / "firmware")
        if not getattr(opt, "build_dir", None):
            opt.build_dir = "build_esp32_default"
        if getattr(opt, "confirm_target_elf_sha256", None) is None:
            opt.confirm_target_elf_sha256 = "y"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    hil = [item for item in items if item.get_closest_marker("hil")]
    if hil and not board_configured(config):
        pytest.exit(NO_BOARD.format(n=len(hil)), returncode=pytest.ExitCode.USAGE_ERROR)


@dataclass
class VirtualBoardProcess:
    """A running ``python -m plugins.virtual_board``."""

    proc: subprocess.Popen
    port: str
    flash_file: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


def start_virtual_board(board: str, workdir: Path, fault: str = "none") -> VirtualBoardProcess:
    """Starts the virtual board and returns its pty path.

    Raises:
        RuntimeError: with the process's stderr when it does not come up.
    """
    flash = workdir / "model-partition.bin"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "plugins.virtual_board", "--board", board, "--flash-file", str(flash), "--fault", fault],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    port = proc.stdout.readline().strip()
    if not port.startswith("/dev/"):
        proc.kill()
        raise RuntimeError(f"the virtual board did not start: {proc.stderr.read()[-2000:]}")
    return VirtualBoardProcess(proc, port, flash)


def pytest_unconfigure(config: pytest.Config) -> None:
    vb = config.stash.get(VB_KEY, None)
    if vb is not None:
        vb.stop()


@pytest.fixture(scope="session")
def virtual_board(pytestconfig: pytest.Config) -> VirtualBoardProcess:
    """The virtual ESP32 of this process (started at configure time)."""
    return pytestconfig.stash[VB_KEY]


def hil_settings(config: pytest.Config) -> HilSettings:
    return HilSettings(
        device_windows=config.getoption("device_windows"),
        inferences=config.getoption("inferences"),
        warmup=config.getoption("warmup"),
        retries=config.getoption("hil_retries"),
        timeout_s=config.getoption("device_timeout"),
        seed=int(option(config, "seed")),
    )


@pytest.fixture
def hil_target(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Esp32Target:
    """The bench target of this case: the ESP32 on ``--port`` or the virtual board."""
    from plugins.device import DeviceClient, DutLink

    settings = hil_settings(pytestconfig)
    energy = {"meter": request.getfixturevalue("energy_meter"), "meter_settings": pytestconfig.stash[METER_KEY]}
    if pytestconfig.getoption("save_traces"):
        energy["trace_dir"] = Path(option(pytestconfig, "report-dir")) / "traces"
    if pytestconfig.getoption("virtual_board"):
        vb = request.getfixturevalue("virtual_board")
        dut = request.getfixturevalue("dut")
        client = DeviceClient(DutLink(dut, vb.port), settings.timeout_s)
        return Esp32Target(client, FlashFileDelivery(vb.flash_file), settings, simulated=True, **energy)
    dut = request.getfixturevalue("dut")
    offset, size = model_partition()
    client = DeviceClient(DutLink(dut, pytestconfig.getoption("port")), settings.timeout_s)
    return Esp32Target(
        client, EsptoolDelivery(dut.serial, offset, size), settings, simulated=False, boot_timeout_s=15.0, **energy
    )


@pytest.fixture(scope="session")
def energy_meter(pytestconfig: pytest.Config):
    """The meter --energy names (None for none); a missing driver or device stops the run with the fix."""
    ms = pytestconfig.stash[METER_KEY]
    seed = int(option(pytestconfig, "seed"))
    try:
        return make_meter(ms, get_board(option(pytestconfig, "board")).simulation, seed=seed)
    except EnergyError as e:
        pytest.exit(f"tinyhil: {e}", returncode=pytest.ExitCode.USAGE_ERROR)
