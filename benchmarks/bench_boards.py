"""Bench throughput with 1, 2 and 4 boards: the same cases on virtual boards whose serial
link is paced like a UART, run with one xdist worker per board; prints a table.

Usage::

    python benchmarks/bench_boards.py                        # 12 cases, 1/2/4 boards, the firmware's baud, whole split
    python benchmarks/bench_boards.py --boards 1,2 --baud 115200 --device-windows 50
    python benchmarks/bench_boards.py --windows-before-after --techniques=lite,full_int,int16x8,prune50+full_int

Each run is ``python -m pytest -m hil --virtual-board --virtual-baud B -n N`` on the same
cases (``--networks`` x ``--techniques``), after one offline run that fills the model
cache, so the runs compare bench time only. The table gives each run's wall time, its
speed-up over one board, and the median per-case seconds of the bench steps (model write,
test windows, timed inferences; columns ``bench_*_s``). It also checks that every run
gave the same verdicts and figures (timings and board ports aside). The virtual boards'
figures are simulated, and their link is paced, not a real USB-UART.

``--windows-before-after`` runs the cases on one board twice instead: before, as tinyhil ran a
bench case until the agreement test and the windows partition (``--device-windows all``, every
window streamed, on a board profile without a windows partition); after, as it runs now (``auto``:
windows until agreement is proven, read from the windows partition the first case writes). It
prints both wall times, the speed-up and the per-step medians, and checks that both runs gave
every case the same verdict and model figures (the accuracy is the whole split's before and a
sample's after, so it is not compared).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinyhil.plugins.firmware_tools.config import console_baud  # noqa: E402

SAME = ("status", "arena_bytes", "acc_device", "device_agreement", "latency_ms_median", "model_bytes")
SAME_BEFORE_AFTER = ("status", "arena_bytes", "model_bytes", "acc_tflm")
STEPS = ("bench_write_s", "bench_windows_s", "bench_infer_s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--boards", default="1,2,4", help="board counts to compare (default: 1,2,4)")
    p.add_argument(
        "--baud",
        type=int,
        default=console_baud(),
        help="paced serial rate (default: the firmware's, CONFIG_TINYHIL_UART_BAUD)",
    )
    p.add_argument("--networks", default="C_1,C_3,C_8,CL_1,CL_3,CL_6", help="networks (default: six of Table 1)")
    p.add_argument("--techniques", default="lite,full_int", help="techniques (default: lite,full_int: 12 cases)")
    p.add_argument("--device-windows", default="all", help="test windows per case (default: all, the whole test split)")
    p.add_argument("--model-cache", default=str(ROOT / ".tinyhil-cache"), help="model cache (default: the project's)")
    p.add_argument(
        "--windows-before-after",
        action="store_true",
        help="one board: every window streamed (before) against auto from the windows partition (after)",
    )
    return p.parse_args(argv)


def pytest(args: list[str], label: str) -> float:
    """Runs pytest in the project; returns its wall time; stops on failure with its output."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-q", *args], cwd=ROOT, text=True, capture_output=True
    )
    took = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"{label} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return took


def rows(report_dir: Path) -> dict[str, dict]:
    with open(report_dir / "results.csv", newline="") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


def medians(got: dict[str, dict]) -> list[float]:
    ok = [r for r in got.values() if r["status"] == "ok"]
    return [statistics.median(float(r[s] or 0) for r in ok) if ok else float("nan") for s in STEPS]


