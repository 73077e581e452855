"""The hil path end to end: pytest-embedded's serial service on the virtual board's pty."""

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.unit.subrun import ROOT, read_csv, run
from tinyhil import resources
from tinyhil.plugins.bench.link.delivery import EsptoolDelivery, model_partition
from tinyhil.plugins.bench.measure.reply_verdicts import error_status
from tinyhil.plugins.report.columns import COLUMN_NAMES


def test_hil_matrix_on_the_virtual_board(project):
    """The CI acceptance run: C_1, C_3, CL_3 x lite, dynamic, full_int through pytest-embedded."""
    expectations = resources.expectations_dir()  # the board's recorded verdicts
    res = run(
        project,
        "-m",
        "hil",
        "--virtual-board",
        "--networks",
        "C_1,C_3,CL_3",
        "--device-windows",
        "20",
        f"--expectations-dir={expectations}",
        "--energy",
        "simulated",
        "--save-traces",
        "-n",
        "2",  # two workers, each with a virtual board of its own: the bench's several-boards path
    )
    res.assert_outcomes(passed=6, xfailed=3)
    res.stdout.fnmatch_lines(
        [
            "*Fits and runs on target `virtual-esp32`*",
            "*| CL_3 | ✓ ok | ✗ unsupported_op | ✓ ok |*",
            "*Latency and energy on target `virtual-esp32`*",
            "*| C_3 | full_int | * (simulated) | * | * | * | * | simulated |*",
        ]
    )
    rows = read_csv(project)
    assert len(rows) == 9 and list(rows[0]) == COLUMN_NAMES
    ports = {r["bench_port"] for r in rows if r["status"] == "ok"}
    assert len(ports) == 2 and all(p.startswith("/dev/pts/") for p in ports), ports
    macs = {(r["bench_port"], r["bench_mac"]) for r in rows if r["status"] == "ok"}
    assert len(macs) == 2 and all(re.fullmatch(r"02(:[0-9a-f]{2}){5}", m) for _, m in macs), macs
    for r in rows:
        assert r["target"] == "virtual-esp32"
        if r["status"] == "ok":
            assert r["latency_source"] == "simulated" and float(r["latency_ms_median"]) > 0
            assert r["acc_device_source"] == "simulated" and r["device_windows"] == "20"
            assert float(r["device_agreement"]) == 1.0  # the virtual board runs the same TFLM
            assert r["arena_source"] == "simulated" and int(r["arena_bytes"]) > 0
            assert r["esp_idf"] == "none (virtual board)" and len(r["firmware_hash"]) == 64
            assert r["energy_source"] == "simulated" and r["timing_rule"] == "paper"
            assert 0 < float(r["energy_mj_net"]) < float(r["energy_mj_gross"])
            assert r["energy_window_check"].startswith("ok:")
            # where the bench time went: every step of a case that ran took some
            seconds = {k: float(r[k]) for k in ("bench_write_s", "bench_windows_s", "bench_infer_s", "bench_energy_s")}
            assert all(v > 0 for v in seconds.values()), seconds
            assert (project.path / r["energy_trace"]).exists() or Path(r["energy_trace"]).exists()
            if r["technique"] == "full_int":
                assert float(r["energy_saving_pct"]) > 0  # int8 runs faster in the timing model
        else:
            assert r["technique"] == "dynamic" and "FLOAT32 with filter type: INT8 not supported" in r["reason"]
    props = [
        {p.get("name"): p.get("value") for p in tc.iter("property")}
        for tc in ET.parse(project.path / "reports" / "junit.xml").getroot().iter("testcase")
    ]
    assert {p["tinyhil.latency_source"] for p in props if "tinyhil.latency_source" in p} == {"simulated"}


def test_a_panicking_board_is_a_device_error_and_the_run_goes_on(project):
    res = run(
        project,
        "-m",
        "hil",
        "--virtual-board",
        "--virtual-fault",
        "panic-on-infer",
        "--networks",
        "C_1",
        "--techniques",
        "lite,full_int",
        "--device-windows",
        "20",  # windows streamed ahead of the panic reach the rebooted board as junk: the retry resyncs
    )
    res.assert_outcomes(failed=2)
    res.stdout.fnmatch_lines(
        [
            "*C_1-lite-virtual-esp32: verdict changed*got device_error: device (2 attempts): device rebooted during 'classify' (reset reason: panic)*Guru Meditation*",
            "*C_1-full_int-virtual-esp32: verdict changed*got device_error: device (2 attempts): device rebooted during 'classify' (reset reason: panic)*",
        ]
    )
    rows = read_csv(project)
    assert [r["status"] for r in rows] == ["device_error", "device_error"]


