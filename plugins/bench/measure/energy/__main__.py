"""``python -m tinyhil.plugins.bench.measure.energy TRACE --inferences N``: analyse a saved trace again."""

from __future__ import annotations

from pathlib import Path

from tinyhil.plugins.bench.measure.energy.analysis import analyse, idle_power
from tinyhil.plugins.bench.measure.energy.trace import EnergyError, Trace


def main(argv: list[str] | None = None) -> int:
    """``python -m tinyhil.plugins.bench.measure.energy TRACE --inferences N``: analyse a saved trace again."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m tinyhil.plugins.bench.measure.energy", description="analyse a saved tinyhil trace"
    )
    parser.add_argument("trace", type=Path, help="a .npz or .csv written by --save-traces")
    parser.add_argument("--inferences", type=int, default=10, help="N inferences in the marker window (Default: 10)")
    parser.add_argument("--shunt-ohms", type=float, default=None, help="(Default: the value recorded in the trace)")
    parser.add_argument(
        "--idle-trace", type=Path, help="idle capture for the baseline (Default: samples around the window)"
    )
    args = parser.parse_args(argv)
    try:
        trace = Trace.load(args.trace)
        shunt = args.shunt_ohms or float(trace.meta.get("shunt_ohms", 9.8))
        idle = idle_power(Trace.load(args.idle_trace), shunt) if args.idle_trace else None
        r = analyse(trace, args.inferences, shunt, idle)
    except EnergyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    source = trace.meta.get("source", "unknown")
    print(f"source {source}; window {r.window_ms:.4f} ms; {r.n_inferences} inferences")
    print(f"energy per inference: gross {r.energy_mj_gross:.6f} mJ, net {r.energy_mj_net:.6f} mJ")
    print(f"mean power {r.power_mw_mean:.3f} mW; idle {r.idle_power_mw:.3f} mW")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
