"""The firmware's own code as a virtual board (firmware/host), and its check against ESP-IDF.

The tests that build or check the firmware need source folders no package registry has:
set ``TINYHIL_TFLM_SOURCE`` to an esp-tflite-micro folder (and ``TINYHIL_ESP_NN_SOURCE`` to
an esp-nn folder, ``IDF_PATH`` to ESP-IDF) to run them; without them they skip and say so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.subrun import ROOT, read_csv, run
from tinyhil.plugins.firmware_tools.config import kconfig_defaults
from tinyhil.plugins.firmware_tools.host_build import BuildError, check_folders

TFLM = Path(os.environ["TINYHIL_TFLM_SOURCE"]) if os.environ.get("TINYHIL_TFLM_SOURCE") else None
ESP_NN = Path(os.environ["TINYHIL_ESP_NN_SOURCE"]) if os.environ.get("TINYHIL_ESP_NN_SOURCE") else None
IDF = Path(os.environ["IDF_PATH"]) if os.environ.get("IDF_PATH") else None
needs_tflm = pytest.mark.skipif(
    TFLM is None,
    reason="set TINYHIL_TFLM_SOURCE to an esp-tflite-micro source folder to build the firmware for Linux "
    "(no package registry carries TFLM's sources)",
)


def _values(**overrides):
    from tinyhil.plugins.settings.table import OPTIONS as TABLE

    values = {opt.name: (False if opt.is_flag else opt.parse(opt.default)) for opt in TABLE}
    values.update(overrides)
    return values


def test_the_kernel_library_is_the_builds_and_the_verdicts_follow_it(tmp_path):
    """ESP-NN is what esp-tflite-micro builds on every Espressif chip; the firmware host build
    without --esp-nn-source runs TFLM's reference kernels, which compute int16x8 fully-connected
    layers right. The host verdict, the expectations folder and the bench's check follow the
    build's library (on the reference build a C_3 int16x8 case failed "verdict changed:
    expected unsupported_op" before)."""
    from tinyhil.models.boards import get_board
    from tinyhil.models.inspection import OpInfo
    from tinyhil.plugins.firmware_tools.host_build import TFLM_CORE
    from tinyhil.plugins.firmware_tools.ops import wrong_kernel
    from tinyhil.plugins.settings.resolve import build_settings
    from tinyhil.plugins.targets.esp32 import kernel_mismatch

    fc = OpInfo("FULLY_CONNECTED", "int16", "int8", 100, per_channel=True)
    assert wrong_kernel([fc], "esp-nn") and wrong_kernel([fc], "reference") is None
    board = get_board("esp32-wroom-32")
    assert (board.kernels, board.expectations_name) == ("esp-nn", "esp32-wroom-32")
    tflm = TFLM or tmp_path  # the layout check reads these files only
    for rel in ("tensorflow/lite/micro/micro_interpreter.cc", *TFLM_CORE):
        if not (tflm / rel).exists():
            (tflm / rel).parent.mkdir(parents=True, exist_ok=True)
            (tflm / rel).write_text("")
    reference = build_settings(_values(**{"tflm-source": str(tflm)})).board
    assert (reference.kernels, reference.expectations_name) == ("reference", "esp32-wroom-32+reference-kernels")
    assert kernel_mismatch("esp-nn", board) is None and kernel_mismatch(None, reference) is None
    wrong = kernel_mismatch("esp-nn", reference)
    assert wrong.status == "device_error" and "--tflm-source without --esp-nn-source" in wrong.reason


def test_the_shipped_expectations_differ_between_kernel_libraries_only_where_esp_nn_is_refused():
    """The reference-kernel expectations (written by ``pytest -m offline --techniques=all
    --tflm-source=DIR --update-expectations``) are the ESP-NN ones but for the cases the
    firmware refuses under ESP-NN alone."""
    from tinyhil import resources
    from tinyhil.plugins.firmware_tools.ops import ESP_NN_INT16_FC
    from tinyhil.plugins.report.expectations import read_cases

    root = resources.expectations_dir()
    for esp_nn in sorted(p for p in root.glob("*/tflm-*.json") if "+" not in p.parent.name):
        reference = root / f"{esp_nn.parent.name}+reference-kernels" / esp_nn.name
        if not reference.exists():
            continue
        a, b = read_cases(esp_nn), read_cases(reference)
        assert a.keys() == b.keys()
        differ = {k for k in a if a[k] != b[k]}
        assert differ == {k for k in a if ESP_NN_INT16_FC in a[k].reason}, sorted(differ)
        # judged as any other case there: ok, or the memory verdict (C_8 int16x8 copied to RAM)
        assert differ and all(ESP_NN_INT16_FC not in b[k].reason for k in differ)


@pytest.mark.parametrize(
    "overrides, port, message",
    [
        ({"esp-nn-source": "/tmp"}, None, "--esp-nn-source goes with --tflm-source"),
        (
            {"tflm-source": "/tmp"},
            None,
            "no tensorflow/lite/micro/micro_interpreter.cc there. Point it at an esp-tflite",
        ),
        ({"tflm-source": "/tmp"}, "/dev/ttyUSB0", "drop --port /dev/ttyUSB0 or --tflm-source"),
    ],
)
def test_host_build_options_are_checked_at_start_up(overrides, port, message):
    from tinyhil.plugins.settings.resolve import SettingsError, build_settings

    with pytest.raises(SettingsError, match=message.replace(".", r"\.")):
        build_settings(_values(**overrides), port=port)


