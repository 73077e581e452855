"""EEMBC / MLPerf Tiny's DUT commands on the virtual board.

The runner's flow through :class:`tinyhil.plugins.bench.link.eembc.EembcClient` (written from the protocol),
every row of the compatibility table in ``firmware/PROTOCOL.md``, and tinyhil's own host
working unchanged beside them.
"""

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.unit.links import ScriptedLink
from tinyhil.models.tflm import QuantParams, dequantize, predict, quantize
from tinyhil.plugins.bench.boards.virtual_process import start_virtual_board
from tinyhil.plugins.bench.link.device import DeviceClient
from tinyhil.plugins.bench.link.eembc import EembcClient, EembcError, main
from tinyhil.plugins.bench.link.serial_link import SerialLink
from tinyhil.plugins.firmware_tools.commands import firmware_commands

PROTOCOL = Path(__file__).resolve().parents[2] / "firmware" / "PROTOCOL.md"
CPU_MHZ = 240


def compatibility_rows() -> list[str]:
    """The first cell of every row of PROTOCOL.md's compatibility table."""
    text = PROTOCOL.read_text()
    section = text.split("## EEMBC / MLPerf Tiny compatibility", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [row.split("|")[1].strip() for row in rows[1:]]  # rows[0] is the header


def _read_banner(link) -> list[str]:
    lines = []
    while not lines or lines[-1] != "m-ready":
        line = link.read_line(10).strip()
        if line == "m-boot-tinyhil":
            lines = []
        lines.append(line)
    return lines


@pytest.fixture(scope="module")
def bench(tmp_path_factory, converted, tiny_data):
    """A virtual board with a quantized model loaded by tinyhil's host, and both clients on its link."""
    vb = start_virtual_board("esp32-wroom-32", tmp_path_factory.mktemp("eembc"))
    try:
        link = SerialLink(vb.port)
        banner = _read_banner(link)
        tiny = DeviceClient(link, timeout_s=10)
        model = converted[("C_2", "full_int")].tflite
        vb.flash_file.write_bytes(model)
        dm = tiny.load_model("partition", model, "auto", "flash")
        qin = QuantParams(dm.input_dtype, dm.input_scale, dm.input_zero_point)
        qout = QuantParams(dm.output_dtype, dm.output_scale, dm.output_zero_point)
        x = tiny_data[0][:3]
        yield SimpleNamespace(
            vb=vb,
            link=link,
            banner=banner,
            tiny=tiny,
            eembc=EembcClient(link, timeout_s=10),
            model=model,
            dm=dm,
            qout=qout,
            inputs=[quantize(x[i : i + 1], qin).tobytes() for i in range(len(x))],
            host=predict(model, x, dm.arena_used_bytes),
        )
    finally:
        vb.stop()


def simulated_window_us(b, runs: int) -> int:
    """What the two m-lap-us of ``runs`` inferences are apart: the timing model's cycles at 240 MHz."""
    b.tiny.send_data("input", b.inputs[0])
    return round(runs * b.tiny.infer(1, 0).cycles[0] / CPU_MHZ)


def test_the_runner_flow_reads_what_the_runner_expects(bench):
    b = bench
    b.tiny.command("model_id", "kws01")  # the case presents itself as MLPerf Tiny's kws01
    assert b.eembc.name() == "tinyhil-esp32"
    profile, model_id = b.eembc.profile()
    assert model_id == "kws01" and profile.startswith("tinyhil protocol 1")
    window_us = simulated_window_us(b, 5)
    for data, expected in zip(b.inputs, b.host, strict=True):
        assert b.eembc.load(data)[-2:] == ["m-load-done", "m-ready"]
        assert b.eembc.buffer() == data
        r = b.eembc.infer(5, 1)
        assert r.elapsed_us == window_us and r.throughput == pytest.approx(5 / (window_us / 1e6))
        assert np.allclose(r.results, expected, rtol=1e-6, atol=1e-7)
        assert b.eembc.results() == r.results
    # with a power manager the runner sends 26-byte chunks
    EembcClient(b.link, chunk_bytes=26).load(b.inputs[0])
    assert b.eembc.buffer() == b.inputs[0]


def test_tinyhil_host_is_unchanged_beside_eembc(bench):
    b = bench
    b.eembc.load(b.inputs[1])
    assert "m-infer-done" in b.eembc.infer(2, 0).lines
    b.tiny.send_data("input", b.inputs[1])  # tinyhil's transfer: infer N W answers in tinyhil's form again
    r = b.tiny.infer(3, 1)
    assert len(r.cycles) == 3 and r.cpu_mhz == CPU_MHZ
    assert np.allclose(dequantize(r.outputs, b.qout), b.host[1])
    assert [tag for tag, _ in b.tiny.profile()][:2] == ["RESHAPE", "CONV_2D"]  # opprofile%


def test_a_new_model_drops_the_previous_model_id(bench):
    b = bench
    assert b.eembc.command("model_id C_2-full_int") == ["m-model-[C_2-full_int]", "m-ready"]
    assert b.eembc.command("model_id") == ["m-model-[C_2-full_int]", "m-ready"]
    assert b.eembc.command("model_id bad]id")[0].startswith("e-[bad arguments for model_id")
    b.tiny.load_model("partition", b.model, "auto", "flash")
    assert b.eembc.profile()[1] == "none"


# One check per row of PROTOCOL.md's compatibility table, keyed by the row's first cell.
def _name(b):
    assert b.eembc.command("name") == ["m-name-dut-[tinyhil-esp32]", "m-ready"]


def _profile(b):
    b.eembc.command("model_id vww01")
    assert b.eembc.command("profile") == ["m-profile-[tinyhil protocol 1, fw virtual-1]", "m-model-[vww01]", "m-ready"]


def _db_load(b):
    assert b.eembc.command("db load 7") == ["m-[Expecting 7 bytes]", "m-ready"]
    lines = b.eembc.command("db load 99999999")
    assert re.fullmatch(r"e-\[db load: 99999999 bytes do not fit: largest free block \d+\]", lines[0])


def _db_hex(b):
    b.eembc.command("db load 3")
    assert b.eembc.command("db 0a0b") == ["m-ready"]
    assert b.eembc.command("db 0c0d0e") == ["m-load-done", "m-ready"]
    assert b.eembc.buffer() == bytes.fromhex("0a0b0c")


def _db_print(b):
    b.eembc.command("db load 10")
    b.eembc.command("db " + bytes(range(10)).hex())
    assert b.eembc.command("db print") == ["m-buffer-00-01-02-03-04-05-06-07", "m-buffer-08-09", "m-ready"]
    assert b.eembc.command("db print 3 8") == ["m-buffer-08-09", "m-ready"]


def _db(b):
    assert b.eembc.command("db") == ["e-[Command 'db' requires a subcommand]", "m-ready"]


def _db_load_no_size(b):
    assert b.eembc.command("db load") == ["e-[Command 'db load' requires the # of bytes]", "m-ready"]


def _db_load_zero(b):
    assert b.eembc.command("db load 0") == ["e-[Command 'db load' must be >0 bytes]", "m-ready"]


def _db_odd_hex(b):
    b.eembc.command("db load 4")
    assert b.eembc.command("db 0a0") == ["e-[Insufficent number of hex digits]", "m-ready"]


def _db_bad_hex(b):
    b.eembc.command("db load 4")
    assert b.eembc.command("db 0a0z") == ["e-[Invalid hex digit '0z']", "m-ready"]
    assert b.eembc.command("db print") == ["m-buffer-0a-00-00-00", "m-ready"]  # the byte before it is kept


def _timestamp(b):
    first = b.eembc.command("timestamp")
    assert len(first) == 2 and re.fullmatch(r"m-lap-us-\d+", first[0])
    assert b.eembc.timestamp() >= int(first[0].rsplit("-", 1)[1])


def _infer_n_w(b):
    window_us = simulated_window_us(b, 3)
    b.eembc.load(b.inputs[2])
    lines = b.eembc.command("infer 3 1")
    assert [re.sub(r"\d+$", "#", line) for line in lines[:6]] == [
        "m-warmup-start-#",
        "m-warmup-done",
        "m-infer-start-#",
        "m-lap-us-#",
        "m-lap-us-#",
        "m-infer-done",
    ]
    assert lines[0] == "m-warmup-start-1" and lines[2] == "m-infer-start-3"
    start, end = (int(line.rsplit("-", 1)[1]) for line in lines[3:5])
    assert end - start == window_us
    assert lines[6].startswith("m-results-[") and lines[7:] == ["m-ready"]
    assert np.allclose([float(v) for v in lines[6][11:-1].split(",")], b.host[2], rtol=1e-6, atol=1e-7)
    b.tiny.send_data("input", b.inputs[2])  # after tinyhil's db input the same command is tinyhil's
    lines = b.eembc.command("infer 3 1")
    assert [line.rsplit("-", 1)[0] for line in lines[:4]] == [
        "m-lap-cycles-0",
        "m-lap-cycles-1",
        "m-lap-cycles-2",
        "m-cpu-mhz",
    ]


def _infer_n(b):
    b.eembc.load(b.inputs[0])
    lines = b.eembc.command("infer 2")
    assert lines[0] == "m-warmup-start-10" and lines[2] == "m-infer-start-2"


def _infer(b):
    b.eembc.load(b.inputs[0])  # its own input: under xdist the rows run in any order, on any worker
    lines = b.eembc.command("infer")
    assert lines[0] == "m-warmup-start-10" and lines[2] == "m-infer-start-1" and lines[5] == "m-infer-done"


def _infer_zero(b):
    assert b.eembc.command("infer 0") == ["e-[Inference iterations must be >0]", "m-ready"]


def _infer_negative_warmup(b):
    b.eembc.load(b.inputs[0])
    assert b.eembc.command("infer 1 -1") == ["e-[Inference warmup must be >=0]", "m-ready"]
    b.tiny.send_data("input", b.inputs[0])
    assert b.eembc.command("infer 1 -1")[0].startswith("e-[bad arguments for infer")


def _infer_too_many(b):
    assert b.eembc.command("infer 1000001") == ["e-[Inference iterations must be <=1000000]", "m-ready"]
    assert b.eembc.command("infer 4294967295") == ["e-[Inference iterations must be <=1000000]", "m-ready"]


def _infer_too_much_warmup(b):
    b.eembc.load(b.inputs[0])
    assert b.eembc.command("infer 1 1001") == ["e-[Inference warmup must be <=1000]", "m-ready"]


def _results(b):
    b.eembc.load(b.inputs[1])
    r = b.eembc.infer(1, 0)
    lines = b.eembc.command("results")
    assert lines == [next(line for line in r.lines if line.startswith("m-results-")), "m-ready"]
    assert np.allclose(r.results, b.host[1], rtol=1e-6, atol=1e-7)


def _help(b):
    assert b.eembc.command("help") == [f"m-help-{name}" for name, _ in firmware_commands()] + ["m-ready"]


def _unknown(b):
    assert b.eembc.command("fly") == ["e-[Unknown command: fly]", "m-ready"]


def _boot(b):
    assert b.banner[0] == "m-boot-tinyhil"
    assert b.banner[-3:] == ["m-timestamp-mode-performance", "m-init-done", "m-ready"]


ROW_CHECKS = {
    "`name%`": _name,
    "`profile%`": _profile,
    "`db load N%`": _db_load,
    "`db <hex>%`": _db_hex,
    "`db print%`": _db_print,
    "`db%`": _db,
    "`db load%`": _db_load_no_size,
    "`db load 0%`": _db_load_zero,
    "`db <odd hex>%`": _db_odd_hex,
    "`db <bad hex>%`": _db_bad_hex,
    "`timestamp%`": _timestamp,
    "`infer N W%`": _infer_n_w,
    "`infer N%`": _infer_n,
    "`infer%`": _infer,
    "`infer 0%`": _infer_zero,
    "`infer N -1%`": _infer_negative_warmup,
    "`infer N%`, N > 1000000": _infer_too_many,
    "`infer N W%`, W > 1000": _infer_too_much_warmup,
    "`results%`": _results,
    "`help%`": _help,
    "`fly%` (unknown)": _unknown,
    "(boot)": _boot,
}


def test_every_row_of_the_compatibility_table_has_a_check():
    assert compatibility_rows() == list(ROW_CHECKS)


@pytest.mark.parametrize("row", list(ROW_CHECKS))
def test_compatibility_row(bench, row):
    ROW_CHECKS[row](bench)


@pytest.mark.parametrize(
    "call, replies, message",
    [
        (lambda c: c.name(), {"name": ["m-name-tinyhil-esp32", "m-ready"]}, "no m-name-dut"),
        (lambda c: c.profile(), {"profile": ["m-profile-[x]", "m-ready"]}, "m-model"),
        (lambda c: c.load(b"\x01"), {"db load 1": ["e-[argument longer than 31 characters]", "m-ready"]}, "Expecting"),
        (
            lambda c: c.load(b"\x01"),
            {"db load 1": ["m-[Expecting 1 bytes]", "m-ready"], "db 01": ["m-ready"]},
            "load-done",
        ),
        (
            lambda c: c.load(b"\x01"),
            {"db load 1": ["m-[Expecting 1 bytes]", "m-ready"], "db 01": ["e-[bad arguments for db]", "m-ready"]},
            "refused",
        ),
        (lambda c: c.infer(1, 0), {"infer 1 0": ["m-lap-cycles-0-100", "m-results-[1]", "m-ready"]}, "m-lap-us"),
        (lambda c: c.results(), {"results": ["e-[Unknown command: results]", "m-ready"]}, "m-results"),
        (lambda c: c.timestamp(), {"timestamp": ["m-ready"]}, "m-lap-us"),
    ],
)
def test_client_refuses_replies_the_runner_could_not_read(call, replies, message):
    with pytest.raises(EembcError, match=message):
        call(EembcClient(ScriptedLink(replies=replies)))


def test_command_line_client(tmp_path, converted, tiny_data, capsys):
    vb = start_virtual_board("esp32-wroom-32", tmp_path)
    try:
        link = SerialLink(vb.port)
        _read_banner(link)
        tiny = DeviceClient(link, timeout_s=10)
        model = converted[("C_2", "full_int")].tflite
        vb.flash_file.write_bytes(model)
        dm = tiny.load_model("partition", model, "auto", "flash")
        qin = QuantParams(dm.input_dtype, dm.input_scale, dm.input_zero_point)
        (tmp_path / "x.bin").write_bytes(quantize(tiny_data[0][:1], qin).tobytes())
        link.close()
        assert main(["--port", vb.port, "--input", str(tmp_path / "x.bin"), "--runs", "4"]) == 0
    finally:
        vb.stop()
    out = capsys.readouterr().out
    assert "name: tinyhil-esp32" in out and "model: none" in out and "4 inferences in" in out
