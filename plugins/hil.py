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

from plugins.matrix import option
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


def board_configured(config: pytest.Config) -> bool:
    return bool(config.getoption("virtual_board") or config.getoption("port", default=None))


VB_KEY = pytest.StashKey["VirtualBoardProcess | None"]()


def _runs_tests(config: pytest.Config) -> bool:
    """False on the xdist controller, which only distributes tests."""
    return hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None)


def pytest_configure(config: pytest.Config) -> None:
    opt = config.option
    config.stash[VB_KEY] = None
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
    if pytestconfig.getoption("virtual_board"):
        vb = request.getfixturevalue("virtual_board")
        dut = request.getfixturevalue("dut")
        client = DeviceClient(DutLink(dut, vb.port), settings.timeout_s)
        return Esp32Target(client, FlashFileDelivery(vb.flash_file), settings, simulated=True)
    dut = request.getfixturevalue("dut")
    offset, size = model_partition()
    client = DeviceClient(DutLink(dut, pytestconfig.getoption("port")), settings.timeout_s)
    return Esp32Target(
        client, EsptoolDelivery(dut.serial, offset, size), settings, simulated=False, boot_timeout_s=15.0
    )