def test_a_silent_board_is_a_timeout(project):
    res = run(
        project,
        "-m",
        "hil",
        "--virtual-board",
        "--virtual-fault",
        "hang-on-infer",
        "--device-timeout",
        "1",
        "--hil-retries",
        "0",
        "--networks",
        "C_1",
        "--techniques",
        "lite",
        "--device-windows",
        "1",
    )
    res.assert_outcomes(failed=1)
    assert read_csv(project)[0]["status"] == "timeout"


def test_error_answers_map_to_verdicts():
    assert error_status("arena: cannot allocate 200000 bytes; largest free block 163840", []) == "arena_overflow"
    assert (
        error_status("ram: cannot allocate 400000 bytes for the model copy; largest free block 1", []) == "ram_overflow"
    )
    assert error_status("model: 3000000 bytes > partition 2097152", []) == "flash_overflow"
    assert (
        error_status("tflm: AllocateTensors failed", ["Didn't find op for builtin opcode 'WHILE'"]) == "unsupported_op"
    )
    assert (
        error_status("tflm: AllocateTensors failed", ["Failed to resize buffer. Requested: 16128"]) == "arena_overflow"
    )
    assert error_status("model: crc mismatch: got 1 expected 2", []) == "device_error"
    assert error_status("model: no uploaded model of that length; send db model first", []) == "device_error"
    assert error_status("model: cannot map the model partition", []) == "device_error"
    # the structure check's refusals are the model's, like the verifier's
    not_a_model = error_status("tflm: not a valid TFLite flatbuffer", [])
    for refused in (
        "model: operator 0 of subgraph 0 reads tensor 63; the subgraph has 18",
        "model: operator 4 (SVDF) of subgraph 0 has 3 inputs; SVDF takes 5",
        "model: operator 5 (FULLY_CONNECTED) of subgraph 0 has weights (tensor 11) with zero point 36, not 0",
    ):
        assert error_status(refused, []) == not_a_model != "device_error", refused


class FakeEsp:
    def __init__(self):
        self.connected = self.reset = 0

    def connect(self):
        self.connected += 1

    def hard_reset(self):
        self.reset += 1


class FakeProc:
    def get_settings(self):
        return {"baudrate": 115200}

    def apply_settings(self, settings):
        self.applied = settings


class FakeSerial:
    """What EspSerial.use_esptool touches on pytest-embedded's serial object."""

    def __init__(self):
        import contextlib
        import io

        self.esp, self.proc, self._q = FakeEsp(), FakeProc(), io.StringIO()
        self.redirect_paused = 0

        @contextlib.contextmanager
        def disable_redirect_thread():
            self.redirect_paused += 1
            yield True

        self.disable_redirect_thread = disable_redirect_thread


class FakeClient:
    def __init__(self):
        self.boots = 0

    def wait_boot(self, timeout):
        self.boots += 1
        return {}


def test_esptool_writes_the_model_partition(monkeypatch):
    import esptool

    calls = []

    def fake_main(argv, esp=None):
        calls.append((argv, esp, Path(argv[-1]).read_bytes()))
        # esptool 5.6 resets an external esp too at the end, as --after says (default hard-reset)
        after = argv[argv.index("--after") + 1] if "--after" in argv else "hard-reset"
        if after == "hard-reset":
            esp.hard_reset()

    monkeypatch.setattr(esptool, "main", fake_main)
    offset, size = model_partition()
    serial, client = FakeSerial(), FakeClient()
    serial.esptool_baud = 921600  # pytest-embedded's --esptool-baud
    EsptoolDelivery(serial, offset, size).write(b"TFL3model", client)
    argv, esp, content = calls[0]
    assert argv[:2] == ["--baud", "921600"] and argv[-3:-1] == ["write-flash", "0x190000"]
    assert esp is serial.esp and content == b"TFL3model"
    # into the bootloader (connect) and out of it once: one reset, not esptool's and another
    assert serial.redirect_paused == 1 and serial.esp.connected == 1 and serial.esp.reset == 1
    assert serial.proc.applied == {"baudrate": 115200} and client.boots == 1


