"""Seconds to get a board's answer for a whole test split: one window per round trip
(``db input`` + ``infer``, the protocol before ``classify%``) against ``classify%``
(windows streamed back to back), on a virtual board whose serial link is paced at each baud.
``--agreement`` instead times the windows of a case three ways on one virtual board:
``--device-windows all`` (every window streamed), ``auto`` streamed (the sequential agreement
test, until it proves agreement), and ``auto`` from the board's windows partition (written once
a session, then classified by index: ``classify windows``), with the partition's one-off write.

Usage::

    python benchmarks/bench_windows.py                              # 2,575 windows, int8 and float32
    python benchmarks/bench_windows.py --bauds 921600 --windows 1080 --round-trip-windows 50
    python benchmarks/bench_windows.py --agreement --bauds 921600   # all against auto

``--windows`` defaults to 2,575, the size of a UCI-HAR-sized test split (25 % of 10,299 windows);
the windows are random (only their size and the protocol matter here), and the model is
C_1 of Table 1 converted ``full_int`` (int8 input: 1,152 B a window) and ``lite`` (float32:
4,608 B), from an offline run this script starts (it fills the model cache). The round-trip
path is timed on ``--round-trip-windows`` windows and scaled to the split (it takes minutes
at 115,200 Bd), and says so. The Python virtual board's per-window work is host TFLM in
Python; the link's pacing, not the model, dominates from 115,200 Bd to 2,000,000 Bd.
Also prints the seconds a model write takes at esptool's rate, computed from bytes and
baud (the virtual board's partition write is paced the same way; esptool's compression and
flash erase are not modelled).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinyhil.models.tflm import QuantParams, quantize  # noqa: E402
from tinyhil.plugins.bench.boards.virtual_process import start_virtual_board  # noqa: E402
from tinyhil.plugins.bench.link.delivery import FlashFileDelivery  # noqa: E402
from tinyhil.plugins.bench.link.device import DeviceClient  # noqa: E402
from tinyhil.plugins.bench.link.serial_link import SerialLink  # noqa: E402
from tinyhil.plugins.bench.link.windows import build_image  # noqa: E402
from tinyhil.plugins.bench.measure.agreement import AgreementTest, run_sequential  # noqa: E402
from tinyhil.plugins.bench.measure.steps import classify_in_order  # noqa: E402


def models(report_dir: Path) -> dict[str, bytes]:
    """C_1 full_int and lite, converted by an offline run (trained from the cache when it holds them)."""
    argv = [sys.executable, "-m", "pytest", "-m", "offline", "-q", "-p", "no:randomly", "--networks=C_1"]
    argv += ["--techniques=lite,full_int", f"--report-dir={report_dir}"]
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
    return {t: (report_dir / "models" / f"C_1-{t}.tflite").read_bytes() for t in ("full_int", "lite")}


def windows_for(dtype: str, window_bytes: int, count: int) -> list[bytes]:
    """Random windows of the model's input type (the protocol carries bytes; values do not matter here)."""
    rng = np.random.default_rng(0)
    n = window_bytes // np.dtype(dtype).itemsize
    raw = rng.normal(size=(count, n)) if dtype.startswith("float") else rng.integers(-100, 100, size=(count, n))
    return [row.astype(dtype).tobytes() for row in raw]


@contextlib.contextmanager
def loaded_board(model: bytes, baud: int):
    """A paced virtual board with ``model`` written and loaded: (client, the board's model report,
    seconds the write and load took, the board's process)."""
    vb = start_virtual_board("esp32-wroom-32", baud=baud)
    link = SerialLink(vb.port, baud)
    try:
        client = DeviceClient(link, timeout_s=30)
        client.wait_boot(15)
        client.sync()
        t0 = time.monotonic()
        FlashFileDelivery(vb.flash_file, baud).write(model, client)
        dm = client.load_model("partition", model, "auto", "flash")
        yield client, dm, time.monotonic() - t0, vb
    finally:
        link.close()
        vb.stop()


def measure(model: bytes, label: str, baud: int, n_split: int, n_round_trip: int, stream: bool = True) -> dict:
    with loaded_board(model, baud) as (client, dm, write_s, _):
        split = windows_for(dm.input_dtype, dm.input_bytes, n_split)
        t0 = time.monotonic()
        for w in split[:n_round_trip]:
            client.send_data("input", w)
            client.infer(1, 0)
        round_trip_s = (time.monotonic() - t0) * n_split / n_round_trip
        stream_s = None
        if stream:
            t0 = time.monotonic()
            classes = client.classify(split, int(client.info["rx-buffer-bytes"]))
            stream_s = time.monotonic() - t0
            assert len(classes) == n_split
        return {
            "label": label,
            "baud": baud,
            "window_bytes": len(split[0]),
            "round_trip_s": round_trip_s,
            "stream_s": stream_s,
            "ideal_s": n_split * len(split[0]) * 10 / baud,
            "write_s": write_s,
            "model_bytes": len(model),
        }


def host_classes(model: bytes, split: list[bytes]) -> np.ndarray:
    """Host TFLM's class of each window, from its raw bytes (what the board is compared with)."""
    from tinyhil.models.tflm import load

    interp = load(model, 1 << 20).interpreter
    det = interp.get_input_details(0)
    classes = []
    for w in split:
        interp.reset()
        interp.set_input(np.frombuffer(w, dtype=det["dtype"]).reshape(det["shape"]), 0)
        interp.invoke()
        classes.append(int(np.argmax(interp.get_output(0))))
    return np.array(classes)


