"""The summary a person reads after a run: Table 3 and Table 2 analogues and the sizes."""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from tinyhil.models.model_files import KERAS_FAMILY, TFLITE_FAMILY
from tinyhil.models.networks import NETWORKS

SIGNIFICANT_FIGURES = 3  # every measured quantity in every table (bytes stay whole)
NOT_THE_DATASETS = "the model does not take the dataset's inputs"


def _order(nets) -> list[str]:
    known = NETWORKS.names()
    return sorted(set(nets), key=lambda n: (known.index(n) if n in known else len(known), n))


def plural(n: int, word: str) -> str:
    """``1 case``, ``2 cases``: a count and its noun (regular plurals)."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def figure(value: float | str) -> str:
    """A figure as every table prints it: :data:`SIGNIFICANT_FIGURES` significant figures;
    a whole number of at least as many digits (bytes, counts) stays whole."""
    v = float(value)
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    if v == int(v) and abs(v) >= 10 ** (SIGNIFICANT_FIGURES - 1):
        return str(int(v))
    decimals = max(0, SIGNIFICANT_FIGURES - 1 - math.floor(math.log10(abs(v))))
    return f"{round(v, decimals):.{decimals}f}"


def missing_accuracy(r: dict) -> str:
    """Why a case has no accuracy: the words that stand where its number would."""
    if r["status"] != "ok":
        return f"no run: {r['status']}"
    if r.get("family") in (TFLITE_FAMILY, KERAS_FAMILY):
        return NOT_THE_DATASETS  # a user's model gets no accuracy only when its inputs are not the data's
    return "not measured"


def _fmt_acc(v: str) -> str:
    return f"{float(v):.3f}" if v not in ("", None) else "–"


def _num(r: dict, key: str) -> str:
    return figure(r[key]) if r.get(key) else "–"


def _verdict(r: dict) -> str:
    return "✓ ok" if r["status"] == "ok" else f"✗ {r['status']}"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return out


@dataclass
class _Target:
    """One target's rows, laid out as its tables are: networks down, techniques across."""

    name: str
    rows: list[dict]
    techniques: list[str]
    cell: dict[tuple[str, str], dict] = field(init=False)  # (network, technique) -> its row
    nets: list[str] = field(init=False)  # Table 1 order

    def __post_init__(self) -> None:
        self.cell = {(r["network"], r["technique"]): r for r in self.rows}
        self.nets = _order(r["network"] for r in self.rows)

    def cells(self, network: str, cell_text: Callable[[dict], str]) -> list[str]:
        """``cell_text(row)`` of each technique's case of ``network``, "" where it has none."""
        cells = []
        for t in self.techniques:
            r = self.cell.get((network, t))
            cells.append("" if r is None else cell_text(r))
        return cells


def render(rows: list[dict], technique_order: list[str] | tuple[str, ...] = ()) -> str:
    """Markdown summary of result rows (as read back from results.csv).

    Args:
        rows: The rows, in any order (under xdist they arrive as cases finish).
        technique_order: The run's techniques in matrix order: the tables' column order,
            the same however the cases were scheduled (others follow, as they come).
    """
    if not rows:
        return "# tinyhil summary\n\nNo case finished.\n"
    boards = ", ".join(dict.fromkeys(r["board"] for r in rows))
    lines = ["# tinyhil summary", "", *_provenance({**rows[-1], "board": boards}), ""]
    several = len({r["board"] for r in rows}) > 1  # --board a,b: a target's tables per board
    by_target: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_target[f"{r['target']}` on board `{r['board']}" if several else r["target"]].append(r)
    techniques = _technique_columns(rows, technique_order)
    if several:
        lines += _across_boards_section(rows, techniques)
    for name, trows in by_target.items():
        target = _Target(name, trows, techniques)
        lines += _fits_section(target)
        lines += _accuracy_section(target)
        lines += _bytes_section(target)
        lines += _latency_energy_section(target)
        lines += _estimated_section(target)
        lines += pareto_section(trows, name)
    return "\n".join(lines)