def test_energy_options_are_checked(project):
    res = run(project, "-m", "hil", "--port", "/dev/ttyUSB9", "--energy", "simulated")
    assert res.ret == 4
    res.stderr.fnmatch_lines(["*--energy simulated only goes with --virtual-board*"])
    res = run(project, "-m", "hil", "--virtual-board", "--energy", "replay")
    res.stderr.fnmatch_lines(["*--energy replay needs --replay-dir=FOLDER*"])
    res = run(project, "-m", "hil", "--virtual-board", "--shunt-ohms", "abc")
    res.stderr.fnmatch_lines(["*argument --shunt-ohms: expected a number, got 'abc'"])


def test_bench_without_the_nidaqmx_driver_stops_with_the_fix(project):
    built = project.path / "fw" / "build_esp32_default"  # a firmware build, as far as the start-up check looks
    built.mkdir(parents=True)
    (built / "flasher_args.json").write_text("{}")
    controller, device = os.openpty()  # a port that opens, as far as the start-up check looks
    try:
        res = run(
            project,
            "-m",
            "hil",
            f"--app-path={project.path / 'fw'}",
            "--port",
            os.ttyname(device),
            "--energy",
            "nidaqmx",
            "--networks",
            "C_1",
            "--techniques",
            "lite",
        )
    finally:
        os.close(device)
        os.close(controller)
    assert res.ret == 4
    res.stdout.fnmatch_lines(["*tinyhil: NI-DAQmx driver not usable*Install NI-DAQmx*"])


def _run_on_virtual_board(tmp_path, conversion, tiny_data, settings, client_class=None):
    """One case through Esp32Target on the Python virtual board; returns the outcome and the client."""
    from tinyhil.models.boards import get_board
    from tinyhil.models.datasets import Dataset, Standardizer
    from tinyhil.models.inspection import inspect_tflite
    from tinyhil.models.pipeline import CaseArtifacts
    from tinyhil.plugins.bench.boards.virtual_process import start_virtual_board
    from tinyhil.plugins.bench.link.delivery import FlashFileDelivery
    from tinyhil.plugins.bench.link.device import DeviceClient
    from tinyhil.plugins.bench.link.serial_link import SerialLink
    from tinyhil.plugins.targets.esp32 import Esp32Target

    x, y = tiny_data
    ds = Dataset("t", "paper", x, y, x[:40], y[:40], Standardizer.identity(9), tuple("abcdef"), (), 50.0, True, "f", {})
    spec = type("Spec", (), {"id": "C_2", "family": "1D_CNN"})()
    art = CaseArtifacts(spec, "full_int", None, conversion, inspect_tflite(conversion.tflite))
    vb = start_virtual_board("esp32-wroom-32", tmp_path)
    try:
        client = (client_class or DeviceClient)(SerialLink(vb.port), 10)
        client.wait_boot(10)
        target = Esp32Target("virtual-esp32", client, FlashFileDelivery(vb.flash_file), settings, simulated=True)
        outcome = target.run(art, type("Study", (), {"dataset": ds})(), get_board("esp32-wroom-32"))
        profile = client.command("profile").messages
    finally:
        vb.stop()
    return outcome, profile


def test_a_board_that_answers_something_else_is_wrong_output(tmp_path, converted, tiny_data):
    """A board whose kernels compute something else (the seam: its answers to classify%) is not ok."""

    from tinyhil.plugins.bench.link.device import DeviceClient
    from tinyhil.plugins.bench.measure.steps import HilSettings

    class WrongKernel(DeviceClient):
        def classify(self, windows, rx_buffer_bytes):
            return [(c + 1) % 6 for c in super().classify(windows, rx_buffer_bytes)]

    settings = HilSettings(device_windows=40, inferences=2, warmup=0)
    outcome, _ = _run_on_virtual_board(tmp_path, converted[("C_2", "full_int")], tiny_data, settings, WrongKernel)
    assert outcome.verdict.status == "wrong_output", outcome.verdict.reason
    assert "outputs disagree with host TFLM: the class matches in" in outcome.verdict.reason
    assert outcome.figures["device_agreement"] < 0.95 and outcome.figures["latency_ms_median"] > 0


