"""TFLM's own published models on both virtual boards, against the firmware's op list.

Set ``TINYHIL_TFLM_MODELS`` to a folder holding ``.tflite`` files from TFLM's repository (for
example ``keyword_scrambled.tflite`` from ``tensorflow/lite/micro/models``, whose SVDF the firmware
registers); with ``TINYHIL_TFLM_SOURCE`` the firmware's host build runs them too. Without the
models these tests skip: CI cannot download them.
"""

import os
from pathlib import Path

import pytest

from tests.unit.subrun import read_csv, run, virtual_boards

MODELS = Path(os.environ["TINYHIL_TFLM_MODELS"]) if os.environ.get("TINYHIL_TFLM_MODELS") else None
KEYWORD = MODELS / "keyword_scrambled.tflite" if MODELS else None

needs_models = pytest.mark.skipif(
    KEYWORD is None or not KEYWORD.exists(),
    reason="set TINYHIL_TFLM_MODELS to a folder with TFLM's keyword_scrambled.tflite",
)


@needs_models
@pytest.mark.parametrize("board", virtual_boards())
def test_tflms_svdf_keyword_model_runs_on_the_virtual_boards(project, board):
    res = run(project, "-m", "hil", "--virtual-board", *board, f"--networks={KEYWORD}", "--device-windows=5")
    (row,) = read_csv(project)
    assert row["status"] == "ok", (row["reason"], res.stdout.str()[-3000:])
    assert float(row["latency_ms_median"]) > 0 and int(row["arena_bytes"]) > 0


@needs_models
def test_the_host_verdict_takes_the_svdf_keyword_model(project):
    run(project, "-m", "offline", f"--networks={KEYWORD}")
    (row,) = read_csv(project)
    assert row["status"] == "ok", row["reason"]


TFLM = Path(os.environ["TINYHIL_TFLM_SOURCE"]) if os.environ.get("TINYHIL_TFLM_SOURCE") else None


@needs_models
@pytest.mark.skipif(TFLM is None, reason="set TINYHIL_TFLM_SOURCE to build the firmware for Linux")
def test_the_firmware_finds_the_arena_each_published_model_loads_in_without_crashing(tmp_path):
    """TFLM's arena_used_bytes() is below the arena some models need (keyword_scrambled: 13,244 B
    used, 15,580 B needed), and stock TFLM crashed in 1,136 of the sizes between (its allocator's
    size_t subtraction wrapped): the firmware's search went through them and rebooted. Each model
    now loads with exactly the m-arena-min-bytes it reports, one byte less is refused, and the
    board never reboots."""
    from tests.unit.test_firmware_host import _binary
    from tinyhil.models.boards import get_board
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board
    from tinyhil.plugins.bench.link.device import DeviceClient, DeviceErrorResponse
    from tinyhil.plugins.bench.link.serial_link import SerialLink

    board = get_board("esp32-wroom-32")
    vb = start_firmware_board(_binary(), board, tmp_path)
    try:
        client = DeviceClient(SerialLink(vb.port), 60)
        client.resync()
        checked = []
        for path in sorted(MODELS.glob("*.tflite")):
            model = path.read_bytes()
            if len(model) > board.model_partition_bytes:
                continue
            vb.flash_file.write_bytes(model)
            dm = client.load_model("partition", model, "auto", "flash")
            assert dm.arena_used_bytes <= dm.arena_min_bytes, path.name
            assert client.load_model("partition", model, dm.arena_min_bytes, "flash").arena_bytes == dm.arena_min_bytes
            with pytest.raises(DeviceErrorResponse, match="is below the"):
                client.load_model("partition", model, dm.arena_min_bytes - 1, "flash")
            checked.append(path.name)
        assert "keyword_scrambled.tflite" in checked and vb.proc.poll() is None
    finally:
        vb.stop()
