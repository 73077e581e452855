"""Trains Table 1 networks under training profiles from an empty cache; prints accuracy and time.

Usage::

    python benchmarks/train_profiles.py                      # all 14 networks, quick and paper
    python benchmarks/train_profiles.py --networks C_1,CL_1 --profiles quick

It trains the way a cold study does (``tinyhil.models.parallel_training.train_networks``, as the
pytest plugin calls it before the cases run: up to ``--jobs`` networks at once, each in a
child process with an equal share of the cores) into a temporary model cache, so every
network trains. Epoch lines go to stderr, one line per trained network to stdout, then the
table: base (Keras) test accuracy, epochs run and seconds per network and profile.
A network's seconds are its child's wall time (dataset load, model build, fit, test
evaluation, cache write); in the totals, ``sum of s`` adds them, ``wall s`` is the
profile's whole training phase (what a cold run waits) and ``cpu s`` the CPU time of the
children, which a busy shared machine inflates less than wall time.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tinyhil.models  # noqa: E402,F401 - selects tf_keras before TensorFlow loads
from tinyhil.models.datasets import load_dataset  # noqa: E402
from tinyhil.models.networks import NETWORKS  # noqa: E402
from tinyhil.models.parallel_training import TrainingResult, default_jobs, train_networks  # noqa: E402
from tinyhil.models.pipeline import StudyConfig  # noqa: E402
from tinyhil.models.training import PROFILES  # noqa: E402
from tinyhil.plugins.settings.table import jobs  # noqa: E402


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
    p.add_argument(
        "--jobs",
        type=lambda v: jobs(v),
        default=default_jobs(),
        help="networks trained at once, as the study's --train-jobs (default: one per core)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines on stderr")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[tuple[str, str], dict]:
    """Trains every network under every profile; returns ``{(network, profile): result}``
    and, under ``(profile, "wall")``, each profile's wall and children's CPU seconds."""
    t0 = time.monotonic()
    dataset = load_dataset(args.dataset, args.split, None, args.seed)
    print(f"dataset {dataset.name} ({args.split} split): {len(dataset.x_train)} train / {len(dataset.x_test)} test")
    print(f"loaded in {time.monotonic() - t0:.1f} s; {args.jobs} training process(es) at a time", flush=True)

    def epoch_line(net: str, line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    results: dict[tuple[str, str], dict] = {}
    total = len(args.networks) * len(args.profiles)
    with tempfile.TemporaryDirectory(prefix="tinyhil-bench-") as cache:
        for profile in args.profiles:
            config = StudyConfig(args.dataset, args.split, None, profile, args.seed, Path(cache))

            def done(r: TrainingResult, profile: str = profile) -> None:
                if r.error:
                    raise SystemExit(f"{r.network} {profile} did not train: {r.error}")
                results[(r.network, profile)] = {"acc": r.accuracy, "epochs": r.epochs, "seconds": r.seconds}
                trained = sum(1 for key in results if key[1] != "wall")
                print(
                    f"[{trained}/{total}] {r.network} {profile}: acc {r.accuracy:.3f}, "
                    f"{r.epochs} epochs, {r.seconds:.1f} s",
                    flush=True,
                )

            t, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            train_networks(config, args.networks, args.jobs, epoch_line, done)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            results[(profile, "wall")] = {
                "seconds": time.monotonic() - t,
                "cpu_seconds": (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime),
            }
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
    rows.append(
        ["sum of s"]
        + [c for p in profiles for c in ("", "", f"{sum(results[(n, p)]['seconds'] for n in networks):.1f}")]
    )
    for label, field in (("**wall s**", "seconds"), ("cpu s", "cpu_seconds")):
        rows.append([label] + [c for p in profiles for c in ("", "", f"{results[(p, 'wall')][field]:.1f}")])
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
