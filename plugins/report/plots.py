"""The paper's figures, regenerated from result rows (PNG, matplotlib).

- ``fig2_accuracy_<target>.png``: accuracy per network size per technique (Fig. 2);
- ``fig3_latency_energy_<target>.png``: latency and net energy per network size (Fig. 3);
- ``fig4_energy_saving_<target>.png``: net energy saved against the lite model (Fig. 4);
- ``pareto_<target>.png``: accuracy against cost (energy where it was obtained, model bytes
  otherwise), Pareto-optimal cases marked.

Every title says the dataset (and that generated data is not UCI-HAR) and every axis
says whether its figure was measured, simulated or estimated. A case without a point says
why in its panel (not run, or a model that does not take the dataset's inputs).
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

from tinyhil.models.networks import NETWORKS
from tinyhil.plugins.report.columns import cell_number
from tinyhil.plugins.report.summary import ESTIMATED, estimated_savings, missing_accuracy
from tinyhil.plugins.report.whole_files import replace_whole

MARKERS = {"lite": "o", "dynamic": "s", "full_int": "^"}
FIGURE_PREFIXES = ("fig2_accuracy_", "fig3_latency_energy_", "fig4_energy_saving_", "pareto_")
POINT = "point"  # how a case shows in a figure, in make_plots' ``drawn`` record


def bytes_text(n: float) -> str:
    """Bytes as people read them: ``512 B``, ``3.16 kB``, ``20 kB``, ``1.5 MB`` (1 kB = 1000 B)."""
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _readable_log_axis(axis, bytes_axis: bool) -> None:
    """Tick labels of a log axis in plain numbers (bytes in kB), not as powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: bytes_text(v) if bytes_axis else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _families(rows: list[dict]) -> dict[str, list[str]]:
    """Networks by family, as the rows give them: Table 1 order first, then a user's by name."""
    known = NETWORKS.names()
    fams: dict[str, list[str]] = defaultdict(list)
    for net, family in sorted(
        {(r["network"], r["family"]) for r in rows},
        key=lambda nf: (known.index(nf[0]) if nf[0] in known else len(known), nf[0]),
    ):
        fams[family].append(net)
    return fams


def _dataset_note(rows: list[dict]) -> str:
    r = rows[0]
    gen = " (generated data, not UCI-HAR)" if r.get("dataset_generated") == "true" else ""
    return f"{r['dataset']}{gen}, {r['profile']} profile, board {r['board']}"