def test_a_case_presents_the_model_id_it_is_given(tmp_path, converted, tiny_data):
    from tinyhil.plugins.bench.measure.steps import HilSettings

    settings = HilSettings(device_windows=5, inferences=2, warmup=0, model_ids={"C_2": "kws01"})
    outcome, profile = _run_on_virtual_board(tmp_path, converted[("C_2", "full_int")], tiny_data, settings)
    assert outcome.verdict.status == "ok" and "m-model-[kws01]" in profile


def test_a_port_list_gives_each_xdist_worker_its_own_board():
    from types import SimpleNamespace

    from tinyhil.plugins.bench_wiring import port_of_this_process

    ports = ("/dev/ttyUSB0", "/dev/ttyUSB1")

    def worker(wid):
        return SimpleNamespace(option=SimpleNamespace(numprocesses=2), workerinput={"workerid": wid})

    assert [port_of_this_process(worker(w), ports) for w in ("gw0", "gw1", "gw2")] == [
        "/dev/ttyUSB0",
        "/dev/ttyUSB1",
        "/dev/ttyUSB0",  # a worker xdist restarted after gw0 crashed takes gw0's board
    ]
    controller = SimpleNamespace(option=SimpleNamespace(numprocesses=2))
    assert port_of_this_process(controller, ports) == "/dev/ttyUSB0,/dev/ttyUSB1"
    assert port_of_this_process(SimpleNamespace(option=SimpleNamespace(numprocesses=None)), ports[:1]) == ports[0]
    with pytest.raises(pytest.UsageError, match=r"--port lists 2 boards .*-n 2 \(got -n 3\)"):
        port_of_this_process(SimpleNamespace(option=SimpleNamespace(numprocesses=3)), ports)
    with pytest.raises(pytest.UsageError, match=r"one xdist worker per board, -n 2$"):
        port_of_this_process(SimpleNamespace(option=SimpleNamespace(numprocesses=None)), ports)


@pytest.mark.parametrize("port", ["/dev/ttyUSB0,", "/dev/ttyUSB0,/dev/ttyUSB0"])
def test_a_bad_port_list_stops_at_start_up(port):
    from tinyhil.plugins.settings.resolve import SettingsError, build_settings
    from tinyhil.plugins.settings.table import OPTIONS as TABLE

    values = {opt.name: (False if opt.is_flag else opt.parse(opt.default)) for opt in TABLE}
    with pytest.raises(SettingsError, match="distinct ports separated by commas"):
        build_settings(values, port=port)


def test_mlperf_windows_longer_than_the_firmware_keeps_laps_for(project):
    """MLPerf's rule wants >= 10 s energy windows; a fast model needs more runs than the
    firmware's 1000 laps. Those windows are timed by EEMBC's form (two timestamps)."""
    res = run(
        project,
        "-m",
        "hil",
        "--virtual-board",
        "--networks=C_1",
        "--techniques=full_int",
        "--device-windows=5",
        "--energy=simulated",
        "--timing-rule=mlperf",
    )
    res.assert_outcomes(passed=1)
    (row,) = read_csv(project)
    assert row["status"] == "ok" and row["timing_rule"] == "mlperf"
    assert float(row["latency_ms_median"]) < 10  # so a 10 s window takes more than 1000 runs
    assert float(row["energy_window_ms"]) >= 0.99 * 10_000
    assert row["energy_window_check"].startswith("ok:"), row["energy_window_check"]


def _ops_def_changed(tmp_path: Path) -> Path:
    """A copy of the firmware's main folder whose ops.def drops EXPAND_DIMS and adds CUMSUM at the end."""
    from tinyhil.plugins.firmware_tools.ops import OPS_DEF

    main = tmp_path / "main"
    shutil.copytree(OPS_DEF.parent, main)
    text = OPS_DEF.read_text()
    assert "TINYHIL_OP(AddExpandDims, EXPAND_DIMS)\n" in text and ", CUMSUM)" not in text
    text = text.replace("TINYHIL_OP(AddExpandDims, EXPAND_DIMS)\n", "") + "TINYHIL_OP(AddCumSum, CUMSUM)\n"
    (main / "ops.def").write_text(text)
    return main


