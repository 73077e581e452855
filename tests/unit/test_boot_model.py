"""Ready after a boot, as MLPerf Tiny's energy mode needs (it power-cycles the DUT).

A board remembers the last model loaded from the partition (length, CRC, arena, placement, model
id) and loads it again at boot: ``m-boot-model-[…]`` in the banner. ``model%`` forgets it; a
partition that holds other bytes now, or a load the last boot did not finish, makes the boot say
so and forget it (``firmware/PROTOCOL.md``, "Boot"). The scenario is written once, for any board
on a link: here on the Python virtual board, and in ``test_firmware_host.py`` on the firmware's
host build too.
"""

from __future__ import annotations

from pathlib import Path

from tinyhil.plugins.bench.link.eembc import EembcClient
from tinyhil.plugins.bench.link.protocol import crc32

TIMESTAMP_MODE = "m-timestamp-mode-performance"


def command(link, text: str) -> list[str]:
    """The protocol lines (``m-…``, ``e-[…]``) a board answers to one command, up to ``m-ready``."""
    link.write(text.encode() + b"%")
    lines = []
    while (line := link.read_line(30).strip()) != "m-ready":
        if line.startswith(("m-", "e-[")):
            lines.append(line)
    return lines


def reset(link) -> list[str]:
    """``reset%``, then the new banner's protocol lines after its ``m-info`` lines, up to ``m-ready``."""
    assert command(link, "reset") == ["m-reset"]
    while link.read_line(30).strip() != "m-boot-tinyhil":
        pass
    lines = []
    while (line := link.read_line(30).strip()) != "m-ready":
        if line.startswith(("m-", "e-[")) and not line.startswith(("m-info-", "m-protocol-")):
            lines.append(line)
    assert lines[-2:] == [TIMESTAMP_MODE, "m-init-done"], lines  # EEMBC's lines stay last
    return lines[:-2]


def boot_model_file(flash_file: Path) -> Path:
    """Where a virtual board remembers its boot model: beside its flash file."""
    return flash_file.with_name(flash_file.name + ".boot-model")


def ready_after_boot(link, flash_file: Path, model: bytes, input_bytes: bytes) -> None:
    """The scenario on one board (a link past its banner, its flash file, a model, one input)."""
    from tinyhil.plugins.bench.link.device import DeviceClient

    head = f"{len(model)} {crc32(model):08x}"
    fields = head.replace(" ", ",")
    eembc, tiny = EembcClient(link, timeout_s=30), DeviceClient(link, 30)

    # loaded from the partition with an id: the next boot loads it again and presents the id
    flash_file.write_bytes(model)
    loaded = command(link, f"model partition {head} auto flash")
    used = int(next(x for x in loaded if x.startswith("m-arena-used-bytes-")).rsplit("-", 1)[1])
    assert command(link, "model_id kws01") == ["m-model-[kws01]"]
    assert reset(link) == [f"m-boot-model-[kws01,{fields},auto,flash]"]
    assert eembc.profile()[1] == "kws01"  # the runner's get_model
    eembc.load(input_bytes)  # the runner sends its input again after a power cycle
    first = eembc.infer(1, 0)  # m-lap-us and results, with no model% since the boot
    assert first.end_us >= first.start_us and first.results
    tiny.send_data("input", input_bytes)  # tinyhil's form too
    assert any(x.startswith("m-lap-cycles-0-") for x in command(link, "infer 1 0"))

    # a model id set after the boot is remembered too
    assert command(link, "model_id ic01") == ["m-model-[ic01]"]
    assert reset(link) == [f"m-boot-model-[ic01,{fields},auto,flash]"]
    eembc.load(input_bytes)
    assert eembc.infer(1, 0).results == first.results  # the same model, the same answer

    # model% unloads it and forgets it: the next boot has no model
    assert command(link, "model") == ["m-model-unloaded"]
    assert command(link, "infer 1 0") == ["e-[infer: no model]"]
    assert command(link, "model_id") == ["m-model-[none]"]
    assert reset(link) == []
    assert eembc.profile()[1] == "none"
    assert command(link, "infer 1 0") == ["e-[infer: no model]"]

    # an explicit arena and ram are remembered as given
    arena = used + 4096
    assert any(x.startswith("m-arena-bytes-") for x in command(link, f"model partition {head} {arena} ram"))
    assert reset(link) == [f"m-boot-model-[none,{fields},{arena},ram]"]

    # a partition rewritten with other bytes: the boot says the CRC no longer matches and forgets it
    other = bytes(b ^ 0xFF for b in model[:64]) + model[64:]
    flash_file.write_bytes(other)
    assert reset(link) == [
        f"e-[boot model: crc mismatch: got {crc32(other):08x} expected {crc32(model):08x}; none forgotten]"
    ]
    assert command(link, "infer 1 0") == ["e-[infer: no model]"]
    assert reset(link) == []  # forgotten: said once

    # a load the last boot did not finish (it crashed the board) is not tried again: no boot loop
    flash_file.write_bytes(model)
    command(link, f"model partition {head} auto ram")
    state = boot_model_file(flash_file)
    assert state.read_text().split() == ["tinyhil-boot-model", "1", "ready", "none", *head.split(), "auto", "ram"]
    state.write_text(state.read_text().replace(" ready ", " loading "))
    assert reset(link) == ["e-[boot model: none did not finish loading at the last boot; forgotten]"]
    assert not state.exists()
    assert reset(link) == []

    # an upload is not remembered (its bytes are gone after a reset), and it replaces the partition's
    command(link, f"model partition {head} auto flash")
    tiny.send_data("model", model)
    tiny.load_model("upload", model, "auto", "ram")
    assert reset(link) == []


def test_the_python_board_is_ready_after_a_boot(tmp_path, converted, tiny_data):
    from tinyhil.models.tflm import QuantParams, quantize
    from tinyhil.plugins.bench.boards.virtual_process import start_virtual_board
    from tinyhil.plugins.bench.link.device import DeviceClient
    from tinyhil.plugins.bench.link.serial_link import SerialLink

    model = converted[("C_2", "full_int")].tflite
    vb = start_virtual_board("esp32-wroom-32", tmp_path)
    try:
        link = SerialLink(vb.port)
        client = DeviceClient(link, 30)
        client.resync()
        vb.flash_file.write_bytes(model)
        dm = client.load_model("partition", model, "auto", "flash")
        window = quantize(tiny_data[0][:1], QuantParams(dm.input_dtype, dm.input_scale, dm.input_zero_point))
        ready_after_boot(link, vb.flash_file, model, window.tobytes())
    finally:
        vb.stop()
