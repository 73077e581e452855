"""TFLM's arena_used_bytes() against the smallest arena a model loads in, on the firmware built for Linux.

Usage::

    python benchmarks/arena_table.py --tflm PATH/esp-tflite-micro MODEL.tflite [MODEL.tflite ...]

Builds (or reuses) the firmware's host build of the esp-tflite-micro folder (32-bit when the
compiler can, reference kernels), starts it as a virtual board, and for each model: writes it to
the model partition, loads it with ``auto`` (the board reports ``m-arena-used-bytes``, TFLM's
figure, and ``m-arena-min-bytes``, its own search), loads it again with exactly the minimum, and
once more with one byte less, which must be refused. Prints a table. A model larger than the
board's model partition is listed as refused, with the board's words. The figures are the host
build's: 32-bit pointers like the ESP32, but not the ESP32.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tflm", required=True, type=Path, help="esp-tflite-micro source folder")
    p.add_argument("--board", default="esp32-wroom-32", help="board profile (default: esp32-wroom-32)")
    p.add_argument("models", nargs="+", type=Path, help=".tflite files")
    args = p.parse_args(argv)
    from tinyhil.models.boards import get_board
    from tinyhil.plugins.bench.boards.virtual_process import start_firmware_board
    from tinyhil.plugins.bench.link.device import DeviceClient, DeviceError
    from tinyhil.plugins.bench.link.serial_link import SerialLink
    from tinyhil.plugins.firmware_tools.host_build import build, cached_build_dir, resolve_bits

    tflm, bits = args.tflm.resolve(), resolve_bits("auto")
    print(f"building the firmware for Linux ({bits}-bit) against {tflm} ...", file=sys.stderr, flush=True)
    binary = build(tflm, None, bits, cached_build_dir(tflm, None, bits), jobs=2, log=lambda _: None)
    print(
        "| model | TFLM's arena_used_bytes | smallest that loads (m-arena-min-bytes) | with exactly that | one byte less | load s |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        vb = start_firmware_board(binary, get_board(args.board), Path(d))
        try:
            client = DeviceClient(SerialLink(vb.port), 60)
            client.resync()
            for path in args.models:
                model = path.read_bytes()
                vb.flash_file.write_bytes(model)
                t0 = time.monotonic()
                try:
                    dm = client.load_model("partition", model, "auto", "flash")
                except DeviceError as e:
                    print(f"| {path.stem} | refused: {e} | | | | |")
                    continue
                took = time.monotonic() - t0
                at = client.load_model("partition", model, dm.arena_min_bytes, "flash").arena_bytes
                try:
                    client.load_model("partition", model, dm.arena_min_bytes - 1, "flash")
                    below = "loads (!)"
                except DeviceError as e:
                    below = "refused" if "is below the" in str(e) else str(e)
                print(
                    f"| {path.stem} | {dm.arena_used_bytes:,} | {dm.arena_min_bytes:,} | loads ({at:,} B) "
                    f"| {below} | {took:.2f} |"
                )
        finally:
            vb.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