def test_a_folder_that_is_not_esp_nn_is_named(tmp_path):
    tflm = tmp_path / "tflm"
    from tinyhil.plugins.firmware_tools.host_build import TFLM_CORE

    for rel in TFLM_CORE:
        (tflm / rel).parent.mkdir(parents=True, exist_ok=True)
        (tflm / rel).write_text("")
    check_folders(tflm, None)  # the layout is all it looks at
    with pytest.raises(BuildError, match="--esp-nn .*no include/esp_nn.h there"):
        check_folders(tflm, tmp_path)
    (tflm / TFLM_CORE[3]).unlink()
    with pytest.raises(BuildError, match=f"missing {TFLM_CORE[3]}"):
        check_folders(tflm, None)


def test_the_host_builds_config_is_what_kconfgen_makes_of_the_firmwares_kconfig(tmp_path):
    """The host build's sdkconfig.h against ESP-IDF's own kconfgen on the same Kconfig and defaults."""
    pytest.importorskip("kconfgen", reason="esp-idf-kconfig (requirements.txt) is not installed")
    root = tmp_path / "Kconfig"
    root.write_text(
        f'mainmenu "tinyhil"\nconfig IDF_TARGET\n    string\n    default "esp32"\nsource "{ROOT}/firmware/main/Kconfig.projbuild"\n'
    )
    defaults = tmp_path / "defaults"
    tinyhil = [
        line for line in (ROOT / "firmware" / "sdkconfig.defaults").read_text().splitlines() if "TINYHIL" in line
    ]
    defaults.write_text("\n".join(tinyhil) + "\n")
    out = tmp_path / "sdkconfig.json"
    subprocess.run(
        [sys.executable, "-m", "kconfgen", "--kconfig", str(root), "--defaults", str(defaults)]
        + ["--output", "json", str(out)],
        check=True,
        capture_output=True,
    )
    import json

    theirs = json.loads(out.read_text())
    ours = kconfig_defaults()
    for name, value in theirs.items():
        if name.startswith("TINYHIL_"):
            want = "y" if value is True else "n" if value is False else str(value)
            assert ours[name] == want, (name, ours[name], want)
    assert ours["TINYHIL_MARKER_GPIO"] == "4" and ours["TINYHIL_MARKER_WINDOW"] == "y"


@needs_tflm
def test_the_firmwares_own_code_runs_the_hil_cases(project):
    """--tflm-source: the firmware built for Linux answers the hil cases through pytest-embedded."""
    res = run(
        project,
        "-m",
        "hil",
        f"--tflm-source={TFLM}",
        *([f"--esp-nn-source={ESP_NN}"] if ESP_NN else []),
        "--networks=C_1",
        "--techniques=lite,dynamic,full_int,int16x8",
        "--device-windows=20",
    )
    # the project's expectations are empty (every case expected ok): the dynamic case fails as a
    # change, and with ESP-NN the int16x8 one too
    res.assert_outcomes(passed=2 if ESP_NN else 3, failed=2 if ESP_NN else 1)
    rows = {r["technique"]: r for r in read_csv(project)}
    assert {r["target"] for r in rows.values()} == {"firmware-host"}
    for tech in ("lite", "full_int"):
        row = rows[tech]
        assert row["status"] == "ok" and float(row["device_agreement"]) == 1.0, row
        # the arena the firmware found by bisection; TFLM's arena_used_bytes() is at most that
        assert row["arena_source"] == "firmware-host-build"
        assert 0 < int(row["arena_device_bytes"]) <= int(row["arena_bytes"]), row
        assert row["arena_pointer_bits"] in ("32", "64") and row["latency_source"] == "simulated"
        assert row["esp_tflite_micro"].startswith("esp-tflite-micro ")
    # TFLM has no hybrid kernels: the firmware refuses the dynamic-range model at prepare, in TFLM's words
    int16 = rows["int16x8"]
    if ESP_NN:  # the firmware refuses ESP-NN's int16 fully-connected kernel rather than give wrong answers
        assert int16["status"] == "unsupported_op" and "per-channel" in int16["reason"], int16
    else:  # TFLM's reference kernels run int16x8 fully-connected layers right
        assert int16["status"] == "ok" and float(int16["device_agreement"]) == 1.0, int16
    assert rows["dynamic"]["status"] == "unsupported_op"
    assert "AllocateTensors failed" in rows["dynamic"]["reason"]


def _binary() -> Path:
    """The firmware host build of TINYHIL_TFLM_SOURCE, with TINYHIL_ESP_NN_SOURCE's kernels when
    that is set (compiled when something changed)."""
    from tinyhil.plugins.firmware_tools.host_build import build, cached_build_dir, resolve_bits

    bits = resolve_bits("auto")
    tflm, esp_nn = TFLM.resolve(), ESP_NN.resolve() if ESP_NN else None
    return build(tflm, esp_nn, bits, cached_build_dir(tflm, esp_nn, bits), jobs=2, log=lambda _: None)


def _session(link, command: str) -> list[str]:
    """The protocol lines a board answers to one command, up to m-ready (log lines left out)."""
    link.write(command.encode() + b"%")
    lines = []
    while (line := link.read_line(30)) != "m-ready":
        if line.startswith(("m-", "e-[")):
            lines.append(line)
    return lines


@contextlib.contextmanager
def _both_boards(tmp_path: Path):
    """The Python virtual board and the firmware's host build, each with its link past the banner."""
    from tinyhil.models.boards import get_board
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board, start_virtual_board
    from tinyhil.plugins.bench.link.device import DeviceClient
    from tinyhil.plugins.bench.link.serial_link import SerialLink

    for sub in ("python", "firmware"):
        (tmp_path / sub).mkdir()
    boards = [
        start_virtual_board("esp32-wroom-32", tmp_path / "python"),
        start_firmware_board(_binary(), get_board("esp32-wroom-32"), tmp_path / "firmware"),
    ]
    try:
        links = []
        for vb in boards:
            links.append(SerialLink(vb.port))
            DeviceClient(links[-1], 30).resync()
        yield list(zip(boards, links, strict=True))
    finally:
        for vb in boards:
            vb.stop()


