"""The virtual board and the device client, over a real pseudo-terminal."""

import time

import numpy as np
import pytest

from tinyhil.models.inspection import inspect_tflite
from tinyhil.models.tflm import minimum_arena, predict, quantize
from tinyhil.plugins.bench.boards.virtual_process import start_virtual_board
from tinyhil.plugins.bench.link.device import (
    DeviceClient,
    DeviceErrorResponse,
    DeviceGarbage,
    DeviceRebooted,
    DeviceTimeout,
)
from tinyhil.plugins.bench.link.protocol import crc32
from tinyhil.plugins.bench.link.serial_link import SerialLink


@pytest.fixture
def board_factory(tmp_path):
    started = []

    def make(board="esp32-wroom-32", fault="none"):
        vb = start_virtual_board(board, tmp_path, fault)
        started.append(vb)
        client = DeviceClient(SerialLink(vb.port), timeout_s=5)
        client.wait_boot(10)
        return vb, client

    yield make
    for vb in started:
        vb.stop()


@pytest.mark.parametrize("baud", [115_200, 921_600])
def test_serial_pacing_matches_bytes_over_baud(tmp_path, baud):
    """The bench benchmark's virtual boards pace their link as a UART would: 10 bits a byte."""
    vb = start_virtual_board("esp32-wroom-32", tmp_path, baud=baud)
    try:
        client = DeviceClient(SerialLink(vb.port), timeout_s=10)
        client.wait_boot(10)
        data = bytes(range(256)) * (baud // 256 // 10)  # about 1 s of line time

        def timed(payload: bytes) -> float:
            t0 = time.monotonic()
            client.send_data("input", payload)
            return time.monotonic() - t0

        line_s = len(data) * 10 / baud
        took_s, short_s = timed(data), timed(data[:16])
        # the board answers after it has read the payload at the line's rate, and its pacing only
        # sleeps (never less than asked): a floor, whatever else runs on the machine
        assert took_s >= 0.999 * line_s, (took_s, line_s)
        # the command and its answers cost what a 16-byte payload's do: a ceiling that a link
        # paced at twice the line time breaks, loose enough for a busy CI machine (-n 2)
        assert took_s - short_s <= 1.5 * line_s, (took_s, short_s, line_s)
    finally:
        vb.stop()


def test_boot_banner_and_basic_commands(board_factory):
    vb, client = board_factory()
    assert client.info["simulated"] == "1" and client.info["cpu-mhz"] == "240"
    assert client.command("name").messages == ["m-name-dut-[tinyhil-esp32]"]  # EEMBC's form
    # help% lists the firmware's own command table (firmware/components/tinyhil_core/commands.def)
    from tinyhil.plugins.firmware_tools.commands import firmware_commands

    names = [name for name, _ in firmware_commands()]
    assert names[:3] == ["name", "version", "info"] and "infer" in names
    assert client.command("help").messages == [f"m-help-{name}" for name in names]
    with pytest.raises(DeviceErrorResponse, match="^Unknown command: fly$"):
        client.command("fly")
    with pytest.raises(DeviceErrorResponse, match="bad arguments for infer"):
        client.command("infer", 1, 0, 0)
    with pytest.raises(DeviceErrorResponse, match="^infer: no model$"):
        client.command("infer", 1)  # EEMBC's form, W defaulting
    client.link.write(b"x" * 300 + b"%")
    with pytest.raises(DeviceErrorResponse, match="line too long"):
        client._read_response("long")
    assert client.command("name").messages == ["m-name-dut-[tinyhil-esp32]"]  # still ready after errors


def test_db_transfer_checks_crc_and_length(board_factory):
    vb, client = board_factory()
    client.send_data("input", b"\x01\x02\x03")
    client.link.write(b"db input 3 00000000%")
    assert client.link.read_line(5) == "m-db-ready-3"
    client.link.write(b"abc")
    with pytest.raises(DeviceErrorResponse, match=f"crc mismatch: got {crc32(b'abc'):08x} expected 00000000"):
        client._read_response("db")
    client.link.write(b"db input 10 00000000%")
    assert client.link.read_line(5) == "m-db-ready-10"
    client.link.write(b"abc")  # then silence: the device gives up after 2 s
    with pytest.raises(DeviceErrorResponse, match="timeout after 3 of 10 bytes"):
        client._read_response("db")


def test_model_runs_as_on_host_tflm(board_factory, converted, tiny_data):
    vb, client = board_factory()
    model = converted[("C_2", "full_int")].tflite
    vb.flash_file.write_bytes(model)
    dm = client.load_model("partition", model, "auto", "flash")
    assert dm.arena_used_bytes == minimum_arena(model).min_arena_bytes
    # the device reports the quantization written in the flatbuffer (read here by the schema, not by TFLM)
    info = inspect_tflite(model)
    (in_scale, in_zp), (out_scale, out_zp) = info.input_quant, info.output_quant
    assert dm.input_dtype == info.input_dtype == "int8" and dm.input_scale > 0
    assert dm.input_scale == pytest.approx(in_scale, rel=1e-6) and dm.input_zero_point == in_zp
    assert dm.output_dtype == info.output_dtype == "int8" and dm.output_scale > 0
    assert dm.output_scale == pytest.approx(out_scale, rel=1e-6) and dm.output_zero_point == out_zp
    x = tiny_data[0][:5]
    host = predict(model, x, dm.arena_used_bytes)
    from tinyhil.models.tflm import QuantParams, dequantize

    qin = QuantParams("int8", dm.input_scale, dm.input_zero_point)
    qout = QuantParams("int8", dm.output_scale, dm.output_zero_point)
    for i in range(5):
        client.send_data("input", quantize(x[i : i + 1], qin).tobytes())
        r = client.infer(3, 1)
        assert len(r.cycles) == 3 and r.cpu_mhz == 240
        assert np.allclose(dequantize(r.outputs, qout), host[i])
    ops = client.profile()  # tinyhil's per-op profile, opprofile% (profile% is EEMBC's)
    assert [tag for tag, _ in ops][:2] == ["RESHAPE", "CONV_2D"] and all(c > 0 for _, c in ops)


def test_memory_limits_of_the_board_profile(board_factory, converted):
    vb, client = board_factory("esp32-wroom-32-ram")
    model = converted[("C_2", "lite")].tflite
    vb.flash_file.write_bytes(model)
    with pytest.raises(DeviceErrorResponse, match=r"arena: cannot allocate 999999 bytes; largest free block \d+"):
        client.load_model("partition", model, 999999, "flash")
    with pytest.raises(DeviceErrorResponse, match="model: crc mismatch"):
        client.load_model("partition", model + b"x", "auto", "flash")
    dyn = converted[("C_2", "dynamic")].tflite
    vb.flash_file.write_bytes(dyn)
    with pytest.raises(DeviceErrorResponse) as e:
        client.load_model("partition", dyn, "auto", "flash")
    assert e.value.error == "tflm: AllocateTensors failed"
    assert any("Input type: FLOAT32 with filter type: INT8 not supported" in line for line in e.value.log)


@pytest.mark.parametrize(
    "fault, error, text",
    [
        ("panic-on-infer", DeviceRebooted, "reset reason: panic"),
        ("garbage-on-infer", DeviceGarbage, "unreadable bytes"),
        ("hang-on-infer", DeviceTimeout, "no line"),
    ],
)
def test_faults_become_typed_errors(board_factory, converted, tiny_data, fault, error, text):
    vb, client = board_factory(fault=fault)
    model = converted[("C_2", "lite")].tflite
    vb.flash_file.write_bytes(model)
    client.load_model("partition", model, "auto", "flash")
    client.send_data("input", tiny_data[0][:1].tobytes())
    client.timeout_s = 2
    with pytest.raises(error, match=text) as e:
        client.infer(1, 0)
    if fault == "panic-on-infer":
        assert any("Guru Meditation" in line for line in e.value.log)
        assert e.value.info["reset-reason"] == "panic"


def test_reset_reboots_with_a_new_banner(board_factory):
    vb, client = board_factory()
    client.link.write(b"reset%")
    assert client._read_response("reset").messages == ["m-reset"]
    assert client.wait_boot(5)["reset-reason"] == "sw"


def test_no_command_kills_the_board(board_factory, converted):
    """Found by sending hostile commands: a zero-length model made tflite-micro's runtime
    crash inside the virtual board, which then vanished from its pty. Every line below
    gets an error answer and the board stays ready, as the firmware does."""
    vb, client = board_factory()
    model = converted[("C_2", "full_int")].tflite
    vb.flash_file.write_bytes(model)
    crc = f"{crc32(model):08x}"
    garbage = b"\x00\x00\x00\x00TFL3" + bytes(range(200))  # the identifier, then nonsense
    hostile = [
        (("model", "partition", 0, "00000000", "auto", "flash"), "length must be > 0"),
        (("model", "partition", len(model), crc, 0, "flash"), "arena must be auto or > 0"),
        (("model", "partition", len(model), crc, -1, "flash"), "arena must be auto or > 0"),
        (
            ("model", "partition", len(model), crc, 100, "flash"),
            r"arena: 100 bytes is below the \d+ bytes this model needs",
        ),
        (("db", "input", -5, "0"), "bad arguments for db"),
        (("idle", -1), r"bad arguments for idle: expected idle <ms 0..60000>"),
        (("idle", 4294967295), r"bad arguments for idle: expected idle <ms 0..60000>"),
        (("infer", 1, 4294967295), r"bad arguments for infer"),
        (("infer", 4294967295), r"Inference iterations must be <=1000000"),
        (("infer", -3), "must be >0"),
        (("model", "partition", 10, "zz", "auto", "flash"), "bad arguments for model"),
    ]
    for args, text in hostile:
        with pytest.raises(DeviceErrorResponse, match=text):
            client.command(*args)
        assert vb.proc.poll() is None, args
    vb.flash_file.write_bytes(garbage)
    with pytest.raises(DeviceErrorResponse, match="not a valid TFLite flatbuffer"):
        client.command("model", "partition", len(garbage), f"{crc32(garbage):08x}", "auto", "flash")
    assert client.command("name").messages == ["m-name-dut-[tinyhil-esp32]"]  # still ready


def test_classify_streams_windows_and_checks_them(board_factory, converted, tiny_data):
    """classify%: every window back to back, one class each, as host TFLM classifies them; a wrong
    size or a corrupted stream is refused in the board's words and the board stays ready."""
    from tinyhil.models.tflm import QuantParams
    from tinyhil.plugins.bench.link.device import DeviceErrorResponse
    from tinyhil.plugins.bench.link.protocol import format_command

    vb, client = board_factory()
    model = converted[("C_2", "full_int")].tflite
    vb.flash_file.write_bytes(model)
    dm = client.load_model("partition", model, "auto", "flash")
    x = tiny_data[0][:60]
    qin = QuantParams("int8", dm.input_scale, dm.input_zero_point)
    windows = [quantize(x[i : i + 1], qin).tobytes() for i in range(len(x))]
    classes = client.classify(windows, int(client.sync()["rx-buffer-bytes"]))
    assert classes == np.argmax(predict(model, x, dm.arena_used_bytes), axis=1).tolist()
    with pytest.raises(DeviceErrorResponse, match=f"classify: windows of 10 bytes, the model takes {dm.input_bytes}"):
        client.command("classify", 1, 10, "00000000")
    client.link.write(format_command("classify", 2, dm.input_bytes, "00000000"))  # a CRC that cannot match
    assert client.link.read_line(5) == "m-classify-ready-2"
    client.link.write(windows[0] + windows[1])
    lines = [client.link.read_line(5) for _ in range(4)]
    assert lines[:2] == [f"m-class-0-{classes[0]}", f"m-class-1-{classes[1]}"]
    assert lines[2].startswith("e-[classify: crc mismatch: got ") and lines[3] == "m-ready"
    assert client.classify(windows[:3], 16384) == classes[:3]  # still ready


def test_a_new_upload_unloads_the_model_running_in_place_from_the_old(board_factory, converted):
    """As the firmware (whose next infer read freed memory): ``db model`` after ``model upload …
    flash`` unloads that model; one copied to RAM stays."""
    vb, client = board_factory()
    model = converted[("C_2", "full_int")].tflite
    client.send_data("model", model)
    client.load_model("upload", model, "auto", "flash")
    client.command("model_id", "kws01")
    client.send_data("model", model)
    with pytest.raises(DeviceErrorResponse, match="infer: no model"):
        client.command("infer", 1, 0)
    assert client.command("model_id").messages == ["m-model-[none]"]
    dm = client.load_model("upload", model, "auto", "ram")
    client.send_data("model", model)  # the RAM copy does not go with the upload
    client.send_data("input", b"\0" * dm.input_bytes)
    assert client.command("infer", 1, 0).values("results")


def test_20000_mutated_protocol_lines_neither_panic_nor_hang_the_board(board_factory, converted):
    """tests/unit/fuzz_lines.py: commands.def's commands with mutated numbers, lengths, CRCs,
    arenas and words (a real model's length and CRC now and then, so small arenas reach TFLM).
    The same lines against the firmware's host build: test_firmware_host.py."""
    from tests.unit.fuzz_lines import drive, mutated_lines

    vb, client = board_factory()
    model = converted[("C_2", "full_int")].tflite
    vb.flash_file.write_bytes(model)
    client.resync()
    report = drive(client.link, mutated_lines(20_000, 1, model), model, lambda: vb.proc.poll() is None)
    assert report.lines == 20_000 and report.loads > 0 and report.errors > 1000
    assert report.panics == [] and report.hangs == []