def _across_boards_section(rows: list[dict], techniques: list[str]) -> list[str]:
    """The same case on each board, side by side: verdict, arena, latency and energy."""
    boards = list(dict.fromkeys(r["board"] for r in rows))
    cell = {(r["network"], r["technique"], r["target"], r["board"]): r for r in rows}
    nets = _order(r["network"] for r in rows)
    cases = sorted(
        {(r["network"], r["technique"], r["target"]) for r in rows},
        key=lambda c: (c[2], nets.index(c[0]), techniques.index(c[1]) if c[1] in techniques else len(techniques)),
    )

    def text(r: dict | None) -> str:
        if r is None:
            return ""
        parts = [_verdict(r), f"arena {r['arena_bytes']} B" if r.get("arena_bytes") else ""]
        if r.get("latency_ms_median"):
            parts.append(f"{_num(r, 'latency_ms_median')} ms ({r['latency_source']})")
        elif r.get("latency_ms_estimated"):
            parts.append(f"{_num(r, 'latency_ms_estimated')} ms (estimated)")
        if r.get("energy_mj_net"):
            parts.append(f"{_num(r, 'energy_mj_net')} mJ ({r.get('energy_source') or '?'})")
        elif r.get("energy_mj_estimated"):
            parts.append(f"{_num(r, 'energy_mj_estimated')} mJ (estimated)")
        return ", ".join(p for p in parts if p)

    lines = ["## The same case on each board", ""]
    lines.append(
        "Each case's verdict on each board of the run, with its arena and, where timed, its latency and net energy "
        "per inference (with where each figure comes from: measured, simulated or estimated)."
    )
    lines.append("")
    body = [[n, t, tgt, *(text(cell.get((n, t, tgt, b))) for b in boards)] for n, t, tgt in cases]
    return lines + _table(["network", "technique", "target", *boards], body) + [""]


def _provenance(first: dict) -> list[str]:
    """Where the figures come from: dataset, profile, board and the versions of the tools."""
    generated = first.get("dataset_generated") == "true"
    dataset = (
        f"Dataset **{first['dataset']}** ({first['split']} split)"
        + (
            " — **generated data, not UCI-HAR**: figures show the pipeline, not the paper's numbers"
            if generated
            else ""
        )
        + f"; profile {first['profile']}, seed {first['seed']}; board profile{'s' if ', ' in first['board'] else ''} "
        + first["board"]
        + (" (memory budgets estimated)" if first.get("fit_budget_source") == "estimated" else "")
        + "."
    )
    versions = (
        f"TensorFlow {first.get('tensorflow')}, tf_keras {first.get('tf_keras')}, tflite-micro {first.get('tflite_micro')}, "
        f"ai-edge-litert {first.get('ai_edge_litert')}; tinyhil {first.get('git_rev') or 'unknown revision'}."
    )
    return [dataset, versions]


def _technique_columns(rows: list[dict], technique_order: list[str] | tuple[str, ...]) -> list[str]:
    """The run's techniques in matrix order, then any others in the order their rows came."""
    seen = list(dict.fromkeys(r["technique"] for r in rows))
    return [t for t in technique_order if t in seen] + [t for t in seen if t not in technique_order]


def _fits_section(target: _Target) -> list[str]:
    """Table 3 analogue: each case's verdict, then one example reason per failing verdict."""
    lines = [f"## Fits and runs on target `{target.name}` (Table 3 analogue)", ""]
    body = [[n, *target.cells(n, _verdict)] for n in target.nets]
    lines += _table(["network", *target.techniques], body) + [""]
    reasons = {r["status"]: r["reason"] for r in target.rows if r["status"] != "ok"}
    for status, reason in reasons.items():
        lines.append(f"- `{status}`, e.g.: {reason}")
    lines.append("")
    return lines