def accuracy_source(r: dict) -> tuple[float | None, str]:
    """The accuracy a row contributes to Fig. 2 (and the Pareto tables), and where it comes from.

    With ``--device-windows auto`` the board classified a sample until agreement was proven:
    where it agreed (``ok``), host TFLM's whole-split accuracy stands for it, since the sample's
    own accuracy is not the split's; where it did not, the board's own figure stays."""
    sampled = (r.get("agreement_test") or "").startswith(("agrees", "disagrees", "undecided"))
    if sampled and r.get("status") == "ok" and cell_number(r.get("acc_tflm")) is not None:
        agreed = r.get("acc_device_source") or "measured"
        return cell_number(r["acc_tflm"]), f"host TFLM, whole split (the target agreed with it, {agreed})"
    if cell_number(r.get("acc_device")) is not None:
        return cell_number(r["acc_device"]), f"on target ({r.get('acc_device_source') or 'measured'})"
    if cell_number(r.get("acc_tflm")) is not None:
        return cell_number(r["acc_tflm"]), "host TFLM (measured)"
    if cell_number(r.get("acc_tflite")) is not None:
        return cell_number(r["acc_tflite"]), "TFLite interpreter (measured; TFLM cannot run it)"
    return None, ""


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower cost and higher accuracy."""
    front = []
    for i, (c, a) in enumerate(points):
        dominated = any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for j, (c2, a2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def caption(path: Path, rows: list[dict]) -> str:
    """What a figure written by :func:`make_plots` shows, with the source of its figures."""
    stem = path.stem
    target = stem.rsplit("_", 1)[-1] if "_" in stem else ""
    trows = [r for r in rows if r.get("target") == target]

    def sources(column: str) -> str:
        found = sorted({r[column] for r in trows if r.get(column)})
        return ", ".join(found) or "not measured"

    if stem.startswith("fig2_accuracy"):
        where = sorted({accuracy_source(r)[1] for r in trows if accuracy_source(r)[0] is not None})
        return (
            f"Fig. 2 analogue: accuracy per network and technique on {target}; "
            f"accuracy from {'; '.join(where) or 'no runtime'}."
        )
    if stem.startswith("fig3_latency_energy") and not any(r.get("latency_ms_median") for r in trows):
        return (
            f"Fig. 3 analogue: latency and energy per inference on {target}, {ESTIMATED}: {sources('estimate_basis')}."
        )
    if stem.startswith("fig4_energy_saving") and not any(r.get("energy_saving_pct") for r in trows):
        return f"Fig. 4 analogue: energy saved against the lite (float) model on {target}, {ESTIMATED}."
    if stem.startswith("fig3_latency_energy"):
        return (
            f"Fig. 3 analogue: latency and net energy per inference on {target}; "
            f"latency {sources('latency_source')}, energy {sources('energy_source')}."
        )
    if stem.startswith("fig4_energy_saving"):
        return f"Fig. 4 analogue: net energy saved against the lite (float) model on {target}; energy {sources('energy_source')}."
    if stem.startswith("pareto"):
        return f"Accuracy against cost on {target}: every case that runs, the Pareto-optimal ones joined and named; cost axis: {cost_of(trows)[1]}."
    return stem


def make_plots(rows: list[dict], out_dir: Path, drawn: dict[str, dict[str, str]] | None = None) -> list[Path]:
    """Writes every figure the rows support; returns their paths.

    Figures an earlier run left in ``out_dir`` (another target, a figure this run has no
    data for) are removed, so the folder holds this run's figures only.

    Args:
        rows: The run's rows.
        out_dir: The plots folder.
        drawn: When given, filled with each figure's file name -> ``{case_id: how it
            shows}``: :data:`POINT`, or the words its panel says instead of a point.
    """
    plt = _plt()
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = {} if drawn is None else drawn
    written = []
    by_target: dict[str, list[dict]] = defaultdict(list)
    several = len({r.get("board") for r in rows}) > 1  # --board a,b: a target's figures per board
    for r in rows:
        by_target[f"{r['target']}-{r['board']}" if several else r["target"]].append(r)
    for target, trows in by_target.items():
        fams = _families(trows)
        techniques = list(dict.fromkeys(r["technique"] for r in trows))
        cell = {(r["network"], r["technique"]): r for r in trows}
        note = _dataset_note(trows)

        # Fig. 2: accuracy per network size
        fig2 = drawn.setdefault(f"fig2_accuracy_{target}.png", {})
        fig, axes = plt.subplots(1, len(fams), figsize=(6 * len(fams), 5.4), squeeze=False)
        for ax, (fam, nets) in zip(axes[0], fams.items(), strict=True):
            _fig2_panel(ax, nets, techniques, cell, fig2)
            ax.set_title(f"{fam} on {target}")
        fig.suptitle(f"Accuracy per network and technique (Fig. 2 analogue)\n{note}", fontsize=10)
        fig.tight_layout()
        written.append(_save(fig, out_dir / f"fig2_accuracy_{target}.png", plt))

        # Fig. 3 and Fig. 4 need timing (and energy) from a board
        timed = [r for r in trows if cell_number(r.get("latency_ms_median")) is not None]
        if timed:
            written.append(_fig3(plt, fams, techniques, cell, target, note, out_dir))
        elif any(cell_number(r.get("latency_ms_estimated")) is not None for r in trows):
            # the host target: the timing model's estimates, labelled so in every title and axis
            written.append(_fig3(plt, fams, techniques, cell, target, note, out_dir, ESTIMATED_SERIES))
            saving = estimated_savings(trows)
            ecell = {
                k: dict(r, energy_saving_pct=saving.get(r["case_id"]), energy_source="estimated")
                for k, r in cell.items()
            }
            if saving:
                written.append(_fig4(plt, fams, techniques, ecell, target, note, out_dir, estimated=True))
        if any(cell_number(r.get("energy_saving_pct")) is not None for r in trows):
            written.append(_fig4(plt, fams, techniques, cell, target, note, out_dir))
        written.append(_pareto(plt, trows, target, note, out_dir, drawn.setdefault(f"pareto_{target}.png", {})))
    _remove_stale(out_dir, written)
    return written


def _remove_stale(out_dir: Path, written: list[Path]) -> None:
    """Removes the figures (by tinyhil's file names only) that this run did not write."""
    keep = {p.name for p in written}
    for old in out_dir.glob("*.png"):
        if old.name not in keep and old.name.startswith(FIGURE_PREFIXES):
            old.unlink(missing_ok=True)


def _fig2_panel(ax, nets: list[str], techniques: list[str], cell: dict, drawn: dict[str, str]) -> None:
    """One family's accuracy: the Keras base, each technique, and why a case has no point."""
    base = [cell_number(cell.get((n, techniques[0]), {}).get("acc_keras")) for n in nets]
    if any(b is not None for b in base):
        ax.plot(nets, base, "k--", marker="x", label="base (Keras)", clip_on=False)
    notes = []
    for t in techniques:
        rows = [cell.get((n, t)) for n in nets]
        vals = [accuracy_source(r) if r is not None else (None, "") for r in rows]
        for r, (v, _) in zip(rows, vals, strict=True):
            if r is None:
                continue
            drawn[r["case_id"]] = POINT if v is not None else missing_accuracy(r)
            if v is None:
                notes.append(f"{r['network']} {t}: {drawn[r['case_id']]}")
        if all(v is None for v, _ in vals):
            continue  # no point to draw: the panel says why below
        source = "; ".join(sorted({src for _, src in vals if src}))
        hollow = "TFLite interpreter" in source
        ax.plot(
            nets,
            [v for v, _ in vals],
            marker=MARKERS.get(t, "d"),
            label=f"{t}: {source}",
            markerfacecolor="none" if hollow else None,
            clip_on=False,
        )
    if notes:  # where the points would be: in the middle of an empty panel
        x, ha = (0.5, "center") if not ax.lines else (0.02, "left")
        ax.text(x, 0.04, "no accuracy:\n" + "\n".join(notes), fontsize=8, transform=ax.transAxes, ha=ha, va="bottom")
    ax.set_xlabel("network (increasing size)")
    ax.set_ylabel("accuracy on the test windows")
    _accuracy_axis(ax)
    ax.grid(alpha=0.3)
    if ax.lines:  # below the axes: points at 1.0 stay in sight
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def _accuracy_axis(ax) -> None:
    """Accuracy is a share: the axis stops at 1 (points on it are drawn whole: ``clip_on=False``)."""
    bottom, top = ax.get_ylim()
    if not (ax.lines or ax.collections):
        ax.set_ylim(0.0, 1.0)
        return
    bottom = min(bottom, 0.98)
    ax.set_ylim(max(0.0, bottom - 0.05 * (1.0 - bottom)), 1.0)  # the lowest point clear of the axis


def _save(fig, path: Path, plt) -> Path:
    png = io.BytesIO()
    try:
        fig.savefig(png, format="png", dpi=110)
    finally:
        plt.close(fig)
    replace_whole(path, png.getvalue())  # whole or not at all: a full disk leaves the last figure
    return path


MEASURED_SERIES = [
    ("latency_ms_median", "latency per inference, ms", "latency_source"),
    ("energy_mj_net", "net energy per inference, mJ", "energy_source"),
]
ESTIMATED_SERIES = [
    ("latency_ms_estimated", "estimated latency per inference, ms", None),
    ("energy_mj_estimated", "estimated energy per inference, mJ", None),
]


def _fig3(plt, fams, techniques, cell, target, note, out_dir, series=MEASURED_SERIES) -> Path:
    estimated = series is ESTIMATED_SERIES
    fig, axes = plt.subplots(2, len(fams), figsize=(6 * len(fams), 7), squeeze=False)
    for col, (fam, nets) in enumerate(fams.items()):
        for row_i, (key, label, src_key) in enumerate(series):
            ax = axes[row_i][col]
            sources = set()
            for t in techniques:
                ys = [cell_number(cell.get((n, t), {}).get(key)) for n in nets]
                if estimated:
                    mine = {"estimated"} if any(y is not None for y in ys) else set()
                else:
                    mine = {cell[(n, t)].get(src_key) for n in nets if (n, t) in cell and cell[(n, t)].get(src_key)}
                sources |= mine
                if any(y is not None for y in ys):  # each series says whether it is simulated
                    ax.plot(nets, ys, marker=MARKERS.get(t, "d"), label=f"{t} ({', '.join(sorted(mine))})")
            ax.set_ylabel(label)
            ax.set_xlabel(f"network; {', '.join(sorted(sources)) or 'not measured'}")
            ax.set_title(f"{fam} on {target}")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
            else:
                ax.text(0.5, 0.5, "not measured on this target", ha="center", va="center", transform=ax.transAxes)
    if estimated:
        basis = "; ".join(sorted({r.get("estimate_basis") for r in cell.values() if r.get("estimate_basis")}))
        fig.suptitle(
            f"Latency and energy per network and technique (Fig. 3 analogue)\nESTIMATED, not measured: {basis.split(' (models')[0]}\n{note}",
            fontsize=9,
        )
    else:
        fig.suptitle(f"Latency and energy per network and technique (Fig. 3 analogue)\n{note}", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_dir / f"fig3_latency_energy_{target}.png", plt)


def _fig4(plt, fams, techniques, cell, target, note, out_dir, estimated: bool = False) -> Path:
    import numpy as np

    others = [t for t in techniques if t != "lite"]
    fig, axes = plt.subplots(1, len(fams), figsize=(6 * len(fams), 4.2), squeeze=False)
    for ax, (fam, nets) in zip(axes[0], fams.items(), strict=True):
        x = np.arange(len(nets))
        width = 0.8 / max(1, len(others))
        sources = set()
        for k, t in enumerate(others):
            ys = [cell_number(cell.get((n, t), {}).get("energy_saving_pct")) for n in nets]
            sources |= {
                cell[(n, t)].get("energy_source") for n in nets if (n, t) in cell and cell[(n, t)].get("energy_source")
            }
            ax.bar(x + k * width, [y if y is not None else 0 for y in ys], width, label=t)
        ax.set_xticks(x + width * (len(others) - 1) / 2, nets)
        ax.set_ylabel("estimated energy saved vs lite, %" if estimated else "net energy saved vs lite, %")
        ax.set_xlabel(f"network; energy {', '.join(sorted(s for s in sources if s)) or 'not measured'}")
        ax.set_title(f"{fam} on {target}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    if estimated:
        fig.suptitle(
            f"Energy saving against the float model (Fig. 4 analogue)\nESTIMATED by the timing model, not measured\n{note}",
            fontsize=9,
        )
    else:
        fig.suptitle(f"Energy saving against the float model (Fig. 4 analogue)\n{note}", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_dir / f"fig4_energy_saving_{target}.png", plt)


def cost_of(rows: list[dict]) -> tuple[str, str]:
    """The cost axis: net energy when every ok row has it, else model bytes."""
    ok = [r for r in rows if r["status"] == "ok"]
    if ok and all(cell_number(r.get("energy_mj_net")) is not None for r in ok):
        return "energy_mj_net", f"net energy per inference, mJ ({', '.join(sorted({r['energy_source'] for r in ok}))})"
    return "model_bytes", "model size (measured)"


def _pareto(plt, trows, target, note, out_dir, drawn: dict[str, str]) -> Path:
    key, label = cost_of(trows)
    pts, names = [], []
    for r in trows:
        acc, _ = accuracy_source(r)
        cost = cell_number(r.get(key))
        if r["status"] == "ok" and acc is not None and cost is not None:
            pts.append((cost, acc))
            names.append(f"{r['network']}-{r['technique']}")
            drawn[r["case_id"]] = POINT
        else:
            drawn[r["case_id"]] = (
                missing_accuracy(r) if acc is None else f"not plotted: {r['status']} (cases that run only)"
            )
    fig, ax = plt.subplots(figsize=(7.5, 5))
    if pts:
        front = pareto_front(pts)
        ax.scatter([c for c, _ in pts], [a for _, a in pts], color="0.6", label="cases that run", clip_on=False)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "r-o", label="Pareto front", clip_on=False)
        ax.set_xscale("log")
        _readable_log_axis(ax.xaxis, bytes_axis=key.endswith("_bytes"))
        ax.legend(fontsize=8)
        _accuracy_axis(ax)
    ax.set_xlabel(label)
    ax.set_ylabel("accuracy (as in Fig. 2)")
    ax.grid(alpha=0.3)
    ax.set_title(f"Accuracy against cost on {target}\n{note}", fontsize=10, pad=12)
    fig.tight_layout()
    if pts:
        _label_points(fig, ax, pts, names, set(front))
    return _save(fig, out_dir / f"pareto_{target}.png", plt)


# Where a point's label may go, in points from it: near first, then farther (with a leader line).
_LABEL_OFFSETS = [
    (dx * r, dy * r, ha, va)
    for r in (1, 2.2, 3.6, 5.2, 7, 9)
    for dx, dy, ha, va in (
        (5, -5, "left", "top"),
        (5, 5, "left", "bottom"),
        (-5, -5, "right", "top"),
        (-5, 5, "right", "bottom"),
        (0, -8, "center", "top"),
        (0, 8, "center", "bottom"),
        (8, 0, "left", "center"),
        (-8, 0, "right", "center"),
    )
]


def _label_points(fig, ax, pts: list[tuple[float, float]], names: list[str], on_front: set[int]) -> None:
    """Names every point, each label where it covers no other label, no point and stays inside
    the axes (tried near the point first, then farther with a leader line); the Pareto front's
    points are placed first."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    to_px = ax.transData.transform
    pad = 3.0  # pixels around a marker that no label covers
    taken = [Bbox.from_extents(x - pad, y - pad, x + pad, y + pad) for x, y in map(to_px, pts)]
    order = sorted(range(len(pts)), key=lambda i: (i not in on_front, pts[i]))
    for i in order:
        style = {"fontsize": 7, "color": "k" if i in on_front else "0.4", "textcoords": "offset points"}
        placed = None
        for dx, dy, ha, va in _LABEL_OFFSETS:
            far = abs(dx) + abs(dy) > 12
            arrow = {"arrowstyle": "-", "color": "0.55", "lw": 0.6} if far else None
            text = ax.annotate(names[i], pts[i], xytext=(dx, dy), ha=ha, va=va, arrowprops=arrow, **style)
            text.update_positions(renderer)
            box = Text.get_window_extent(text, renderer).padded(1)  # the words, not the leader line
            fits = inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)
            if fits and not any(box.overlaps(t) for t in taken):
                placed = box
                break
            text.remove()
        if placed is None:  # crowded everywhere: the first place, with a leader line
            dx, dy, ha, va = _LABEL_OFFSETS[8]
            text = ax.annotate(
                names[i],
                pts[i],
                xytext=(dx, dy),
                ha=ha,
                va=va,
                arrowprops={"arrowstyle": "-", "color": "0.7", "lw": 0.5},
                **style,
            )
            text.update_positions(renderer)
            placed = Text.get_window_extent(text, renderer)
        taken.append(placed)