def measure_agreement(model: bytes, label: str, baud: int, n_split: int, seed: int = 0) -> dict:
    """Seconds of a case's windows with ``--device-windows all``, with ``auto`` streamed, and with
    ``auto`` from the windows partition, on one paced virtual board."""
    with loaded_board(model, baud) as (client, dm, _, vb):
        qin = QuantParams(dm.input_dtype, dm.input_scale, dm.input_zero_point)
        values = dm.input_bytes // np.dtype(dm.input_dtype).itemsize
        x = np.random.default_rng(0).normal(size=(n_split, values)).astype(np.float32)  # standardised windows
        split = [quantize(w, qin).tobytes() for w in x]
        host = host_classes(model, split)
        rx_buffer = int(client.info["rx-buffer-bytes"])
        t0 = time.monotonic()
        every = client.classify(split, rx_buffer)
        all_s = time.monotonic() - t0
        order = np.random.default_rng(seed).permutation(n_split)
        t0 = time.monotonic()
        result = run_sequential(
            lambda batch: client.classify([split[i] for i in batch], rx_buffer), host, order, AgreementTest()
        )
        auto_s = time.monotonic() - t0
        image = build_image(x[order], int(client.info["windows-partition-bytes"]))
        t0 = time.monotonic()
        FlashFileDelivery(vb.flash_file, baud).write_windows(image.data, client)
        write_s = time.monotonic() - t0
        done = [0]

        def from_partition(batch):
            classes, _ = classify_in_order(client, [split[i] for i in batch], done[0], image.count, rx_buffer)
            done[0] += len(batch)
            return classes

        t0 = time.monotonic()
        stored = run_sequential(from_partition, host, order, AgreementTest())
        stored_s = time.monotonic() - t0
        return {
            "stored_s": stored_s,
            "stored_windows": len(stored.order),
            "stored_disagree": stored.disagreements,
            "write_s": write_s,
            "image_bytes": len(image.data),
            "label": label,
            "baud": baud,
            "window_bytes": len(split[0]),
            "all_s": all_s,
            "all_disagree": int(np.count_nonzero(np.array(every) != host)),
            "auto_s": auto_s,
            "auto_windows": len(result.order),
            "auto_disagree": result.disagreements,
            "outcome": result.outcome,
            "ideal_auto_s": len(result.order) * len(split[0]) * 10 / baud,
        }


def agreement_table(found: dict[str, bytes], bauds: list[int], n_split: int) -> None:
    results = []
    for baud in bauds:
        for label, model in found.items():
            print(f"  {label} at {baud} Bd, all then auto ...", flush=True)
            results.append(measure_agreement(model, label, baud, n_split))
    print(f"\n{n_split} windows in the split, virtual board paced at each rate (10 bits a byte)\n")
    print(
        "| input | baud | bytes a window | all: windows, disagree | all: s | auto streamed: windows, disagree "
        "| auto streamed: s | auto from the windows partition: windows, disagree | from the partition: s "
        "| the partition's one write, s | auto's outcome |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| C_1-{r['label']} | {r['baud']:,} | {r['window_bytes']:,} | {n_split:,}, {r['all_disagree']} "
            f"| {r['all_s']:.1f} | {r['auto_windows']:,}, {r['auto_disagree']} | {r['auto_s']:.1f} "
            f"| {r['stored_windows']:,}, {r['stored_disagree']} | {r['stored_s']:.2f} "
            f"| {r['write_s']:.1f} ({r['image_bytes'] / 1e6:.2f} MB) | {r['outcome']} |"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bauds", default="921600,2000000", help="paced rates (default: 921600,2000000)")
    ap.add_argument(
        "--before-baud",
        type=int,
        default=115_200,
        help="the rate before (default: 115200): round trips only, the whole split streamed would take minutes",
    )
    ap.add_argument("--windows", type=int, default=2575, help="windows of the split (default: 2575)")
    ap.add_argument("--round-trip-windows", type=int, default=100, help="windows timed one at a time (default: 100)")
    ap.add_argument("--agreement", action="store_true", help="time --device-windows all against auto instead")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        print("converting C_1 (offline run) ...", flush=True)
        found = models(Path(d))
    if args.agreement:
        agreement_table(found, [int(b) for b in args.bauds.split(",")], args.windows)
        return 0
    results = []
    for label, model in found.items():
        print(f"  {label} at {args.before_baud} Bd, round trips ...", flush=True)
        results.append(measure(model, label, args.before_baud, args.windows, args.round_trip_windows, stream=False))
    for baud in (int(b) for b in args.bauds.split(",")):
        for label, model in found.items():
            print(f"  {label} at {baud} Bd ...", flush=True)
            results.append(measure(model, label, baud, args.windows, args.round_trip_windows))
    print(
        f"\n{args.windows} windows, virtual board paced at each rate (10 bits a byte); "
        f"round trip: {args.round_trip_windows} windows timed, scaled to {args.windows}\n"
    )
    print(
        "| input | baud | bytes a window | one round trip a window, s | classify (streamed), s | bytes ÷ baud, s | model write + load, s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| C_1-{r['label']} | {r['baud']:,} | {r['window_bytes']:,} | {r['round_trip_s']:.1f} "
            f"| {'–' if r['stream_s'] is None else format(r['stream_s'], '.1f')} "
            f"| {r['ideal_s']:.1f} | {r['write_s']:.2f} ({r['model_bytes']:,} B) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