def _accuracy_section(target: _Target) -> list[str]:
    """Table 2 analogue: the Keras base, then on-target accuracy where any was measured, else host runtimes'."""
    on_device = any(r.get("acc_device") for r in target.rows)
    lines = [f"## Accuracy on target `{target.name}` (Table 2 analogue)", ""]
    if on_device:
        sources = sorted({r["acc_device_source"] for r in target.rows if r.get("acc_device_source")})
        lines.append(
            "Base is the Keras model; each technique shows the accuracy on the target on the N windows sent to it "
            f"({', '.join(sources)}; a sample of the test split unless N is all of it), in brackets the share of them "
            "where the target agreed with host TFLM and the upper bound on the share that disagree "
            "(disagreement_upper_bound), then host TFLM's accuracy over the whole test split where it was computed."
        )
    else:
        lines.append(
            "Base is the Keras model; each technique shows TFLite interpreter / TFLM accuracy over the whole test "
            "split (– where that runtime could not run the model)."
        )
    lines.append("")

    def accuracy(r: dict) -> str:
        if not any(r.get(c) for c in ("acc_device", "acc_tflite", "acc_tflm")):
            return f"– ({missing_accuracy(r)})"
        if on_device:
            cell = f"{_fmt_acc(r['acc_device'])} on {r.get('device_windows') or '?'}" if r.get("acc_device") else "–"
            if r.get("device_agreement"):
                bound = f", ≤ {float(r['disagreement_upper_bound']):.3%}" if r.get("disagreement_upper_bound") else ""
                cell += f" ({_fmt_acc(r['device_agreement'])}{bound})"
            return cell + (f"; TFLM {_fmt_acc(r['acc_tflm'])} on all" if r.get("acc_tflm") else "")
        return f"{_fmt_acc(r['acc_tflite'])} / {_fmt_acc(r['acc_tflm'])}"

    body = []
    for n in target.nets:
        base = next((r["acc_keras"] for r in target.rows if r["network"] == n), "")
        body.append([n, _fmt_acc(base), *target.cells(n, accuracy)])
    return lines + _table(["network", "base", *target.techniques], body) + [""]


def _bytes_section(target: _Target) -> list[str]:
    """Model and arena bytes of each case."""
    lines = [f"## Model and arena bytes on target `{target.name}`", ""]
    body = [
        [n, *target.cells(n, lambda r: f"{r['model_bytes'] or '–'} / {r['arena_bytes'] or '–'}")] for n in target.nets
    ]
    return lines + _table(["network (model B / arena B)", *target.techniques], body) + [""]


ESTIMATED = "estimated (timing model, not measured)"


def estimated_savings(rows: list[dict]) -> dict[str, float]:
    """case_id -> estimated energy saved against the lite model of the same network, % (rows with
    ``energy_mj_estimated``; the lite row and rows without a lite counterpart have none)."""
    lite = {
        (r["network"], r["board"]): float(r["energy_mj_estimated"])
        for r in rows
        if r["technique"] == "lite" and r.get("energy_mj_estimated")
    }
    out = {}
    for r in rows:
        ref = lite.get((r["network"], r["board"]))
        if ref and r.get("energy_mj_estimated") and r["technique"] != "lite":
            out[r["case_id"]] = 100.0 * (1.0 - float(r["energy_mj_estimated"]) / ref)
    return out