def before_after(args: argparse.Namespace, common: list[str]) -> int:
    """One board, before and after the agreement test and the windows partition."""
    import json

    with tempfile.TemporaryDirectory(prefix="tinyhil-bench-windows-") as tmp:
        print("filling the model cache (offline run) ...", flush=True)
        pytest(["-m", "offline", *common, f"--report-dir={tmp}/offline"], "the offline run")
        profile = json.loads((ROOT / "models/data/boards/esp32-wroom-32.json").read_text())
        profile.update(name="esp32-wroom-32-no-windows", windows_partition_bytes=0)
        (Path(tmp) / "before.json").write_text(json.dumps(profile))
        # the same expected verdicts for the profile without the partition as for the board's own
        shipped = ROOT / "models/data/expectations/esp32-wroom-32"
        for name in ("esp32-wroom-32", profile["name"]):
            shutil.copytree(shipped, Path(tmp) / "expectations" / name)
        expect = f"--expectations-dir={tmp}/expectations"
        runs = {
            "before: all windows streamed": ["--device-windows=all", f"--board={tmp}/before.json", expect],
            "after: auto, windows partition": ["--device-windows=auto", expect],
        }
        results = {}
        for label, extra in runs.items():
            out = Path(tmp) / label.split(":")[0]
            print(f"{label}, one board at {args.baud} Bd ...", flush=True)
            hil = ["-m", "hil", "--virtual-board", f"--virtual-baud={args.baud}", "-p", "no:xdist"]
            wall = pytest([*hil, *extra, *common, f"--report-dir={out}"], label)
            results[label] = (wall, rows(out))
            print(f"  {wall:.1f} s, {len(results[label][1])} cases", flush=True)
    (before_wall, before), (after_wall, after) = results.values()
    for case, row in before.items():
        diff = {k: (row[k], after[case][k]) for k in SAME_BEFORE_AFTER if row.get(k) != after[case].get(k)}
        if diff:
            sys.exit(f"{case}: the runs differ: {diff}")
    head = ["run", "wall s", "speed-up", *(f"median {s}" for s in STEPS), "median device_windows"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, (wall, got) in results.items():
        windows = statistics.median(int(r["device_windows"] or 0) for r in got.values() if r["status"] == "ok")
        lines.append(
            f"| {label} | {wall:.1f} | {before_wall / wall:.2f}x | "
            + " | ".join(f"{m:.2f}" for m in medians(got))
            + f" | {windows:g} |"
        )
    print("\n" + "\n".join(lines))
    statuses = statistics.multimode(r["status"] for r in after.values())
    print(
        f"\n{len(before)} cases ({', '.join(sorted({r['status'] for r in after.values()}))}; most {statuses[0]}), "
        f"link paced at {args.baud} Bd; the same verdict, arena, model size and host accuracy in both runs"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    boards = [int(b) for b in args.boards.split(",")]
    common = [f"--networks={args.networks}", f"--techniques={args.techniques}", f"--model-cache={args.model_cache}"]
    if args.windows_before_after:
        return before_after(args, common)
    with tempfile.TemporaryDirectory(prefix="tinyhil-bench-boards-") as tmp:
        print("filling the model cache (offline run) ...", flush=True)
        pytest(["-m", "offline", *common, f"--report-dir={tmp}/offline"], "the offline run")
        results = {}
        for n in boards:
            out = Path(tmp) / f"boards-{n}"
            print(f"{n} board(s) at {args.baud} Bd ...", flush=True)
            wall = pytest(
                [
                    "-m",
                    "hil",
                    "--virtual-board",
                    f"--virtual-baud={args.baud}",
                    f"--device-windows={args.device_windows}",
                    *common,
                    f"--report-dir={out}",
                    *(["-n", str(n)] if n > 1 else ["-p", "no:xdist"]),
                ],
                f"the {n}-board run",
            )
            results[n] = (wall, rows(out))
            print(f"  {wall:.1f} s, {len(results[n][1])} cases", flush=True)
    base_wall, base_rows = results[boards[0]]
    for n, (_, got) in results.items():
        for case, row in base_rows.items():
            diff = {k: (row[k], got[case][k]) for k in SAME if row.get(k) != got[case].get(k)}
            if diff:
                sys.exit(f"{n} boards: {case} differs from the {boards[0]}-board run: {diff}")
        ports = {r["bench_port"] for r in got.values() if r["bench_port"]}
        print(f"{n} board(s): {len(ports)} distinct port(s) ran cases")
    print()
    head = ["boards", "wall s", "speed-up", *(f"median {s}" for s in STEPS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, (wall, got) in results.items():
        med = medians(got)
        lines.append(
            f"| {n} | {wall:.1f} | {base_wall / wall * boards[0]:.2f}x | " + " | ".join(f"{m:.2f}" for m in med) + " |"
        )
    print("\n".join(lines))
    cases = len(base_rows)
    print(
        f"\n{cases} cases, {args.device_windows} test windows each, link paced at {args.baud} Bd; "
        "same verdicts and figures in every run"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