@needs_tflm
def test_both_virtual_boards_answer_the_vectors_alike(tmp_path, converted, tiny_data):
    """The vectors that are commands (parse errors, EEMBC db sessions, model ids, infer forms), sent to
    the Python virtual board and to the firmware's own code: the same replies, and the vectors' own."""
    from tests.unit.vectors import load_vectors
    from tinyhil.models.boards import get_board
    from tinyhil.models.tflm import QuantParams, quantize
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board, start_virtual_board
    from tinyhil.plugins.bench.link.device import DeviceClient
    from tinyhil.plugins.bench.link.protocol import crc32
    from tinyhil.plugins.bench.link.serial_link import SerialLink

    model = converted[("C_2", "full_int")].tflite
    for sub in ("python", "firmware"):
        (tmp_path / sub).mkdir()
    boards = [
        start_virtual_board("esp32-wroom-32", tmp_path / "python"),
        start_firmware_board(_binary(), get_board("esp32-wroom-32"), tmp_path / "firmware"),
    ]
    try:
        links = [SerialLink(vb.port) for vb in boards]
        clients = [DeviceClient(link, 30) for link in links]
        for vb, client in zip(boards, clients, strict=True):
            client.resync()  # past the boot banner, if the port still holds it
            vb.flash_file.write_bytes(model)

        def both(command: str) -> list[str]:
            python, firmware = (_session(link, command) for link in links)
            assert python == firmware, (command, python, firmware)
            return python

        def load() -> int:
            replies = [_session(link, f"model partition {len(model)} {crc32(model):08x} auto flash") for link in links]
            # alike but for the arena figures, which are the host runtime's (64-bit) on the Python board
            arena = [(r.pop(2), r.pop(2)) for r in replies]
            assert all(u.startswith("m-arena-used-bytes-") and m.startswith("m-arena-min-bytes-") for u, m in arena)
            assert replies[0] == replies[1], replies
            return int(next(line for line in replies[0] if line.startswith("m-input-")).split(",")[1])

        checked = 0
        for _, f in load_vectors():
            if f[0] == "parse" and f[2].startswith("error:") and "line too" not in f[2]:
                assert both(f[1]) == [f"e-[{f[2].removeprefix('error:')}]"]
            elif f[0] == "db" and "do not fit" not in f[3]:  # the vectors' room is 64 bytes, a board's is its heap
                for link, client in zip(links, clients, strict=True):  # each session starts with no load under way
                    link.write(b"reset%")
                    client.resync()
                replies = ["|".join(both(c)) or "-" for c in f[2].split(";")]  # the vectors' notation
                if f[3] != "not an EEMBC db command":
                    assert ";".join(replies) == f[3]
            elif f[0] == "modelid":
                assert both(f"model_id {f[1]}") == ([f"m-model-[{f[1]}]"] if f[2] == "ok" else both("model_id x]"))
            elif f[0] == "infer":
                input_bytes = load()
                if f[2] == "tinyhil":
                    window = quantize(tiny_data[0][:1], QuantParams("int8", 1.0, 0)).tobytes()[:input_bytes]
                    for client in clients:
                        client.send_data("input", window)
                elif f[2] == "eembc":
                    both(f"db load {input_bytes}")
                    for start in range(0, input_bytes, 31):
                        both("db " + bytes(range(start % 200, start % 200 + min(31, input_bytes - start))).hex())
                lines = [_session(link, f"infer {f[1]}" if f[1] != "-" else "infer") for link in links]
                for got in lines:
                    if f[3].startswith("error:"):
                        assert got == [f"e-[{f[3].removeprefix('error:')}]"], (f, got)
                    elif f[2] == "none":  # the form resolved, but a freshly loaded model has no input yet
                        assert got == ["e-[infer: no input]"], (f, got)
                    else:
                        form, runs, _ = f[3].split(",")
                        laps = [x for x in got if x.startswith("m-lap-cycles-")]
                        stamps = [x for x in got if x.startswith("m-lap-us-")]
                        assert (len(laps), len(stamps)) == ((int(runs), 0) if form == "tinyhil" else (0, 2)), (f, got)
                results = [[x for x in got if x.startswith("m-results-")] for got in lines]
                assert results[0] == results[1], (f, results)  # the same answer from both runtimes
            else:
                continue
            checked += 1
        assert checked >= 25  # every kind above was reached (27 vectors when this was written)
    finally:
        for vb in boards:
            vb.stop()