def test_the_host_verdicts_follow_the_firmware_op_list(tmp_path, monkeypatch):
    """firmware/main/ops.def is what the host reads: a changed file changes what is refused."""
    from tinyhil.plugins.firmware_tools import ops
    from tinyhil.plugins.firmware_tools.ops import OPS_DEF, firmware_ops, missing_ops, refusal_reason

    have = firmware_ops()
    assert {"CONV_2D", "FULLY_CONNECTED", "UNIDIRECTIONAL_SEQUENCE_LSTM", "QUANTIZE", "EXPAND_DIMS"} <= have
    assert {"SVDF", "PAD", "TRANSPOSE"} <= have  # TFLM's keyword model (SVDF), padded and transposed convolutions
    assert "CUMSUM" not in have
    assert missing_ops(["EXPAND_DIMS", "CUSTOM:TFLM_DECODE", "CONV_2D", "CUSTOM:TFLM_DECODE"]) == ["CUSTOM:TFLM_DECODE"]
    assert refusal_reason(["CUSTOM:TFLM_DECODE"]).endswith("Failed to get registration from op code CUSTOM")
    changed = _ops_def_changed(tmp_path) / "ops.def"
    assert firmware_ops.__wrapped__(changed) == (have - {"EXPAND_DIMS"}) | {"CUMSUM"}
    monkeypatch.setattr(ops, "firmware_ops", lambda: firmware_ops.__wrapped__(changed))
    assert missing_ops(["CUMSUM", "EXPAND_DIMS", "CONV_2D", "EXPAND_DIMS"]) == ["EXPAND_DIMS"]
    (tmp_path / "bad.def").write_text(changed.read_text() + "TINYHIL_OP(AddTranspose)\n")
    with pytest.raises(ValueError, match=r"bad\.def:\d+: expected TINYHIL_OP\(AddFunction, BUILTIN_NAME\)"):
        firmware_ops.__wrapped__(tmp_path / "bad.def")
    with pytest.raises(OSError):
        firmware_ops.__wrapped__(OPS_DEF.parent / "nonexistent.def")


