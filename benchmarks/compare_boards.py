"""Runs the same cases on host TFLM, the Python virtual board and the firmware's own code
built for Linux, and prints verdicts, agreement with host TFLM and arena figures side by side.

    python benchmarks/compare_boards.py --tflm-source PATH/esp-tflite-micro [--esp-nn-source PATH/esp-nn]

By default C_1, C_3 and CL_3 with lite, dynamic and full_int (issue 11's matrix), on the
built-in generated data. With --esp-nn-source a fourth column runs the firmware built with
ESP-NN's C kernels (a plain ESP32 build's kernels). Each board writes its own report folder
under --out; the table is printed last. Latencies are not compared: the virtual boards'
are simulated and the host build's are host time.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(name: str, out: Path, args: list[str], common: list[str]) -> dict[tuple[str, str], dict]:
    report = out / name
    argv = [sys.executable, "-m", "pytest", *args, *common, f"--report-dir={report}", "-q", "-p", "no:cacheprovider"]
    print(f"== {name}: {' '.join(argv[1:])}", flush=True)
    r = subprocess.run(argv, cwd=ROOT)
    csv_path = report / "results.csv"
    if not csv_path.is_file():
        sys.exit(f"{name}: no results.csv (pytest exit {r.returncode})")
    with open(csv_path, newline="") as f:
        return {(row["network"], row["technique"]): row for row in csv.DictReader(f)}


def cell(row: dict | None, host: bool = False) -> str:
    if row is None:
        return "–"
    text = row["status"]
    if row["arena_bytes"]:
        text += f", arena {row['arena_bytes']} B ({row['arena_pointer_bits'] or '?'}-bit)"
    if not host and row["device_agreement"]:
        text += f", agreement {float(row['device_agreement']):.0%} of {row['device_windows']}"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tflm-source", required=True, help="esp-tflite-micro source folder")
    ap.add_argument("--esp-nn-source", default="", help="esp-nn source folder: adds the ESP-NN build")
    ap.add_argument("--networks", default="C_1,C_3,CL_3")
    ap.add_argument("--techniques", default="lite,dynamic,full_int")
    ap.add_argument("--device-windows", default="50")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "compare-boards")
    args = ap.parse_args(argv)
    common = [
        f"--networks={args.networks}",
        f"--techniques={args.techniques}",
        f"--device-windows={args.device_windows}",
    ]
    boards = {
        "host": run("host", args.out, ["-m", "offline"], common),
        "python": run("python-virtual-board", args.out, ["-m", "hil", "--virtual-board"], common),
        "firmware": run("firmware-host", args.out, ["-m", "hil", f"--tflm-source={args.tflm_source}"], common),
    }
    if args.esp_nn_source:
        boards["esp-nn"] = run(
            "firmware-host-esp-nn",
            args.out,
            ["-m", "hil", f"--tflm-source={args.tflm_source}", f"--esp-nn-source={args.esp_nn_source}"],
            common,
        )
    titles = {
        "host": "host TFLM (tflite-micro wheel)",
        "python": "Python virtual board",
        "firmware": "firmware host build",
        "esp-nn": "firmware host build, ESP-NN C kernels",
    }
    nets, techs = args.networks.split(","), args.techniques.split(",")
    rank = {
        (n, t): (nets.index(n) if n in nets else 99, techs.index(t) if t in techs else 99) for n in nets for t in techs
    }
    keys = sorted({k for rows in boards.values() for k in rows}, key=lambda k: rank.get(k, (99, 99)))
    print()
    print("| case | " + " | ".join(titles[b] for b in boards) + " |")
    print("|---|" + "---|" * len(boards))
    for net, tech in keys:
        cells = [cell(rows.get((net, tech)), host=b == "host") for b, rows in boards.items()]
        print(f"| {net}-{tech} | " + " | ".join(cells) + " |")
    reasons = {b: rows for b, rows in boards.items() if b != "host"}
    print("\nReasons of cases that do not run:")
    for net, tech in keys:
        for b, rows in reasons.items():
            row = rows.get((net, tech))
            if row is not None and row["status"] != "ok":
                print(f"- {net}-{tech} on {titles[b]}: {row['reason'][:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
