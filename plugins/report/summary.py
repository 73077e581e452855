"""The summary a person reads after a run: Table 3 and Table 2 analogues and the sizes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from tinyhil.models.networks import NETWORKS


def _order(nets) -> list[str]:
    known = NETWORKS.names()
    return sorted(set(nets), key=lambda n: (known.index(n) if n in known else len(known), n))


def _fmt_acc(v: str) -> str:
    return f"{float(v):.3f}" if v not in ("", None) else "–"


def _num(r: dict, key: str, fmt: str) -> str:
    return format(float(r[key]), fmt) if r.get(key) else "–"


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
    lines = ["# tinyhil summary", "", *_provenance(rows[-1]), ""]
    by_target: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_target[r["target"]].append(r)
    techniques = _technique_columns(rows, technique_order)
    for name, trows in by_target.items():
        target = _Target(name, trows, techniques)
        lines += _fits_section(target)
        lines += _accuracy_section(target)
        lines += _bytes_section(target)
        lines += _latency_energy_section(target)
        lines += pareto_section(trows, name)
    return "\n".join(lines)


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
        + f"; profile {first['profile']}, seed {first['seed']}; board profile {first['board']}"
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
            "Base is the Keras model; each technique shows the accuracy on the target over the windows sent to it "
            f"({', '.join(sources)}), and in brackets the share of windows where the target agreed with host TFLM."
        )
    else:
        lines.append(
            "Base is the Keras model; each technique shows TFLite interpreter / TFLM accuracy over the whole test "
            "split (– where that runtime could not run the model)."
        )
    lines.append("")

    def accuracy(r: dict) -> str:
        if on_device:
            agree = f" ({_fmt_acc(r['device_agreement'])})" if r.get("device_agreement") else ""
            return _fmt_acc(r["acc_device"]) + agree
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
            f"{_num(r, 'latency_ms_median', '.3f')} ({r['latency_source']})",
            _num(r, "energy_mj_gross", ".4f"),
            _num(r, "energy_mj_net", ".4f"),
            _num(r, "power_mw_mean", ".1f"),
            _num(r, "energy_saving_pct", ".1f"),
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
        body = [[rows[i]["network"], rows[i]["technique"], f"{pts[i][0]:g}", f"{pts[i][1]:.3f}"] for i in front]
        lines += [f"Accuracy against {label}:", ""]
        lines += _table(["network", "technique", label, "accuracy"], body) + [""]
    return lines