def _estimated_section(target: _Target) -> list[str]:
    """The timing model's estimates (host target), as Fig. 3 and Fig. 4 analogues; never as measurements."""
    rows = [r for r in target.rows if r.get("latency_ms_estimated")]
    if not rows:
        return []
    basis = "; ".join(sorted({r.get("estimate_basis") or "" for r in rows}))
    lines = [
        f"## Latency and energy on target `{target.name}`, {ESTIMATED} (Fig. 3 and Fig. 4 analogues)",
        "",
        f"Not measured: every figure here is an estimate of the timing model, {basis}, fit to published "
        "figures (README, 'Timing model'). Energy is the estimated latency at the profile's active current and "
        "3.3 V; saving is estimated energy against the lite model of the same network.",
        "",
    ]
    saving = estimated_savings(rows)
    techniques = target.techniques
    body = [
        [
            r["network"],
            r["technique"],
            f"{_num(r, 'latency_ms_estimated')} (estimated)",
            f"{_num(r, 'energy_mj_estimated')} (estimated)",
            f"{saving[r['case_id']]:.1f} (estimated)" if r["case_id"] in saving else "–",
        ]
        for r in sorted(rows, key=lambda r: (_order([r["network"]]), techniques.index(r["technique"])))
    ]
    header = ["network", "technique", "latency ms, estimated", "energy mJ, estimated", "saving %, estimated"]
    return lines + _table(header, body) + [""]


def _latency_energy_section(target: _Target) -> list[str]:
    """Fig. 3 and Fig. 4 analogues, one line per timed case; nothing when no case was timed."""
    timed = [r for r in target.rows if r.get("latency_ms_median")]
    if not timed:
        return []
    lines = [f"## Latency and energy on target `{target.name}` (Fig. 3 and Fig. 4 analogues)", ""]
    lines.append(
        "Latency is the median of the timed runs; energy is per inference over the marker window, "
        "gross and net of the idle baseline; saving is net energy against the lite model of the same network."
    )
    lines.append("")
    techniques = target.techniques
    body = [
        [
            r["network"],
            r["technique"],
            f"{_num(r, 'latency_ms_median')} ({r['latency_source']})",
            _num(r, "energy_mj_gross"),
            _num(r, "energy_mj_net"),
            _num(r, "power_mw_mean"),
            _num(r, "energy_saving_pct"),
            r.get("energy_source") or "–",
        ]
        for r in sorted(timed, key=lambda r: (_order([r["network"]]), techniques.index(r["technique"])))
    ]
    header = [
        "network",
        "technique",
        "latency ms",
        "energy mJ gross",
        "energy mJ net",
        "power mW",
        "saving %",
        "energy source",
    ]
    return lines + _table(header, body) + [""]


def pareto_section(trows: list[dict], target: str) -> list[str]:
    """The Pareto-optimal cases on accuracy against model bytes, arena bytes and (where obtained) energy."""
    from tinyhil.plugins.report.plots import accuracy_source, pareto_front

    ok = [r for r in trows if r["status"] == "ok" and accuracy_source(r)[0] is not None]
    if not ok:
        return []
    lines = [f"## Pareto-optimal cases on target `{target}`", ""]
    lines.append("A case is listed when no other case that runs is both at least as accurate and at most as costly.")
    lines.append("")
    costs = [("model_bytes", "model bytes"), ("arena_bytes", "arena bytes"), ("energy_mj_net", "net energy mJ")]
    for key, label in costs:
        rows = [r for r in ok if r.get(key)]
        if not rows:
            continue
        pts = [(float(r[key]), accuracy_source(r)[0]) for r in rows]
        front = pareto_front(pts)
        body = [[rows[i]["network"], rows[i]["technique"], figure(pts[i][0]), f"{pts[i][1]:.3f}"] for i in front]
        lines += [f"Accuracy against {label}:", ""]
        lines += _table(["network", "technique", label, "accuracy"], body) + [""]
    return lines


def for_terminal(text: str, width: int) -> str:
    """The summary for a terminal ``width`` columns wide: prose and list items wrapped at
    words (a terminal would cut them mid-word); table rows kept whole, as Markdown."""
    out = []
    for line in text.splitlines():
        if line.startswith("|") or len(line) <= width:
            out.append(line)
            continue
        indent = "  " if line.startswith("- ") else ""
        out.extend(textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)
