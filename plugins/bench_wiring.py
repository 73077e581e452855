"""Bench hooks and fixtures: pytest-embedded's defaults, the virtual board's lifetime, the meter.

pytest-embedded owns ``--port``, ``--target``, ``--embedded-services``, ``--app-path``
and ``--build-dir``; tinyhil splits a ``--port`` list among xdist workers (one board each)
and only fills in defaults it leaves empty (the ``esp,idf``
services, ``firmware/`` and its ``build_esp32_default`` build, ELF sha256 check so the
same firmware is not flashed twice) and never shadows them. The bench options
themselves are declared in :mod:`tinyhil.plugins.options`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tinyhil import resources
from tinyhil.plugins.bench.boards.labgrid import LabgridError, acquire
from tinyhil.plugins.bench.boards.virtual_process import (
    VirtualBoardProcess,
    start_firmware_board,
    start_virtual_board,
)
from tinyhil.plugins.bench.link.ports import PortError, check_ports
from tinyhil.plugins.bench.measure.energy.factory import make_meter
from tinyhil.plugins.bench.measure.energy.meter import Meter
from tinyhil.plugins.bench.measure.energy.trace import EnergyError
from tinyhil.plugins.firmware_tools.config import console_baud
from tinyhil.plugins.firmware_tools.host_build import BuildError, build, cached_build_dir, resolve_bits
from tinyhil.plugins.options import settings_of

NO_BOARD = (
    "tinyhil: {n} bench (hil) cases are selected but no board is configured.\n"
    "  On the bench: build firmware/ once (idf.py build), connect the ESP32 DevKit by USB and pass its serial port:\n"
    "      pytest -m hil --port /dev/ttyUSB0        (see README, 'Your first bench run')\n"
    "  Without hardware: pass --virtual-board to run them against the simulated ESP32 on a pseudo-terminal."
)
VB_KEY = pytest.StashKey["VirtualBoardProcess | None"]()  # the current case's virtual board
VB_START_KEY = pytest.StashKey["Callable[[], VirtualBoardProcess]"]()  # starts the current board's
# With several boards (--board a,b): each board's virtual board, started when a case first needs it
VBS_KEY = pytest.StashKey["dict[str, VirtualBoardProcess]"]()
FW_BINARY_KEY = pytest.StashKey["Path | None"]()  # the firmware host build, with --tflm-source
BUILD_PER_CHIP_KEY = pytest.StashKey[bool]()  # --build-dir not given: each chip's build_<chip>_default


def _runs_tests(config: pytest.Config) -> bool:
    """False on the xdist controller, which only distributes tests."""
    return hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None)


def _start_board(settings, binary: Path | None, board=None) -> VirtualBoardProcess:
    """A virtual board of this process for ``board`` (the run's first by default): the firmware's
    host build when ``binary`` is given, else the Python board."""
    o, board = settings.options, board or settings.board
    if binary is not None:
        return start_firmware_board(binary, board, baud=o.virtual_baud)
    return start_virtual_board(board.source, fault=o.virtual_fault, baud=o.virtual_baud)


def restart_board(config: pytest.Config) -> VirtualBoardProcess:
    """Replaces this process's virtual board after it died: the old process is ended and its
    folder removed, a new one comes up on a new pty, and ``--port`` names it, so the next
    case's DUT opens it (pytest-embedded reads the option per case)."""
    old = config.stash.get(VB_KEY, None)
    if old is not None:
        old.stop()
    config.stash[VB_KEY] = None
    vb = config.stash[VB_START_KEY]()
    config.stash[VB_KEY] = vb
    boards = config.stash.get(VBS_KEY, {})
    for name, running in list(boards.items()):
        if running is old:
            boards[name] = vb
    config.option.port = vb.port
    return vb


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """With several boards on virtual boards: before a case's fixtures (pytest-embedded reads
    ``--port`` per case), its board's virtual board becomes this process's, started on first use."""
    config = item.config
    settings = settings_of(config)
    case = getattr(item, "callspec", None) and item.callspec.params.get("case")
    if case is None or not settings.board_axis or case.marker != "hil":
        return
    if settings.board_ports:  # a bench of several boards: the case's board, its port and its chip's build
        board = settings.board_named(case.board)
        config.option.port = settings.port_of_board(board.name)
        if config.stash.get(BUILD_PER_CHIP_KEY, False):
            config.option.build_dir = f"build_{board.chip}_default"
        return
    if not settings.virtual_board:
        return
    if not _runs_tests(config):
        return
    board = settings.board_named(case.board)
    boards = config.stash.setdefault(VBS_KEY, {})
    binary = config.stash.get(FW_BINARY_KEY, None)
    config.stash[VB_START_KEY] = lambda: _start_board(settings, binary, board)
    if board.name not in boards:
        boards[board.name] = config.stash[VB_START_KEY]()
    config.stash[VB_KEY] = boards[board.name]
    config.option.port = boards[board.name].port


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """A bench of several boards (``--port NAME=PORT,…``) under ``-n``: xdist's ``loadgroup``, so
    that one worker drives each board (the cases carry their board as ``xdist_group``) and no two
    workers share a serial port. Set here, before xdist hands its workers their options."""
    opt = config.option
    if "=" in str(getattr(opt, "port", "") or "") and getattr(opt, "numprocesses", None):
        if getattr(opt, "dist", "no") in ("no", "load"):
            opt.dist = "loadgroup"


def pytest_configure(config: pytest.Config) -> None:
    settings, opt = settings_of(config), config.option
    config.stash[VB_KEY] = None
    config.stash[PLACE_KEY] = None
    if settings.virtual_board:
        if not getattr(opt, "embedded_services", ""):
            opt.embedded_services = "serial"
        binary = firmware_host_build(config) if settings.firmware_host else None
        config.stash[FW_BINARY_KEY] = binary
        if _runs_tests(config):
            # pytest-embedded resolves --port in an autouse fixture: the pty must exist first
            config.stash[VB_START_KEY] = lambda: _start_board(settings, binary)
            config.stash[VB_KEY] = vb = config.stash[VB_START_KEY]()
            config.stash[VBS_KEY] = {settings.board.name: vb}
            opt.port = vb.port
    elif settings.port or settings.places:
        if settings.places:
            opt.port = labgrid_port(config, settings)
        elif settings.board_ports:  # each case opens its board's port (pytest_runtest_setup)
            opt.port = settings.board_ports[0][1]
            if hasattr(config, "workerinput"):  # xdist builds a worker's options from the command line
                opt.loadgroup = True  # its cases report their xdist_group, as --dist loadgroup does
        else:
            opt.port = port_of_this_process(config, settings.ports)
        if not getattr(opt, "embedded_services", ""):
            opt.embedded_services = "esp,idf"
        if not getattr(opt, "app_path", None):
            opt.app_path = str(resources.firmware())
        config.stash[BUILD_PER_CHIP_KEY] = not getattr(opt, "build_dir", None)
        if config.stash[BUILD_PER_CHIP_KEY]:  # idf.py -B build_<target>_default, as firmware.md builds it
            opt.build_dir = f"build_{settings.board.chip}_default"
        if getattr(opt, "confirm_target_elf_sha256", None) is None:
            opt.confirm_target_elf_sha256 = "y"
        if not getattr(opt, "baud", None):  # the console's rate, as the flashed build was configured
            opt.baud = str(console_baud(Path(opt.app_path) / opt.build_dir))


PLACE_KEY = pytest.StashKey["Place | None"]()
BENCH_CHECKED_KEY = pytest.StashKey[bool]()


def labgrid_port(config: pytest.Config, settings) -> str:
    """This process's board from labgrid: xdist worker ``gwN`` acquires place ``N`` for the whole
    session (released when it ends, also after Ctrl-C); the controller only checks ``-n``."""
    name = port_of_this_process(config, settings.places, "--labgrid-places")  # the same split as --port a,b
    if not hasattr(config, "workerinput") and getattr(config.option, "numprocesses", None):
        return ""  # the controller runs no case: the workers acquire
    coordinator = settings.options.labgrid_coordinator or os.environ.get("LG_COORDINATOR", "") or "127.0.0.1:20408"
    try:
        place = acquire(name, coordinator)
    except LabgridError as e:
        raise pytest.UsageError(f"tinyhil: {e}") from None
    config.stash[PLACE_KEY] = place
    return place.url


def firmware_host_build(config: pytest.Config) -> Path:
    """The firmware host build for ``--tflm-source``: compiled (what changed) by the process that
    starts the run, and found by the xdist workers, which start after it. Stops the run with the
    compiler's words when it fails."""
    o = settings_of(config).options
    tflm, esp_nn = o.tflm_source.resolve(), o.esp_nn_source.resolve() if o.esp_nn_source else None
    try:
        bits = resolve_bits(o.host_build_bits)
        out = cached_build_dir(tflm, esp_nn, bits)
        if hasattr(config, "workerinput"):
            return out / "tinyhil-firmware"
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        log = reporter.write_line if reporter is not None else print
        return build(tflm, esp_nn, bits, out, jobs=os.cpu_count() or 1, log=log)
    except BuildError as e:
        raise pytest.UsageError(f"tinyhil: --tflm-source: {e}") from None


def port_of_this_process(config: pytest.Config, ports: tuple[str, ...], option: str = "--port") -> str:
    """With one port, that port. With several (``--port a,b -n 2``), xdist worker ``gwN``
    drives board ``N`` (modulo the count, so a worker xdist restarts after a crash takes its
    predecessor's board); the controller keeps the list and checks that ``-n`` matches it.
    """
    workers = getattr(config.option, "numprocesses", None)
    if len(ports) == 1:
        if workers and workers > 1 and not hasattr(config, "workerinput"):
            raise pytest.UsageError(
                f"-n {workers} with one board ({ports[0]}): xdist workers cannot share a serial port. Run without -n, "
                f"or give one port per worker: --port {ports[0]},/dev/ttyUSB1 -n 2"
            )
        return ports[0]
    if hasattr(config, "workerinput"):
        return ports[int(config.workerinput["workerid"].removeprefix("gw")) % len(ports)]
    if workers != len(ports):
        raise pytest.UsageError(
            f"{option} lists {len(ports)} boards ({', '.join(ports)}): run one xdist worker per board, "
            f"-n {len(ports)}" + (f" (got -n {workers})" if workers else "")
        )
    return ",".join(ports)


NOT_BUILT = (
    "tinyhil: {n} bench (hil) cases are selected but the firmware is not built: {flasher} is missing.\n"
    "  Build it once with ESP-IDF (README, 'Your first bench run'):\n"
    "      cd {app} && idf.py -B {build} set-target {chip} && idf.py -B {build} build\n"
    "  (an installed tinyhil writes the project into a folder of yours: python -m tinyhil firmware DIR,\n"
    "  then pass --app-path=DIR), or point --app-path/--build-dir at a build of it."
)


def missing_firmware_build(config: pytest.Config) -> Path | None:
    """The ``flasher_args.json`` pytest-embedded-idf needs to flash the board, when it is
    missing and the idf service will look for it (else every case errors at setup with
    "Idf app not parsable")."""
    opt = config.option
    if "idf" not in str(getattr(opt, "embedded_services", "") or ""):
        return None
    app = Path(getattr(opt, "app_path", None) or resources.firmware())
    builds = [getattr(opt, "build_dir", None) or "build"]
    settings = settings_of(config)
    if settings.board_ports and config.stash.get(BUILD_PER_CHIP_KEY, False):  # one build per chip of the bench
        builds = [f"build_{b.chip}_default" for b in settings.all_boards]
    for folder in builds:
        flasher = app / folder / "flasher_args.json"
        if not flasher.is_file():
            return flasher
    return None


def stop_unless_bench_ready(config: pytest.Config, hil_cases: int) -> None:
    """The bench's start-up checks, when bench cases are selected: a board is configured, its
    firmware is built, its serial ports open (missing, busy, denied:
    :mod:`tinyhil.plugins.bench.link.ports`; the virtual board's pty is tinyhil's own, and labgrid's
    URLs are remote). The first that fails stops the run with its fix, instead of an error in
    every case (or pyserial's traceback in the first)."""
    if not hil_cases:
        return
    if not settings_of(config).board_configured:
        pytest.exit(NO_BOARD.format(n=hil_cases), returncode=pytest.ExitCode.USAGE_ERROR)
    flasher = missing_firmware_build(config)
    if flasher is not None:
        pytest.exit(
            NOT_BUILT.format(
                n=hil_cases,
                flasher=flasher,
                app=flasher.parent.parent,
                build=flasher.parent.name,
                chip=flasher.parent.name.removeprefix("build_").removesuffix("_default"),
            ),
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    if settings_of(config).virtual_board:
        return
    try:
        ports = [p for _, p in settings_of(config).board_ports] or [getattr(config.option, "port", None)]
        for port in ports:
            check_ports(port)
    except PortError as e:
        pytest.exit(str(e), returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(tryfirst=True)  # before tinyhil.plugins.matrix trains the networks
def pytest_collection_finish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # the xdist controller checks, once (a worker stopping alone breaks xdist)
    stop_unless_bench_ready(session.config, sum(1 for item in session.items if item.get_closest_marker("hil")))


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # before tinyhil.plugins.matrix trains
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    """The xdist controller, on the first worker's collection (after -m and -k): the start-up
    checks, for every board of ``--port a,b``."""
    config = node.config
    if config.stash.get(BENCH_CHECKED_KEY, False):
        return
    config.stash[BENCH_CHECKED_KEY] = True
    from tinyhil.plugins.targets import matrix

    hil_ids = {c.id for c in matrix(settings_of(config)) if c.marker == "hil"}
    stop_unless_bench_ready(config, sum(1 for i in ids if i.endswith("]") and i[i.rfind("[") + 1 : -1] in hil_ids))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Gives the labgrid place back when the session ends, also after Ctrl-C (an xdist worker may
    not get as far as pytest_unconfigure)."""
    place = session.config.stash.get(PLACE_KEY, None)
    if place is not None:
        place.release()


def pytest_unconfigure(config: pytest.Config) -> None:
    running = {id(vb): vb for vb in config.stash.get(VBS_KEY, {}).values()}
    vb = config.stash.get(VB_KEY, None)
    if vb is not None:
        running[id(vb)] = vb
    for vb in running.values():
        vb.stop()
    place = config.stash.get(PLACE_KEY, None)
    if place is not None:
        place.release()


def primed_port_app_cache(config: pytest.Config) -> dict[str, str]:
    """pytest-embedded-idf compares the board's ELF sha256 with the build's
    (``--confirm-target-elf-sha256``) only when its session cache already pairs the port with
    the app, and that cache starts empty: the first case of every session flashed the firmware
    even when the board already ran it. Paired from the start, a board that runs the same ELF
    is not flashed and one that runs another is."""
    opt = config.option
    confirm = str(getattr(opt, "confirm_target_elf_sha256", "") or "").lower()
    services = str(getattr(opt, "embedded_services", "") or "")
    if settings_of(config).virtual_board or "idf" not in services or confirm not in ("y", "yes", "true", "1"):
        return {}
    from pytest_embedded.app import App

    binary = App(app_path=opt.app_path, build_dir=opt.build_dir).binary_path
    return {opt.port: binary} if binary else {}


@pytest.fixture(scope="session")
def port_app_cache(pytestconfig: pytest.Config) -> dict[str, str]:
    """pytest-embedded's port-to-app cache (its fixture of this name), primed by :func:`primed_port_app_cache`."""
    return primed_port_app_cache(pytestconfig)


@pytest.fixture
def virtual_board_process(pytestconfig: pytest.Config) -> VirtualBoardProcess:
    """The virtual ESP32 of this process (started at configure time; per case, since a board
    that died is replaced by :func:`restart_board`)."""
    return pytestconfig.stash[VB_KEY]


@pytest.fixture(scope="session")
def restart_virtual_board(pytestconfig: pytest.Config) -> Callable[[], VirtualBoardProcess]:
    """Restarts this process's virtual board (after it died mid-case) and returns the new one."""
    return lambda: restart_board(pytestconfig)


@pytest.fixture(scope="session")
def energy_meters() -> dict[str, Meter | None]:
    """The meter of each board of the run, made when a case of that board first needs it."""
    return {}


@pytest.fixture
def energy_meter(pytestconfig: pytest.Config, energy_meters: dict, case_board) -> Meter | None:
    """The meter --energy names for the case's board (None for none; a simulated meter takes the
    board's currents); a missing driver or device stops the run with the fix."""
    s = settings_of(pytestconfig)
    if case_board.name not in energy_meters:
        try:
            energy_meters[case_board.name] = make_meter(s.meter, case_board.simulation, seed=s.study.seed)
        except EnergyError as e:
            pytest.exit(f"tinyhil: {e}", returncode=pytest.ExitCode.USAGE_ERROR)
    return energy_meters[case_board.name]