@needs_tflm
def test_the_firmware_host_build_restarts_like_a_board(tmp_path):
    """reset% and a crash re-execute the firmware on the same pty: a new banner with its reason."""
    import serial

    from tinyhil.models.boards import get_board
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board
    from tinyhil.plugins.firmware_tools.host_build import resolve_bits

    bits = resolve_bits("auto")
    vb = start_firmware_board(_binary(), get_board("esp32-wroom-32"), tmp_path)
    try:
        link = serial.Serial(vb.port, 115200, timeout=0.2)

        def exchange(command: bytes, until: bytes, timeout_s: float = 10) -> bytes:
            link.write(command)
            got, end = b"", time.monotonic() + timeout_s
            while until not in got and time.monotonic() < end:
                got += link.read(4096)
            return got

        # the power-on banner may be out before this side of the pty opens: drain what came, then
        # info% says the same
        exchange(b"", b"never", 1.0)
        banner = exchange(b"info%", b"m-ready\r\n")
        assert b"m-info-reset-reason-poweron\r\n" in banner and b"m-info-simulated-1\r\n" in banner
        assert f"m-info-pointer-bits-{bits}\r\n".encode() in banner
        again = exchange(b"reset%", b"m-init-done\r\nm-ready\r\n")
        assert again.startswith(b"m-reset\r\nm-ready\r\nm-boot-tinyhil\r\n") and b"reset-reason-sw\r\n" in again
        refused = exchange(b"model partition 64 00000000 auto flash%", b"m-ready\r\n")
        assert refused.startswith(b"e-[model: crc mismatch: got ") and refused.endswith(b"m-ready\r\n")
        link.close()
    finally:
        vb.stop()


needs_idf = pytest.mark.skipif(
    IDF is None or TFLM is None, reason="set IDF_PATH and TINYHIL_TFLM_SOURCE to check the firmware"
)


