"""The summary a person reads after a run: Table 3 and Table 2 analogues and the sizes."""

from __future__ import annotations

from collections import defaultdict

from tinyhil.models.networks import NETWORKS


def _order(nets) -> list[str]:
    known = NETWORKS.names()
    return sorted(set(nets), key=lambda n: (known.index(n) if n in known else len(known), n))


def _fmt_acc(v: str) -> str:
    return f"{float(v):.3f}" if v not in ("", None) else "–"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return out


def render(rows: list[dict], technique_order: list[str] | tuple[str, ...] = ()) -> str:
    """Markdown summary of result rows (as read back from results.csv).

    Args:
        rows: The rows, in any order (under xdist they arrive as cases finish).
        technique_order: The run's techniques in matrix order: the tables' column order,
            the same however the cases were scheduled (others follow, as they come).
    """
    if not rows:
        return "# tinyhil summary\n\nNo case finished.\n"
    first = rows[-1]
    lines = ["# tinyhil summary", ""]
    generated = first.get("dataset_generated") == "true"
    lines.append(
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
    lines.append(
        f"TensorFlow {first.get('tensorflow')}, tf_keras {first.get('tf_keras')}, tflite-micro {first.get('tflite_micro')}, "
        f"ai-edge-litert {first.get('ai_edge_litert')}; tinyhil {first.get('git_rev') or 'unknown revision'}."
    )
    lines.append("")
    by_target: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_target[r["target"]].append(r)
    seen = list(dict.fromkeys(r["technique"] for r in rows))
    techniques = [t for t in technique_order if t in seen] + [t for t in seen if t not in technique_order]
    for target, trows in by_target.items():
        cell = {(r["network"], r["technique"]): r for r in trows}
        nets = _order(r["network"] for r in trows)
        lines += [f"## Fits and runs on target `{target}` (Table 3 analogue)", ""]
        body = []
        for n in nets:
            row = [n]
            for t in techniques:
                r = cell.get((n, t))
                row.append("" if r is None else ("✓ ok" if r["status"] == "ok" else f"✗ {r['status']}"))
            body.append(row)
        lines += _table(["network", *techniques], body) + [""]
        reasons = {r["status"]: r["reason"] for r in trows if r["status"] != "ok"}
        for status, reason in reasons.items():
            lines.append(f"- `{status}`, e.g.: {reason}")
        lines.append("")

        on_device = any(r.get("acc_device") for r in trows)
        lines += [f"## Accuracy on target `{target}` (Table 2 analogue)", ""]
        if on_device:
            sources = sorted({r["acc_device_source"] for r in trows if r.get("acc_device_source")})
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
        body = []
        for n in nets:
            base = next((r["acc_keras"] for r in trows if r["network"] == n), "")
            row = [n, _fmt_acc(base)]
            for t in techniques:
                r = cell.get((n, t))
                if r is None:
                    row.append("")
                elif on_device:
                    agree = f" ({_fmt_acc(r['device_agreement'])})" if r.get("device_agreement") else ""
                    row.append(_fmt_acc(r["acc_device"]) + agree)
                else:
                    row.append(f"{_fmt_acc(r['acc_tflite'])} / {_fmt_acc(r['acc_tflm'])}")
            body.append(row)
        lines += _table(["network", "base", *techniques], body) + [""]

        lines += [f"## Model and arena bytes on target `{target}`", ""]
        body = []
        for n in nets:
            row = [n]
            for t in techniques:
                r = cell.get((n, t))
                if r is None:
                    row.append("")
                else:
                    arena = r["arena_bytes"] or "–"
                    row.append(f"{r['model_bytes'] or '–'} / {arena}")
            body.append(row)
        lines += _table(["network (model B / arena B)", *techniques], body) + [""]

        timed = [r for r in trows if r.get("latency_ms_median")]
        if timed:
            lines += [f"## Latency and energy on target `{target}` (Fig. 3 and Fig. 4 analogues)", ""]
            lines.append(
                "Latency is the median of the timed runs; energy is per inference over the marker window, "
                "gross and net of the idle baseline; saving is net energy against the lite model of the same network."
            )
            lines.append("")

            def num(r, key, fmt):
                return format(float(r[key]), fmt) if r.get(key) else "–"

            body = [
                [
                    r["network"],
                    r["technique"],
                    f"{num(r, 'latency_ms_median', '.3f')} ({r['latency_source']})",
                    num(r, "energy_mj_gross", ".4f"),
                    num(r, "energy_mj_net", ".4f"),
                    num(r, "power_mw_mean", ".1f"),
                    num(r, "energy_saving_pct", ".1f"),
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
            lines += _table(header, body) + [""]
        lines += pareto_section(trows, target)
    return "\n".join(lines)


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
