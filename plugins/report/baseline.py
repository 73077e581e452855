"""Compare a run with a baseline run's ``results.csv``: what changed, and what regressed.

Used by ``--baseline`` (each case fails on a regression beyond the tolerances) and from
the command line to diff two runs, e.g. the same study on two ``tflite-micro`` releases::

    python -m tinyhil.plugins.report.baseline reports/tflm-prev/results.csv reports/tflm-current/results.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

from tinyhil.plugins.report.columns import cell_number

# Figures compared between runs, with the direction that counts as worse.
ACCURACY_COLUMNS = ("acc_keras", "acc_tflite", "acc_tflm", "acc_device")
GROWTH_COLUMNS = {
    "arena_bytes": "arena",
    "model_bytes": "model",
    "latency_ms_median": "latency",
    "energy_mj_net": "energy",
}
FIGURE_COLUMNS = (
    "status",
    "fits",
    "runs",
    "model_bytes",
    "arena_bytes",
    "params",
    "macs",
    "ops",
    *ACCURACY_COLUMNS,
    "device_agreement",
    "latency_ms_median",
    "energy_mj_gross",
    "energy_mj_net",
    "power_mw_mean",
)
ENV_COLUMNS = (
    "tensorflow",
    "tflite_micro",
    "ai_edge_litert",
    "esp_idf",
    "esp_tflite_micro",
    "firmware_hash",
    "git_rev",
)


@dataclass(frozen=True)
class Tolerances:
    """How much worse a figure may get before it is a regression.

    Attributes:
        accuracy: Absolute accuracy drop (0.01 = one percentage point).
        arena, model, latency, energy: Relative growth (0.05 = 5 %).
    """

    accuracy: float = 0.01
    arena: float = 0.05
    model: float = 0.05
    latency: float = 0.10
    energy: float = 0.10


def read_rows(path: Path) -> list[dict]:
    """Rows of a results.csv.

    Raises:
        ValueError: when the file is missing or is not a tinyhil results.csv.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"baseline {path} does not exist; point --baseline at an earlier run's results.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"baseline {path} holds no rows; point --baseline at a finished run's results.csv")
    if "case_id" not in rows[0]:
        raise ValueError(f"{path} is not a tinyhil results.csv (no case_id column)")
    return rows


def regressions(current: dict, base: dict, tol: Tolerances) -> list[str]:
    """What got worse in ``current`` than in ``base`` beyond the tolerances, one line per figure."""
    out = []
    if current.get("status") != base.get("status"):
        out.append(f"verdict changed: {base.get('status')} -> {current.get('status')} ({current.get('reason', '')})")
    for col in ACCURACY_COLUMNS:
        old, new = cell_number(base.get(col)), cell_number(current.get(col))
        if old is not None and new is not None and old - new > tol.accuracy:
            out.append(f"{col} dropped {old:.4f} -> {new:.4f} ({new - old:+.4f} > tolerance {tol.accuracy})")
    for col, kind in GROWTH_COLUMNS.items():
        old, new = cell_number(base.get(col)), cell_number(current.get(col))
        limit = getattr(tol, kind)
        if old and new is not None and (new - old) / old > limit:
            out.append(f"{col} grew {old:g} -> {new:g} ({(new - old) / old:+.1%} > tolerance {limit:.0%})")
    return out


@dataclass
class Diff:
    """Every changed figure between two runs, and the cases only one run has."""

    changes: list[tuple[str, str, str, str]]  # case_id, column, old, new
    appeared: list[str]
    disappeared: list[str]
    env_old: dict
    env_new: dict


def diff(old_rows: list[dict], new_rows: list[dict]) -> Diff:
    old = {r["case_id"]: r for r in old_rows}
    new = {r["case_id"]: r for r in new_rows}
    changes = []
    for case_id in [c for c in new if c in old]:
        for col in FIGURE_COLUMNS:
            a, b = old[case_id].get(col, ""), new[case_id].get(col, "")
            if a != b:
                changes.append((case_id, col, a, b))

    def env(rows):
        return {c: sorted({r.get(c, "") for r in rows if r.get(c)}) for c in ENV_COLUMNS}

    return Diff(
        changes,
        appeared=[c for c in new if c not in old],
        disappeared=[c for c in old if c not in new],
        env_old=env(old_rows),
        env_new=env(new_rows),
    )


def render_diff(d: Diff, old_name: str, new_name: str) -> str:
    """Markdown: the versions of both runs, every changed figure, appeared/disappeared cases."""
    lines = ["## Difference from the baseline", ""]
    lines.append(f"Baseline `{old_name}`, this run `{new_name}`.")
    lines.append("")
    lines.append("| | baseline | this run |")
    lines.append("|---|---|---|")
    for col in ENV_COLUMNS:
        a, b = ", ".join(d.env_old.get(col, [])) or "–", ", ".join(d.env_new.get(col, [])) or "–"
        if a != "–" or b != "–":
            lines.append(f"| {col} {'(changed)' if a != b else ''} | {a} | {b} |")
    lines.append("")
    if d.changes:
        lines += ["| case | figure | baseline | this run | change |", "|---|---|---|---|---|"]
        for case_id, col, a, b in d.changes:
            x, y = cell_number(a), cell_number(b)
            delta = f"{y - x:+.4g}" + (f" ({(y - x) / x:+.1%})" if x else "") if x is not None and y is not None else ""
            lines.append(f"| {case_id} | {col} | {a or '–'} | {b or '–'} | {delta} |")
    else:
        lines.append("No figure changed.")
    lines.append("")
    if d.appeared:
        lines.append(f"Cases only in this run: {', '.join(d.appeared)}.")
    if d.disappeared:
        lines.append(f"Cases only in the baseline: {', '.join(d.disappeared)}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyhil.plugins.report.baseline", description="diff two tinyhil results.csv files"
    )
    parser.add_argument("baseline", type=Path)
    parser.add_argument("current", type=Path)
    parser.add_argument("--out", type=Path, help="also write the Markdown diff here (Default: print only)")
    args = parser.parse_args(argv)
    try:
        d = diff(read_rows(args.baseline), read_rows(args.current))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = render_diff(d, str(args.baseline), str(args.current))
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
