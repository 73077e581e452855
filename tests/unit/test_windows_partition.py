"""The windows partition: the test windows written once a session, classified by index
(``classify windows``), each converted by the board to the model's input type exactly as the host
converts it; on the Python board (CI) and on the firmware's host build (with TINYHIL_TFLM_SOURCE)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.unit.subrun import read_csv, run
from tinyhil.models.tflm import QuantParams, quantize
from tinyhil.plugins.bench.link.windows import HEADER, build_image, capacity, parse_header

TFLM = Path(os.environ["TINYHIL_TFLM_SOURCE"]) if os.environ.get("TINYHIL_TFLM_SOURCE") else None
BOARDS = [
    pytest.param("python", id="python-board"),
    pytest.param(
        "firmware",
        id="firmware-host-build",
        marks=pytest.mark.skipif(TFLM is None, reason="set TINYHIL_TFLM_SOURCE to build the firmware for Linux"),
    ),
]


def test_an_image_holds_what_fits_and_reads_back():
    x = np.random.default_rng(1).normal(size=(50, 128, 9)).astype(np.float32)
    part = HEADER.size + 20 * 1152 * 4 + 100  # room for 20 windows and a bit
    image = build_image(x, part)
    assert capacity(part, 1152) == 20 and image.count == 20 and len(image.data) == HEADER.size + 20 * 4608
    stored = parse_header(image.data)
    assert stored.holds(image) and stored.values == 1152
    assert np.array_equal(np.frombuffer(image.data[HEADER.size :], "<f4").reshape(20, 128, 9), x[:20])
    assert parse_header(b"\xff" * 64).count == 0  # erased flash holds nothing


def _board(which: str, tmp_path: Path):
    from tests.unit.test_firmware_host import _binary
    from tinyhil.models.boards import get_board
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board, start_virtual_board

    if which == "python":
        return start_virtual_board("esp32-wroom-32", tmp_path)
    return start_firmware_board(_binary(), get_board("esp32-wroom-32"), tmp_path)


@pytest.mark.parametrize("which", BOARDS)
def test_stored_windows_are_classified_as_the_same_windows_streamed(tmp_path, converted, which):
    """Each stored float32 window, converted on the board (float32, int8), gives the class the
    same bytes give streamed, and the CRC of the board's conversion is the host's: the board
    classified exactly what host TFLM is compared on."""
    from tinyhil.plugins.bench.link.delivery import FlashFileDelivery
    from tinyhil.plugins.bench.link.device import DeviceClient, DeviceErrorResponse
    from tinyhil.plugins.bench.link.serial_link import SerialLink

    vb = _board(which, tmp_path)
    try:
        client = DeviceClient(SerialLink(vb.port), 30)
        client.resync()
        info = client.sync()
        assert int(info["windows-partition-bytes"]) == 1_507_328
        assert client.stored_windows().count == 0  # erased
        x = np.random.default_rng(2).normal(size=(40, 128, 9)).astype(np.float32)
        image = build_image(x, int(info["windows-partition-bytes"]))
        assert FlashFileDelivery(vb.flash_file).write_windows(image.data, client)
        assert client.stored_windows().holds(image)
        for tech in ("lite", "full_int"):
            model = converted[("C_2", tech)].tflite
            FlashFileDelivery(vb.flash_file).write(model, client)
            dm = client.load_model("partition", model, "auto", "flash")
            qin = QuantParams(dm.input_dtype, dm.input_scale, dm.input_zero_point)
            windows = [quantize(w[None], qin).tobytes() for w in x]
            streamed = client.classify(windows, int(info["rx-buffer-bytes"]))
            assert client.classify_stored(0, windows[:25]) == streamed[:25], tech
            assert client.classify_stored(25, windows[25:]) == streamed[25:], tech
        with pytest.raises(DeviceErrorResponse, match=r"classify: windows 35\.\.44 are not stored \(40 stored\)"):
            client.classify_stored(35, windows[:10])
        with pytest.raises(DeviceErrorResponse, match="classify: crc mismatch"):
            client.classify_stored(0, [b"\0" * len(windows[0])] * 3)
        FlashFileDelivery(vb.flash_file).write_windows(build_image(x.reshape(40, -1)[:, :100], 1 << 20).data, client)
        with pytest.raises(DeviceErrorResponse, match="stored windows hold 100 values, the model takes 1152"):
            client.classify_stored(0, windows[:1])
        assert vb.proc.poll() is None
    finally:
        vb.stop()


def test_a_bench_run_writes_the_windows_once_and_reads_them_for_every_case(project):
    """With auto, each case's windows come from the board's windows partition: the first case
    writes them (bench_windows_write_s), the next finds them there; the verdicts and figures are
    those of a board without the partition, whose windows travel with each case."""
    doc = json.loads((Path(__file__).parents[2] / "models/data/boards/esp32-wroom-32.json").read_text())
    doc.update(name="no-windows-partition", windows_partition_bytes=0)
    (project.path / "no-windows.json").write_text(json.dumps(doc))
    common = ("-m", "hil", "--virtual-board", "--networks=C_1", "--techniques=lite,full_int")
    run(project, *common).assert_outcomes(passed=2)
    run(project, *common, "--board=no-windows.json", "--report-dir=streamed").assert_outcomes(passed=2)
    stored, streamed = read_csv(project), read_csv(project, "streamed")
    for a, b in zip(stored, streamed, strict=True):
        assert a["device_windows_stored"] == a["device_windows"] == "299" and b["device_windows_stored"] == "0"
        for col in ("status", "device_windows", "device_agreement", "acc_device", "acc_tflm"):
            assert a[col] == b[col], (col, a[col], b[col])
    assert stored[0]["bench_windows_write_s"] and not stored[1]["bench_windows_write_s"]
