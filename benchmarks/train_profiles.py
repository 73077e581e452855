"""Trains Table 1 networks under training profiles from an empty cache; prints accuracy and time.

Usage::

    python benchmarks/train_profiles.py                      # all 14 networks, quick and paper
    python benchmarks/train_profiles.py --networks C_1,CL_1 --profiles quick

It goes through the project's own path (``models.datasets.load_dataset`` and
``models.training.train``, as ``models.pipeline.Study`` does) with a temporary model cache,
so every network trains, as in a cold run. Epoch lines go to stderr, one line per trained
network to stdout, then the table: base (Keras) test accuracy, epochs run and seconds per
profile. Seconds are the wall time of ``train`` (model build, fit, test evaluation, cache
write); in the totals, ``fit s`` is the time inside ``fit`` alone and ``cpu s`` the CPU time
of this process (all threads), which a busy shared machine inflates less than wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import models  # noqa: E402,F401 - selects tf_keras before TensorFlow loads
from models.datasets import load_dataset  # noqa: E402
from models.networks import NETWORKS, get_network  # noqa: E402
from models.training import PROFILES, train  # noqa: E402


def _names(value: str, known: list[str], kind: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {kind} {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--networks",
        type=lambda v: _names(v, NETWORKS.names(), "network"),
        default=NETWORKS.names(),
        help="comma-separated Table 1 ids (default: all)",
    )
    p.add_argument(
        "--profiles",
        type=lambda v: _names(v, PROFILES.names(), "profile"),
        default=PROFILES.names(),
        help="comma-separated training profiles (default: all)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of data, split and training (default: 0)")
    p.add_argument("--dataset", default="synthetic-har", help="registered dataset (default: synthetic-har)")
    p.add_argument("--split", default="paper", help="paper or subjects (default: paper)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines on stderr")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[tuple[str, str], dict]:
    """Trains every network under every profile; returns ``{(network, profile): result}``."""
    t0 = time.monotonic()
    dataset = load_dataset(args.dataset, args.split, None, args.seed)
    print(f"dataset {dataset.name} ({args.split} split): {len(dataset.x_train)} train / {len(dataset.x_test)} test")
    print(f"loaded in {time.monotonic() - t0:.1f} s", flush=True)

    def epoch_line(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    results: dict[tuple[str, str], dict] = {}
    total = len(args.networks) * len(args.profiles)
    with tempfile.TemporaryDirectory(prefix="tinyhil-bench-") as cache:
        for profile in args.profiles:
            for net in args.networks:
                t, cpu = time.monotonic(), time.process_time()
                tm = train(get_network(net), dataset, profile, args.seed, Path(cache), progress=epoch_line)
                wall, cpu = time.monotonic() - t, time.process_time() - cpu
                assert not tm.from_cache, "the benchmark cache is new: every network must train"
                res = {
                    "acc": tm.meta["keras_accuracy"],
                    "epochs": tm.meta["epochs_run"],
                    "seconds": wall,
                    "fit_seconds": tm.meta["train_seconds"],
                    "cpu_seconds": cpu,
                }
                results[(net, profile)] = res
                print(
                    f"[{len(results)}/{total}] {net} {profile}: acc {res['acc']:.3f}, "
                    f"{res['epochs']} epochs, {wall:.1f} s",
                    flush=True,
                )
    return results


def table(results: dict[tuple[str, str], dict], networks: list[str], profiles: list[str]) -> str:
    """The results as a Markdown table, one row per network, totals last."""
    head = ["network"] + [f"{p} {col}" for p in profiles for col in ("acc", "epochs", "s")]
    rows = []
    for net in networks:
        row = [net]
        for p in profiles:
            r = results[(net, p)]
            row += [f"{r['acc']:.3f}", str(r["epochs"]), f"{r['seconds']:.1f}"]
        rows.append(row)
    for label, field in (("**total s**", "seconds"), ("fit s", "fit_seconds"), ("cpu s", "cpu_seconds")):
        rows.append(
            [label] + [c for p in profiles for c in ("", "", f"{sum(results[(n, p)][field] for n in networks):.1f}")]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(cells) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints the table."""
    args = parse_args(argv)
    t0 = time.monotonic()
    results = run(args)
    print()
    print(table(results, args.networks, args.profiles))
    print(f"\nseed {args.seed}; whole benchmark {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