@needs_idf
@pytest.mark.parametrize("target", ["esp32", "esp32s3", "esp32c3"])
def test_the_firmware_passes_its_check_against_esp_idf(target):
    """Each target against ESP-IDF with its sdkconfig.defaults.<target>: kconfgen with that
    IDF_TARGET, its partition table, the include and compile checks with its include folders.
    A compile the machine cannot do is a skip line with its reason, never an ok."""
    if shutil.which("xtensa-esp-elf-g++") is None and shutil.which("arm-none-eabi-g++") is None:
        pytest.skip("no cross compiler (ESP-IDF's, or Debian's gcc-arm-none-eabi)")
    r = subprocess.run(
        [
            *(sys.executable, "-m", "tinyhil.plugins.firmware_tools.idf_check"),
            *(f"--idf-path={IDF}", f"--tflm={TFLM}", f"--target={target}"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert f"== {target} ==" in r.stdout and f"{target}: " in r.stdout and "0 failed" in r.stdout
    assert f"sdkconfig.defaults.{target} exists in ESP-IDF's Kconfig for {target}" in r.stdout
    compiled = {
        line.split()[1] for line in r.stdout.splitlines() if line.startswith("ok") and f"({target}) with" in line
    }
    # every source the ESP-IDF build compiles (main's and the components'), none left out
    sources = [*ROOT.glob("firmware/main/*.cc"), *ROOT.glob("firmware/components/*/*.cc")]
    assert compiled == {str(path.relative_to(ROOT)) for path in sources}, r.stdout
    for line in r.stdout.splitlines():
        if line.startswith("skip"):
            assert "compile with a RISC-V compiler" in line and "instead with" in line


@needs_idf
def test_a_wrong_value_in_one_targets_defaults_fails_its_check(tmp_path, monkeypatch, capsys):
    """A 240 MHz clock the ESP32-C3 does not have, written in sdkconfig.defaults.esp32c3, fails the
    C3's check by name; the others' files are not read for it."""
    from tinyhil.plugins.firmware_tools import idf_check

    firmware = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", firmware, ignore=shutil.ignore_patterns("build*", "managed_components"))
    defaults = firmware / "sdkconfig.defaults.esp32c3"
    defaults.write_text(defaults.read_text().replace("FREQ_MHZ_160=y", "FREQ_MHZ_240=y"))
    monkeypatch.setattr(idf_check, "FIRMWARE", firmware)
    monkeypatch.setattr(idf_check, "check_compile", lambda *a: None)
    assert idf_check.main([f"--idf-path={IDF}", f"--tflm={TFLM}", "--target=esp32c3"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  sdkconfig.defaults.esp32c3: CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_240 is not an ESP-IDF option" in out
    assert "esp32c3: " in out and "1 failed" in out


@needs_tflm
def test_a_small_explicit_arena_is_refused_and_never_crashes_the_firmware(tmp_path, converted):
    """TFLM writes past an arena too small for its own bookkeeping (the firmware crashed at
    1-100 B for every model, 512 B for hello_world, 1,000 B for the LSTMs): an explicit arena
    below what the model takes is answered ``e-[arena: …]`` and the board stays up; from the
    floor up, the model loads or fails as TFLM says, without a crash."""
    from tinyhil.models.boards import get_board
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board
    from tinyhil.plugins.bench.link.device import DeviceClient
    from tinyhil.plugins.bench.link.protocol import crc32
    from tinyhil.plugins.bench.link.serial_link import SerialLink
    from tinyhil.plugins.bench.measure.reply_verdicts import error_status

    vb = start_firmware_board(_binary(), get_board("esp32-wroom-32"), tmp_path)
    try:
        link = SerialLink(vb.port)
        DeviceClient(link, 30).resync()
        for net, tech in (("C_2", "full_int"), ("CL_1", "full_int"), ("CL_1", "lite")):
            model = converted[(net, tech)].tflite
            vb.flash_file.write_bytes(model)
            head = f"model partition {len(model)} {crc32(model):08x}"
            auto = _session(link, f"{head} auto flash")
            used = int(next(x for x in auto if x.startswith("m-arena-min-bytes-")).rsplit("-", 1)[1])
            for arena in (1, 16, 100, 512, 1000, 2000, 2765, used // 2, used - 16, used - 1):
                if arena <= 0:
                    continue
                got = _session(link, f"{head} {arena} flash")
                assert len(got) == 1 and got[0].startswith(f"e-[arena: {arena} bytes is below the {used} bytes"), (
                    net,
                    tech,
                    arena,
                    got,
                )
                assert error_status(got[0][3:-1], []) == "arena_overflow"
            for arena in (used, used + 16, used + 1000):  # from the floor up: the model loads
                got = _session(link, f"{head} {arena} flash")
                assert any(x.startswith("m-arena-used-bytes-") for x in got), (net, tech, arena, got)
            assert vb.proc.poll() is None  # never crashed
            assert _session(link, "version")[0].startswith("m-protocol-")
    finally:
        vb.stop()


@pytest.mark.parametrize(
    "which", ["python", pytest.param("firmware", marks=needs_tflm)], ids=["python-board", "firmware-host-build"]
)
def test_every_model_loads_and_runs_in_exactly_the_arena_it_reports(tmp_path, converted, which):
    """The arena a row reports is one a user can size from: each model loads with exactly
    ``m-arena-min-bytes`` and infers; one byte less is refused before TFLM sees it. On the
    firmware it is at least TFLM's ``arena_used_bytes()``, which alone was too small to load
    hello_world, MLPerf Tiny's ad01 and dtln (716 B reported, 1,100 B needed)."""
    import numpy as np

    from tinyhil.models.boards import get_board
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board, start_virtual_board
    from tinyhil.plugins.bench.link.device import DeviceClient
    from tinyhil.plugins.bench.link.protocol import crc32
    from tinyhil.plugins.bench.link.serial_link import SerialLink

    if which == "python":
        vb = start_virtual_board("esp32-wroom-32", tmp_path)
    else:
        vb = start_firmware_board(_binary(), get_board("esp32-wroom-32"), tmp_path)
    try:
        link = SerialLink(vb.port)
        client = DeviceClient(link, 30)
        client.resync()
        loaded = 0
        for (net, tech), conv in sorted(converted.items()):
            if tech == "dynamic":  # TFLM has no hybrid kernels: refused at prepare on every board
                continue
            model = conv.tflite
            vb.flash_file.write_bytes(model)
            head = f"model partition {len(model)} {crc32(model):08x}"
            auto = dict(x.rsplit("-", 1) for x in _session(link, f"{head} auto ram") if x[2:7] == "arena")
            least, used = int(auto["m-arena-min-bytes"]), int(auto["m-arena-used-bytes"])
            assert 0 < used <= least, (net, tech, auto)
            got = _session(link, f"{head} {least} ram")
            assert f"m-arena-bytes-{least}" in got, (net, tech, got)
            n_in = int(next(x for x in got if x.startswith("m-input-["))[9:-1].split(",")[1])
            window = bytes(np.random.default_rng(0).integers(0, 256, n_in, dtype=np.uint8))
            client.send_data("input", window)
            ran = _session(link, "infer 1 0")
            assert any(x.startswith("m-results-[") for x in ran), (net, tech, ran)
            below = _session(link, f"{head} {least - 1} ram")
            assert below[0].startswith(f"e-[arena: {least - 1} bytes is below the {least} bytes"), (net, tech, below)
            loaded += 1
        assert loaded == 4 and vb.proc.poll() is None
    finally:
        vb.stop()


@needs_tflm
def test_a_model_whose_kernels_outgrow_the_arena_is_refused_not_a_crash(tmp_path, tiny_data):
    """C_7 full_int's per-channel FULLY_CONNECTED writes through a persistent buffer TFLM could
    not allocate (a null pointer): the firmware rebooted when the arena search probed a size just
    too small, and when a RAM copy left too little heap for the arena. The guarded arena hands
    such requests memory outside the arena and counts the load as failed."""
    from tests.unit.conftest import ConversionContext, _trained, convert
    from tinyhil.models.boards import get_board
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board
    from tinyhil.plugins.bench.link.device import DeviceClient, DeviceErrorResponse
    from tinyhil.plugins.bench.link.serial_link import SerialLink

    ctx = ConversionContext((128, 9), tiny_data[0][:32])
    model = convert("full_int", _trained("C_7", tiny_data), "key-C_7", ctx, tmp_path / "cache", label="C_7").tflite
    vb = start_firmware_board(_binary(), get_board("esp32-wroom-32"), tmp_path)
    try:
        client = DeviceClient(SerialLink(vb.port), 60)
        client.resync()
        vb.flash_file.write_bytes(model)
        dm = client.load_model("partition", model, "auto", "flash")  # the arena search passes the sizes that crashed
        assert client.load_model("partition", model, dm.arena_min_bytes, "ram").arena_bytes == dm.arena_min_bytes
        client.command("model")  # unloaded: its RAM copy and arena go back to the heap
        client.send_data("model", model)  # the upload holds a copy: a RAM copy leaves too little for the arena
        with pytest.raises(
            DeviceErrorResponse, match="arena: the model's tensors do not fit in the largest free block"
        ):
            client.load_model("upload", model, "auto", "ram")
        assert vb.proc.poll() is None and client.sync()["reset-reason"] == "poweron"
    finally:
        vb.stop()


@needs_tflm
def test_numbers_out_of_range_are_bad_arguments_not_days_of_work(tmp_path, converted):
    """``idle -1`` was 4294967295 ms (strtoul), ``infer 1 4294967295`` and ``infer 4294967295``
    kept the board busy with no answer: each is now refused at once, as the Python board does."""
    from tinyhil.plugins.bench.link.protocol import crc32

    model = converted[("C_2", "full_int")].tflite
    with _both_boards(tmp_path) as boards:
        for vb, link in boards:
            vb.flash_file.write_bytes(model)
            _session(link, f"model partition {len(model)} {crc32(model):08x} auto flash")
            for command, error in (
                ("idle -1", "bad arguments for idle: expected idle <ms 0..60000>"),
                ("idle 4294967295", "bad arguments for idle: expected idle <ms 0..60000>"),
                ("idle 60001", "bad arguments for idle: expected idle <ms 0..60000>"),
                ("infer 1 4294967295", "bad arguments for infer: expected infer <n 1..1000> <warm-up runs 0..1000>"),
                ("infer 4294967295", "Inference iterations must be <=1000000"),
                ("infer 1 1001", "bad arguments for infer: expected infer <n 1..1000> <warm-up runs 0..1000>"),
            ):
                assert _session(link, command) == [f"e-[{error}]"], (vb.port, command)
            assert _session(link, "idle 5") == ["m-idle-ms-5"]


@needs_tflm
def test_a_new_upload_unloads_the_model_running_in_place_from_the_old(tmp_path, converted):
    """``model upload … flash`` runs the uploaded bytes where they are; the next ``db model`` freed
    them under the model and the next infer crashed the firmware (2 of 2). Now the model goes with
    its bytes, on both boards alike."""
    from tinyhil.plugins.bench.link.device import DeviceClient
    from tinyhil.plugins.bench.link.protocol import crc32

    model = converted[("C_2", "full_int")].tflite
    with _both_boards(tmp_path) as boards:
        for vb, link in boards:
            client = DeviceClient(link, 30)
            client.send_data("model", model)
            client.load_model("upload", model, "auto", "flash")
            link.write(f"db model {len(model)} {crc32(model):08x}%".encode())
            assert link.read_line(30) == f"m-db-ready-{len(model)}"
            link.write(model)  # the new upload frees the bytes the loaded model runs from
            lines = []
            while (line := link.read_line(30)) != "m-ready":
                lines.append(line)
            assert lines == ["m-model-unloaded", f"m-db-ok-{len(model)}-{crc32(model):08x}"], (vb.port, lines)
            assert _session(link, "infer 1 0") == ["e-[infer: no model]"]
            assert _session(link, "model_id") == ["m-model-[none]"]
            assert vb.proc.poll() is None


@needs_tflm
def test_20000_mutated_protocol_lines_neither_panic_nor_hang_the_firmware(tmp_path, converted):
    """The fuzz that found 86 panic reboots (small explicit arenas) and busy-forever commands
    (idle -1, infer 1 4294967295): tests/unit/fuzz_lines.py's lines, on the firmware's own code."""
    from tests.unit.fuzz_lines import drive, mutated_lines
    from tinyhil.models.boards import get_board
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board
    from tinyhil.plugins.bench.link.device import DeviceClient
    from tinyhil.plugins.bench.link.serial_link import SerialLink

    vb = start_firmware_board(_binary(), get_board("esp32-wroom-32"), tmp_path)
    try:
        model = converted[("C_2", "full_int")].tflite
        vb.flash_file.write_bytes(model)
        link = SerialLink(vb.port)
        DeviceClient(link, 30).resync()
        for seed in (1, 2):
            report = drive(link, mutated_lines(20_000, seed, model), model, lambda: vb.proc.poll() is None)
            assert report.lines == 20_000 and report.loads > 0
            assert report.panics == [] and report.hangs == [], (seed, report.panics[:5], report.hangs[:5])
    finally:
        vb.stop()


@needs_tflm
def test_both_boards_are_ready_after_a_boot(tmp_path, converted, tiny_data):
    """MLPerf Tiny's energy mode power-cycles the DUT: the model loaded from the partition, and its
    id, come back at boot (m-boot-model-[…]) on the firmware's own code as on the Python board;
    model% forgets it, other bytes in the partition or an unfinished load make the boot forget it."""
    from tests.unit.test_boot_model import ready_after_boot
    from tinyhil.models.tflm import QuantParams, quantize
    from tinyhil.plugins.bench.link.device import DeviceClient

    model = converted[("C_2", "full_int")].tflite
    with _both_boards(tmp_path) as boards:
        for vb, link in boards:
            vb.flash_file.write_bytes(model)
            dm = DeviceClient(link, 30).load_model("partition", model, "auto", "flash")
            qin = QuantParams(dm.input_dtype, dm.input_scale, dm.input_zero_point)
            ready_after_boot(link, vb.flash_file, model, quantize(tiny_data[0][:1], qin).tobytes())
            assert vb.proc.poll() is None, vb.port


def _corruptions(model: bytes) -> list[tuple[str, bytes, str]]:
    """``(what, bytes, the error both boards answer)``: ``model`` with one index or size wrong, each
    a flatbuffer the verifier passes and TFLM reads past (firmware/main/model_check.cc)."""
    import flatbuffers
    import numpy as np

    from tinyhil.models.inspection import tflite_schema

    fb = tflite_schema()

    def tables():
        return fb.ModelT.InitFromObj(fb.Model.GetRootAs(bytearray(model), 0))

    def packed(m) -> bytes:
        b = flatbuffers.Builder(0)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    out = []
    m = tables()
    sg = m.subgraphs[0]
    n = len(sg.tensors)
    sg.operators[0].inputs[0] = n + 45
    out.append(
        ("operator input", packed(m), f"model: operator 0 of subgraph 0 reads tensor {n + 45}; the subgraph has {n}")
    )
    m = tables()
    m.subgraphs[0].tensors[2].buffer = len(m.buffers) + 7
    out.append(
        (
            "buffer index",
            packed(m),
            f"model: tensor 2 of subgraph 0 uses buffer {len(m.buffers) + 7}; the model has {len(m.buffers)}",
        )
    )
    m = tables()
    codes = len(m.operatorCodes)
    m.subgraphs[0].operators[1].opcodeIndex = codes + 3
    out.append(
        ("op code index", packed(m), f"model: operator 1 of subgraph 0 has op code {codes + 3}; the model has {codes}")
    )
    m = tables()
    m.subgraphs[0].inputs[0] = n
    out.append(("subgraph input", packed(m), f"model: an input of subgraph 0 is tensor {n}; the subgraph has {n}"))
    m = tables()
    i, t = next(
        (i, t)
        for i, t in enumerate(m.subgraphs[0].tensors)
        if m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data) > 16
    )
    held = len(m.buffers[t.buffer].data)
    m.buffers[t.buffer].data = m.buffers[t.buffer].data[: held // 2]
    out.append(
        (
            "constant data short",
            packed(m),
            f"model: tensor {i} of subgraph 0 needs {held} bytes; its buffer {t.buffer} holds {held // 2}",
        )
    )
    m = tables()
    i, t = next(
        (i, t)
        for i, t in enumerate(m.subgraphs[0].tensors)
        if t.type == 9
        and t.quantization is not None
        and t.quantization.zeroPoint is not None
        and len(t.quantization.zeroPoint)
    )
    t.quantization.zeroPoint[0] = 7424
    out.append(
        ("zero point", packed(m), f"model: zero point 0 of tensor {i} of subgraph 0 is 7424, outside INT8's -128..127")
    )

    # what TFLM's kernels abort or crash on (the structure check's per-op part)
    def first(m, name):
        for j, op in enumerate(m.subgraphs[0].operators):
            oc = m.operatorCodes[op.opcodeIndex]
            if max(oc.builtinCode, oc.deprecatedBuiltinCode) == getattr(fb.BuiltinOperator, name):
                return j, op
        raise AssertionError(f"no {name} in the model")

    m = tables()
    j, op = first(m, "FULLY_CONNECTED")
    op.inputs = op.inputs[:1]  # the weights dropped: TFLM's Prepare reads a tensor that is not there
    out.append(
        (
            "inputs",
            packed(m),
            f"model: operator {j} (FULLY_CONNECTED) of subgraph 0 has 1 input; FULLY_CONNECTED takes at least 2",
        )
    )
    m = tables()
    j, op = first(m, "FULLY_CONNECTED")
    w = int(op.inputs[1])
    m.subgraphs[0].tensors[w].quantization.zeroPoint[0] = 3  # in INT8's range: TFLITE_DCHECK(zero point == 0)
    out.append(
        (
            "weights zero point",
            packed(m),
            f"model: operator {j} (FULLY_CONNECTED) of subgraph 0 has weights (tensor {w}) with zero point 3, not 0",
        )
    )
    m = tables()
    j, op = first(m, "SOFTMAX")
    op.builtinOptions.beta = 1e-9  # TFLITE_CHECK on the multiplier of beta times the input scale
    scale = float(m.subgraphs[0].tensors[int(op.inputs[0])].quantization.scale[0])
    out.append(
        (
            "softmax beta",
            packed(m),
            f"model: operator {j} (SOFTMAX) of subgraph 0 has beta {float(np.float32(1e-9)):g} times input scale {scale:g} at most 2^-26",
        )
    )
    m = tables()
    i = int(m.subgraphs[0].operators[0].outputs[0])  # an activation: no data to check against its shape
    m.subgraphs[0].tensors[i].shape = np.array([1, 65536, 65536], dtype=np.int32)
    out.append(("elements", packed(m), f"model: tensor {i} of subgraph 0 has more elements than TFLM counts (2^31)"))
    return out


@contextlib.contextmanager
def _one_board(kind: str, tmp_path: Path):
    """The Python virtual board or the firmware's host build, its link past the banner."""
    from tinyhil.models.boards import get_board
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board, start_virtual_board
    from tinyhil.plugins.bench.link.device import DeviceClient
    from tinyhil.plugins.bench.link.serial_link import SerialLink

    if kind == "python":
        vb = start_virtual_board("esp32-wroom-32", tmp_path)
    else:
        vb = start_firmware_board(_binary(), get_board("esp32-wroom-32"), tmp_path)
    try:
        link = SerialLink(vb.port)
        DeviceClient(link, 30).resync()
        yield vb, link
    finally:
        vb.stop()


@pytest.mark.parametrize("kind", ["python", pytest.param("firmware", marks=needs_tflm)])
def test_a_model_with_an_index_out_of_range_is_refused_by_name(tmp_path, converted, kind):
    """A corrupted flatbuffer whose CRC matches passes the verifier with an index TFLM reads unchecked:
    the firmware tripped flatbuffers' ``i < size()`` assertion or crashed. Each such model is now
    refused before TFLM sees it, with what is wrong, and the board stays up (both boards alike)."""
    from tinyhil.plugins.bench.link.protocol import crc32

    model = converted[("C_2", "full_int")].tflite
    with _one_board(kind, tmp_path) as (vb, link):
        for what, bad, error in _corruptions(model):
            link.write(f"db model {len(bad)} {crc32(bad):08x}%".encode())
            assert link.read_line(30) == f"m-db-ready-{len(bad)}"
            link.write(bad)
            while link.read_line(30) != "m-ready":
                pass
            got = _session(link, f"model upload {len(bad)} {crc32(bad):08x} auto ram")
            assert got == [f"e-[{error}]"], (what, got)
            assert vb.proc.poll() is None
        # the model itself still loads after them
        vb.flash_file.write_bytes(model)
        got = _session(link, f"model partition {len(model)} {crc32(model):08x} auto flash")
        assert any(x.startswith("m-arena-used-bytes-") for x in got), got


@pytest.mark.parametrize("kind", ["python", pytest.param("firmware", marks=needs_tflm)])
def test_classify_waits_for_a_host_slow_to_read_the_answers(tmp_path, converted, kind):
    """The host sends more windows only once it has read the answers to earlier ones, so a host
    that stalls (a loaded CI machine, pytest-embedded's reader behind) leaves the board waiting
    between windows for longer than a payload's byte gap (CI lost a whole case to this at 2 s):
    the wait before a window is CONFIG_TINYHIL_CLASSIFY_TIMEOUT_MS, and a host that never sends
    is still told so (both boards alike)."""
    from tinyhil.plugins.bench.link.protocol import crc32

    config = kconfig_defaults()
    gap_s, wait_s = int(config["TINYHIL_DB_TIMEOUT_MS"]) / 1000, int(config["TINYHIL_CLASSIFY_TIMEOUT_MS"]) / 1000
    assert wait_s >= 2 * gap_s + 1
    model = converted[("C_2", "full_int")].tflite
    with _one_board(kind, tmp_path) as (vb, link):
        vb.flash_file.write_bytes(model)
        got = _session(link, f"model partition {len(model)} {crc32(model):08x} auto flash")
        size = int(next(x for x in got if x.startswith("m-input-[")).split(",")[1])
        window = bytes(size)
        link.write(f"classify 3 {size} {crc32(window * 3):08x}%".encode())
        assert link.read_line(30) == "m-classify-ready-3"
        link.write(window)
        assert link.read_line(30).startswith("m-class-0-")
        time.sleep(gap_s + 1)  # longer than a payload may pause, shorter than the wait for a window
        link.write(window)
        assert link.read_line(30).startswith("m-class-1-")
        t0 = time.monotonic()
        assert link.read_line(wait_s + 5) == f"e-[classify: timeout in window 2 after 0 of {size} bytes]"
        assert time.monotonic() - t0 >= wait_s - 0.5 and link.read_line(5) == "m-ready"
        assert _session(link, "name") == ["m-name-dut-[tinyhil-esp32]"]  # still ready
        assert vb.proc.poll() is None


@needs_tflm
def test_400_corrupted_models_that_pass_the_verifier_never_panic_the_firmware(tmp_path, converted):
    """tests/unit/fuzz_models.py: bytes of real models changed (mostly their tables), each uploaded with
    its CRC. Of the 400 the flatbuffers verifier passed (seed 1), 25 panicked the firmware before the
    structure check: flatbuffers' ``i < size()`` assertion on a tensor or buffer index, or a crash."""
    from tests.unit.fuzz_models import drive_models

    models = [converted[k].tflite for k in (("C_2", "full_int"), ("CL_1", "full_int"), ("CL_1", "lite"))]
    with _one_board("firmware", tmp_path) as (vb, link):
        report = drive_models(link, models, tries=400, seed=1)
        assert report.panics == [], (len(report.panics), report.panics[:3])
        assert report.sent - report.not_a_model >= 400 and report.loaded > 0
        assert sum(n for e, n in report.refused.items() if e.startswith("e-[model: ")) > 0
        assert vb.proc.poll() is None


@pytest.mark.parametrize("kind", ["python", pytest.param("firmware", marks=needs_tflm)])
def test_a_model_with_an_op_the_firmware_lacks_is_refused_without_a_crash(tmp_path, converted, kind):
    """TFLM stops at the first op its resolver lacks and leaves the later ops' registrations as the arena
    held them; its destructor then calls ``free`` through each. With the arena not zeroed (a heap's old
    bytes: the host build's blocks hold 0xce) the firmware crashed on unloading such a model."""
    import flatbuffers

    from tinyhil.models.inspection import tflite_schema
    from tinyhil.plugins.bench.link.protocol import crc32

    fb = tflite_schema()
    model = converted[("C_2", "full_int")].tflite
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(bytearray(model), 0))
    code = m.operatorCodes[m.subgraphs[0].operators[1].opcodeIndex]  # the second op: later ops stay unresolved
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.LOCAL_RESPONSE_NORMALIZATION
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    lacking = bytes(b.Output())
    with _one_board(kind, tmp_path) as (vb, link):
        vb.flash_file.write_bytes(lacking)
        for place in ("flash", "ram", "flash"):
            got = _session(link, f"model partition {len(lacking)} {crc32(lacking):08x} auto {place}")
            assert got == ["e-[tflm: AllocateTensors failed]"], (place, got)
        assert vb.proc.poll() is None
        assert _session(link, "version")[0].startswith("m-protocol-")


def test_the_op_input_counts_are_one_table_for_the_firmware_and_the_python_board(tmp_path):
    """firmware/main/op_arity.def is what model_check.cc's table is built from and what the Python
    board reads: an op it names is one the firmware registers, and a line the parser cannot read
    stops with its place (the preprocessor might take it, and the two would differ)."""
    from tinyhil.plugins.firmware_tools.model_check import op_arities
    from tinyhil.plugins.firmware_tools.ops import firmware_ops

    table = op_arities()
    assert set(table) <= firmware_ops() and len(table) >= 40
    assert table["SVDF"] == (5, 5, 1, 1) and table["FULLY_CONNECTED"] == (2, 255, 1, 255)
    bad = tmp_path / "op_arity.def"
    bad.write_text("TINYHIL_ARITY(CONV_2D, 2, three, 1, 1)\n")
    with pytest.raises(ValueError, match="op_arity.def.*counts are numbers or kAny"):
        op_arities.__wrapped__(bad)
