"""Both sides of the protocol against the same vectors (firmware/components/tinyhil_core/test/vectors.tsv)."""

import math
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.vectors import VECTORS, load_vectors
from tinyhil.plugins.bench.link.eembc_db import DbBuffer
from tinyhil.plugins.bench.link.protocol import (
    LineAssembler,
    ProtocolError,
    crc32,
    format_command,
    format_dequantized_results,
    format_results,
    is_eembc_db,
    parse_command,
    parse_info,
    parse_results,
    resolve_infer,
    valid_model_id,
)
from tinyhil.plugins.bench.measure.latency import latency_stats

CORE = Path(__file__).resolve().parents[2] / "firmware" / "components" / "tinyhil_core"


def _check(kind, f):
    if kind == "crc32":
        data = b"" if f[1] == "-" else bytes.fromhex(f[1])
        assert f"{crc32(data):08x}" == f[2]
    elif kind == "parse":
        try:
            cmd = parse_command(f[1])
            got = "|".join([cmd.name, *cmd.args])
        except ProtocolError as e:
            got = f"error:{e}"
        assert got == f[2]
    elif kind == "stats":
        s = latency_stats([int(c) for c in f[2].split(",")], float(f[1]))
        expected = [float(v) for v in f[3].split(",")]
        got = [s.median_ms, s.mean_ms, s.std_ms, s.min_ms, s.max_ms]
        assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) for a, b in zip(got, expected, strict=True))
    elif kind == "results":
        assert format_results([float(v) for v in f[2].split(",")], f[1]) == f[3]
    elif kind == "dequant":
        assert format_dequantized_results([int(v) for v in f[3].split(",")], float(f[1]), int(f[2])) == f[4]
    elif kind == "infer":
        try:
            cmd = parse_command("infer" if f[1] == "-" else f"infer {f[1]}")
            r = resolve_infer(cmd.args, f[2])
            got = f"{r.form},{r.runs},{r.warmup}"
        except ProtocolError as e:
            got = f"error:{e}"
        assert got == f[3]
    elif kind == "modelid":
        assert ("ok" if valid_model_id(f[1]) else "bad") == f[2]
    elif kind == "db":
        assert _db_session(int(f[1]), f[2].split(";")) == f[3]
    else:
        pytest.fail(f"unknown vector kind {kind}")


def _db_session(capacity: int, commands: list[str]) -> str:
    """Replies of a ``db`` vector's commands, in the vectors' notation (``;`` per command, ``|`` per line)."""

    def reserve(n: int) -> None:
        if n > capacity:
            raise ProtocolError(f"db load: {n} bytes do not fit: largest free block {capacity}")

    buffer, replies = DbBuffer(), []
    for text in commands:
        cmd = parse_command(text)
        lines = buffer.handle(cmd.args, reserve) if is_eembc_db(cmd.args) else ["not an EEMBC db command"]
        replies.append("|".join(lines) or "-")
    return ";".join(replies)


@pytest.mark.parametrize("number, fields", load_vectors(), ids=lambda v: str(v) if isinstance(v, int) else v[0])
def test_python_side_meets_the_vectors(number, fields):
    _check(fields[0], fields)


def test_cpp_core_meets_the_same_vectors(tmp_path):
    if shutil.which("g++") is None:
        pytest.skip("no g++ on this machine")
    exe = tmp_path / "test_core"
    subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            str(CORE / "tinyhil_core.cc"),
            str(CORE / "test" / "test_core.cc"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    res = subprocess.run([str(exe), str(VECTORS)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    n_vectors = len(load_vectors())
    assert res.stdout.strip().endswith(f"{n_vectors + 2} passed, 0 failed")


def test_command_formatting_and_assembly():
    assert format_command("infer", 10, 1) == b"infer 10 1%"
    with pytest.raises(ProtocolError, match="line too long"):
        format_command("db", "x" * 200)
    # the MLPerf Tiny runner's input chunk: 31 bytes as 62 hex digits in one argument
    assert format_command("db", "ab" * 31) == b"db " + b"ab" * 31 + b"%"
    asm = LineAssembler()
    events = [e for ch in "\r\nname%infer 1 0%" if (e := asm.feed(ch))]
    assert events == [("command", "name"), ("command", "infer 1 0")]
    events = [e for ch in "x" * 300 + "%" if (e := asm.feed(ch))]
    assert events == [("too_long", "")]


def test_results_and_info_round_trip():
    assert parse_results(format_results([-128, 0, 127], "int8")) == [-128, 0, 127]
    info = parse_info(
        ["m-info-fw-sha256-abc", "m-info-heap-free-1234", "m-info-idf-v5.3.1", "m-info-reset-reason-panic"]
    )
    assert info == {"fw-sha256": "abc", "heap-free": "1234", "idf": "v5.3.1", "reset-reason": "panic"}


def test_command_table_parser_refuses_what_it_cannot_read(tmp_path):
    from tinyhil.plugins.firmware_tools.commands import firmware_commands

    good = tmp_path / "good.def"
    good.write_text('// comment\nTINYHIL_COMMAND(name, CmdName, "board name")\nTINYHIL_COMMAND(db, CmdDb, "data")\n')
    assert firmware_commands(good) == [("name", "board name"), ("db", "data")]
    empty = tmp_path / "empty.def"
    empty.write_text("// nothing\n")
    with pytest.raises(ValueError, match="empty.def"):
        firmware_commands(empty)
    broken = tmp_path / "broken.def"
    broken.write_text("TINYHIL_COMMAND(name, CmdName)\n")
    with pytest.raises(ValueError, match="broken.def"):
        firmware_commands(broken)


def test_a_line_may_end_in_any_run_of_cr_before_lf():
    """ESP-IDF's console turns \\n into \\r\\n; TFLM's \\r\\n arrives as \\r\\r\\n. No line may be lost."""
    from tinyhil.plugins.bench.link.device import DutLink

    for ending in (b"\n", b"\r\n", b"\r\r\n"):
        m = DutLink._LINE.search(b"m-arena-bytes-5456" + ending + b"m-ready\r\n")
        assert m.group(1) == b"m-arena-bytes-5456", ending


def test_resync_is_not_fooled_by_a_boot_banner_still_arriving():
    """The link opened in the middle of the power-on banner, whose m-protocol-… and m-ready came
    before the answers to resync's own "%" and version%: taken for the answer, they left both
    replies for the next command, which read e-[empty command] (seen on a loaded machine)."""
    from tests.unit.links import ScriptedLink
    from tinyhil.plugins.bench.link.device import DeviceClient

    banner_tail = ["m-protocol-1", "m-info-fw-virtual-1", "m-init-done", "m-ready"]
    answers = ["e-[empty command]", "m-ready", "m-protocol-1", "m-fw-tinyhil-firmware", "m-ready"]
    client = DeviceClient(ScriptedLink([*banner_tail, *answers, "m-name-dut-[tinyhil-esp32]", "m-ready"]), 1)
    client.resync()
    assert client.command("name").messages == ["m-name-dut-[tinyhil-esp32]"]