def _resolver_as_compiled(main: Path, work: Path) -> tuple[list[str], int]:
    """What the compiler makes of model_runner.cc's resolver in the firmware folder ``main``: the
    ``Add...()`` calls in the order they run, and the resolver's size (``kOpCount``).

    Only the C preprocessor runs (where ops.def turns into code), with empty headers in place
    of TFLM's and the C++ library's, so no TFLM source is needed.
    """
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler on PATH to preprocess the firmware with")
    stubs = work / "stubs"
    for source in (*main.glob("*.h"), *main.glob("*.cc")):
        for name in re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', source.read_text(), re.M):
            if not (main / name).exists():
                (stubs / name).parent.mkdir(parents=True, exist_ok=True)
                (stubs / name).touch()
    # TINYHIL_ESP_NN=1 keeps the ESP-NN-only code in, so an Add call there would count too
    argv = [cxx, "-E", "-P", "-nostdinc", "-nostdinc++", "-DTINYHIL_ESP_NN=1", "-I", str(stubs)]
    done = subprocess.run([*argv, str(main / "model_runner.cc")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    size = re.search(r"kOpCount\s*=\s*([^;]*);", done.stdout)
    assert size is not None and re.fullmatch(r"0(\s*\+\s*1)*", size[1].strip()), size
    return re.findall(r"\.(Add\w*)\(\s*\)", done.stdout), size[1].count("+")


def test_the_firmware_resolver_registers_exactly_the_op_list(tmp_path):
    """model_runner's resolver is sized and filled from ops.def alone: what the compiler sees
    follows a changed ops.def, and no op is added outside the list."""
    from tinyhil.plugins.firmware_tools.ops import OPS_DEF, firmware_ops

    calls, size = _resolver_as_compiled(OPS_DEF.parent, tmp_path / "shipped")
    assert size == len(calls) == len(set(calls)) == len(firmware_ops()), (size, calls)
    assert {"AddConv2D", "AddFullyConnected", "AddUnidirectionalSequenceLSTM", "AddExpandDims"} <= set(calls)
    changed_calls, changed_size = _resolver_as_compiled(_ops_def_changed(tmp_path), tmp_path / "changed")
    assert changed_calls == [c for c in calls if c != "AddExpandDims"] + ["AddCumSum"]
    assert changed_size == len(changed_calls)


def test_a_lut_compressed_model_is_refused_by_the_virtual_board_as_by_the_firmware(project):
    res = run(
        project, "-m", "hil", "--virtual-board", "--networks=C_1", "--techniques=full_int+lut4", "--device-windows=5"
    )
    res.assert_outcomes(failed=1)  # the private expectations say ok; the board says otherwise
    (row,) = read_csv(project)
    assert row["status"] == "unsupported_op"
    assert "Failed to get registration from op code CUSTOM" in row["reason"], row["reason"]


def test_an_int16x8_model_is_refused_where_esp_nn_would_compute_it_wrong(project):
    """ESP-NN's int16 fully-connected kernel ignores per-channel scales (esp-tflite-micro 1.3.8
    to 1.4.0): the firmware refuses such models, and the host verdict and the virtual board
    say the same, instead of an ok with wrong answers."""
    for marker, extra in (("offline", ()), ("hil", ("--virtual-board", "--device-windows=5", "--report-dir=vb"))):
        res = run(project, "-m", marker, "--networks=C_1", "--techniques=int16x8", *extra)
        res.assert_outcomes(failed=1)  # the private expectations say ok
        (row,) = read_csv(project, "vb" if extra else "reports")
        assert row["status"] == "unsupported_op", row
        assert "ESP-NN int16 FULLY_CONNECTED ignores per-channel weight scales" in row["reason"], row["reason"]


def test_bench_without_a_firmware_build_stops_at_start_up_with_the_fix(project):
    """pytest-embedded-idf would fail every case at setup with 'Idf app not parsable: None'."""
    res = run(project, "-m", "hil", f"--app-path={project.path}", "--port", "/dev/ttyUSB9", "--networks=C_1")
    assert res.ret == 4
    res.stdout.fnmatch_lines(["*the firmware is not built: *build_esp32_default/flasher_args.json is missing*"])
    res.stdout.fnmatch_lines(["*idf.py -B build_esp32_default build*"])


def _partition_table_bin(rows) -> bytes:
    """A binary partition table as ESP-IDF's gen_esp32part.py writes it: 32-byte entries, then
    its MD5 entry (0xebeb), then erased flash."""
    import struct

    out = b"".join(
        struct.pack("<2sBBII16sI", b"\xaa\x50", t, st, off, size, name.encode(), 0) for name, t, st, off, size in rows
    )
    return out + b"\xeb\xeb" + b"\xff" * 14 + bytes(16) + b"\xff" * 32


def test_the_model_partition_comes_from_the_flashed_builds_table(tmp_path):
    """Not from the repository's partitions.csv: the board holds the layout of the build flashed."""
    from types import SimpleNamespace

    from tinyhil.plugins.bench.link.delivery import build_model_partition, partition_from_table

    table = _partition_table_bin(
        [("nvs", 1, 2, 0x9000, 0x6000), ("factory", 0, 0, 0x10000, 0x100000), ("model", 1, 0x40, 0x110000, 0x80000)]
    )
    assert partition_from_table(table) == (0x110000, 0x80000)  # another layout than partitions.csv's
    (tmp_path / "partition_table").mkdir()
    (tmp_path / "partition_table" / "partition-table.bin").write_bytes(table)
    app = SimpleNamespace(
        binary_path=str(tmp_path), flash_args={"partition_table": {"file": "partition_table/partition-table.bin"}}
    )
    assert build_model_partition(app) == (0x110000, 0x80000)
    (tmp_path / "partition_table" / "partition-table.bin").write_bytes(
        _partition_table_bin([("nvs", 1, 2, 0x9000, 0x6000)])
    )
    with pytest.raises(
        ValueError, match="no partition named 'model'; the firmware was built with another partitions.csv"
    ):
        build_model_partition(app)
    with pytest.raises(ValueError, match="has no partition table"):
        build_model_partition(SimpleNamespace(binary_path=str(tmp_path), flash_args={}))


@pytest.mark.skipif(not os.environ.get("IDF_PATH"), reason="set IDF_PATH to compare with ESP-IDF's gen_esp32part.py")
def test_the_table_reader_reads_what_esp_idfs_generator_writes(tmp_path):
    import subprocess
    import sys

    from tinyhil.plugins.bench.link.delivery import model_partition, partition_from_table

    gen = Path(os.environ["IDF_PATH"]) / "components" / "partition_table" / "gen_esp32part.py"
    out = tmp_path / "partition-table.bin"
    subprocess.run(
        [sys.executable, str(gen), "--flash-size", "4MB", str(ROOT / "firmware" / "partitions.csv"), str(out)],
        check=True,
    )
    assert partition_from_table(out.read_bytes()) == model_partition()


def test_the_first_case_of_a_session_checks_the_boards_elf_before_flashing(project):
    """pytest-embedded-idf only compares ELF sha256s on a session-cache hit; tinyhil primes the cache
    with this worker's port and build, so a board already running the firmware is not flashed."""
    build = project.path / "fw" / "build_esp32_default"
    build.mkdir(parents=True)
    (build / "flasher_args.json").write_text("{}")
    project.makepyfile(test_probe="def test_probe(port_app_cache):\n    print('CACHE', port_app_cache)\n")
    res = project.runpytest_subprocess(
        "test_probe.py", "-s", "--port=/dev/ttyUSB9", f"--app-path={project.path / 'fw'}"
    )
    res.stdout.fnmatch_lines([f"*CACHE {{'/dev/ttyUSB9': '{build}'}}"])
    res = project.runpytest_subprocess(
        "test_probe.py",
        "-s",
        "--port=/dev/ttyUSB9",
        f"--app-path={project.path / 'fw'}",
        "--confirm-target-elf-sha256=n",
    )
    res.stdout.fnmatch_lines(["*CACHE {}"])  # asked not to compare: pytest-embedded's own behaviour


def test_espport_names_the_board_as_in_pytest_embedded(project, monkeypatch):
    """pytest-embedded's esp service opens ESPPORT when it is set, before --port."""
    monkeypatch.setenv("ESPPORT", "/dev/ttyUSB7")
    res = run(project, "-m", "hil", f"--app-path={project.path}", "--networks=C_1")
    assert res.ret == 4  # a board is configured (no 'no board is configured'); its build is missing
    res.stdout.fnmatch_lines(["*the firmware is not built: *flasher_args.json is missing*"])
    res = run(project, "-m", "hil", "--port=/dev/ttyUSB0", "--networks=C_1")
    assert res.ret == 4
    res.stderr.fnmatch_lines(["*ESPPORT=/dev/ttyUSB7 and --port /dev/ttyUSB0 name different boards*unset ESPPORT*"])


def test_several_workers_cannot_share_one_board(project):
    res = run(project, "-m", "hil", "--port=/dev/ttyUSB0", "-n", "2", "--networks=C_1")
    assert res.ret == 4
    res.stderr.fnmatch_lines(["*-n 2 with one board (/dev/ttyUSB0): xdist workers cannot share a serial port*"])


def test_the_console_baud_is_set_once_in_the_firmwares_kconfig(project, tmp_path):
    """CONFIG_TINYHIL_UART_BAUD: the flashed build's, else the Kconfig default; the host opens the port at it."""
    from tinyhil.plugins.firmware_tools.config import console_baud, kconfig_defaults

    assert console_baud(tmp_path) == int(kconfig_defaults()["TINYHIL_UART_BAUD"]) == 921600
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "sdkconfig.json").write_text('{"TINYHIL_UART_BAUD": 2000000}')
    assert console_baud(tmp_path) == 2000000
    build = project.path / "fw" / "build_esp32_default"
    (build / "config").mkdir(parents=True)
    (build / "flasher_args.json").write_text("{}")
    (build / "config" / "sdkconfig.json").write_text('{"TINYHIL_UART_BAUD": 2000000}')
    project.makepyfile(test_probe="def test_probe(pytestconfig):\n    print('BAUD', pytestconfig.option.baud)\n")
    res = project.runpytest_subprocess(
        "test_probe.py", "-s", "--port=/dev/ttyUSB9", f"--app-path={project.path / 'fw'}"
    )
    res.stdout.fnmatch_lines(["*BAUD 2000000"])
    res = project.runpytest_subprocess(
        "test_probe.py", "-s", "--port=/dev/ttyUSB9", f"--app-path={project.path / 'fw'}", "--baud=115200"
    )
    res.stdout.fnmatch_lines(["*BAUD 115200"])  # pytest-embedded's --baud still wins


def test_a_retry_keeps_the_first_failures_reason(converted):
    """The retry runs in the first failure's wake; its own words came out as the reason before."""
    from types import SimpleNamespace

    from tinyhil.models.boards import get_board
    from tinyhil.models.inspection import inspect_tflite
    from tinyhil.models.pipeline import CaseArtifacts
    from tinyhil.plugins.bench.link.device import DeviceGarbage, DeviceRebooted
    from tinyhil.plugins.bench.measure.steps import HilSettings
    from tinyhil.plugins.targets.esp32 import Esp32Target

    class FailingClient:
        def __init__(self):
            self.loads, self.resyncs = 0, 0

        def sync(self):
            return {}

        def resync(self):
            self.resyncs += 1

        def load_model(self, *args):
            self.loads += 1
            if self.loads == 1:
                raise DeviceRebooted("device rebooted during 'model' (reset reason: panic)", ["Guru Meditation"], {})
            raise DeviceGarbage("malformed m-input message: None", [])

    client = FailingClient()
    conversion = converted[("C_2", "full_int")]
    spec = SimpleNamespace(id="C_2", family="1D_CNN")
    art = CaseArtifacts(spec, "full_int", None, conversion, inspect_tflite(conversion.tflite))
    delivery = SimpleNamespace(write=lambda model, c: None, source="partition")
    target = Esp32Target("esp32", client, delivery, HilSettings(retries=1), simulated=False)
    study = SimpleNamespace(dataset=SimpleNamespace(input_shape=(), n_classes=0))  # no test windows to write
    verdict = target.run(art, study, get_board("esp32-wroom-32")).verdict
    assert verdict.status == "device_error" and client.loads == 2 and client.resyncs == 2
    assert verdict.reason.startswith("device (2 attempts): device rebooted during 'model' (reset reason: panic)")
    assert "Guru Meditation" in verdict.reason and verdict.reason.endswith(
        "last attempt: malformed m-input message: None"
    )


def test_without_device_windows_the_board_classifies_until_agreement_is_proven(project):
    """--device-windows defaults to auto: a board that agrees with host TFLM on every window is
    proven to disagree on less than 1 % of them (95 % confidence) after 299 windows, not the split."""
    from tinyhil.models.datasets import load_dataset

    res = run(project, "-m", "hil", "--virtual-board", "--networks=C_1", "--techniques=full_int")
    res.assert_outcomes(passed=1)
    (row,) = read_csv(project)
    n_test = len(load_dataset("synthetic-har", "paper", seed=0).x_test)  # the project's pytest.ini
    assert row["status"] == "ok" and int(row["device_windows"]) == 299 < n_test, (row["device_windows"], n_test)
    assert row["device_disagreements"] == "0" and float(row["disagreement_upper_bound"]) < 0.01
    assert row["agreement_test"] == "agrees: max 0.01 at confidence 0.95" and row["acc_tflm"] != ""
    res.stdout.fnmatch_lines(["*| C_1 | * | * on 299 (1.000, ≤ 0.997%); TFLM * on all |*"])


def test_device_windows_all_classifies_the_whole_test_split(project):
    from tinyhil.models.datasets import load_dataset

    res = run(
        project, "-m", "hil", "--virtual-board", "--networks=C_1", "--techniques=full_int", "--device-windows=all"
    )
    res.assert_outcomes(passed=1)
    (row,) = read_csv(project)
    n_test = len(load_dataset("synthetic-har", "paper", seed=0).x_test)
    assert row["status"] == "ok" and int(row["device_windows"]) == n_test, (row["device_windows"], n_test)
    assert row["agreement_test"] == "none (--device-windows all)" and row["device_disagreements"] == "0"


def test_device_windows_all_is_the_whole_test_split():
    from tinyhil.plugins.bench.measure.steps import window_subset
    from tinyhil.plugins.settings.table import OPTIONS

    parse = next(o for o in OPTIONS if o.name == "device-windows").parse
    assert parse("all") == 0 and parse("ALL") == 0 and parse("7") == 7
    assert window_subset(1080, 0, seed=0).tolist() == list(range(1080))
    sample = window_subset(1080, 50, seed=0)
    assert len(sample) == 50 and len(set(sample.tolist())) == 50 and (sample == window_subset(1080, 50, seed=0)).all()
