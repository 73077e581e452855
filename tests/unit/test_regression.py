"""Baselines, the two-run diff, the figures and the report page."""

import csv

import pytest

from tests.unit.rows import make_row
from tests.unit.subrun import read_csv, run
from tinyhil import resources
from tinyhil.plugins.report.baseline import Tolerances, diff, main, read_rows, regressions, render_diff
from tinyhil.plugins.report.columns import COLUMN_NAMES, derive_energy_savings
from tinyhil.plugins.report.page import markdown_to_html, write_report
from tinyhil.plugins.report.plots import caption, make_plots, pareto_front


def row(**kw):
    return make_row(**{"acc_tflm": "0.90", "arena_bytes": "1000", "model_bytes": "5000", "tflite_micro": "A", **kw})


def test_regressions_name_the_figure():
    tol = Tolerances()
    assert regressions(row(), row(), tol) == []
    assert regressions(row(acc_tflm="0.895"), row(), tol) == []  # within one point
    (msg,) = regressions(row(acc_tflm="0.85"), row(), tol)
    assert msg.startswith("acc_tflm dropped 0.9000 -> 0.8500")
    (msg,) = regressions(row(arena_bytes="1100"), row(), tol)
    assert msg == "arena_bytes grew 1000 -> 1100 (+10.0% > tolerance 5%)"
    (msg,) = regressions(row(status="ram_overflow", reason="model copy too big"), row(), tol)
    assert msg == "verdict changed: ok -> ram_overflow (model copy too big)"
    assert regressions(row(latency_ms_median="1.2"), row(latency_ms_median="1.0"), tol)[0].startswith(
        "latency_ms_median grew"
    )
    assert regressions(row(latency_ms_median="1.2"), row(latency_ms_median="1.0"), Tolerances(latency=0.5)) == []


def test_diff_lists_changes_versions_and_cases():
    old = [row(), row(case_id="C_2-lite-host", network="C_2")]
    new = [row(arena_bytes="1200", tflite_micro="B"), row(case_id="C_3-lite-host", network="C_3", tflite_micro="B")]
    d = diff(old, new)
    assert d.changes == [("C_1-lite-host", "arena_bytes", "1000", "1200")]
    assert d.appeared == ["C_3-lite-host"] and d.disappeared == ["C_2-lite-host"]
    text = render_diff(d, "old.csv", "new.csv")
    assert "| tflite_micro (changed) | A | B |" in text
    assert "| C_1-lite-host | arena_bytes | 1000 | 1200 | +200 (+20.0%) |" in text
    assert "Cases only in this run: C_3-lite-host." in text


def test_diff_command(tmp_path, capsys):
    for name, rows in (("a.csv", [row()]), ("b.csv", [row(acc_tflm="0.8")])):
        with open(tmp_path / name, "w", newline="") as f:
            w = csv.DictWriter(f, COLUMN_NAMES)
            w.writeheader()
            w.writerows(rows)
    assert main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--out", str(tmp_path / "d.md")]) == 0
    assert "| C_1-lite-host | acc_tflm | 0.90 | 0.8 |" in capsys.readouterr().out
    assert (tmp_path / "d.md").exists()
    assert main([str(tmp_path / "missing.csv"), str(tmp_path / "b.csv")]) == 2
    with pytest.raises(ValueError, match="does not exist"):
        read_rows(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv holds no rows"):
        read_rows(tmp_path / "empty.csv")


def test_energy_saving_against_lite():
    rows = [
        row(energy_mj_net="0.10", energy_source="simulated", target="v"),
        row(
            case_id="C_1-full_int-v", technique="full_int", energy_mj_net="0.07", energy_source="simulated", target="v"
        ),
        row(case_id="C_1-full_int-m", technique="full_int", energy_mj_net="0.07", energy_source="measured", target="v"),
    ]
    out = derive_energy_savings(rows)
    assert out[1]["energy_saving_pct"] == "30" and out[2]["energy_saving_pct"] == ""  # never across sources


def test_pareto_front():
    pts = [(1, 0.5), (2, 0.7), (3, 0.6), (4, 0.9), (0.5, 0.4)]
    assert pareto_front(pts) == [4, 0, 1, 3]


def test_plots_and_page_from_rows(tmp_path):
    rows = [
        row(),
        row(case_id="C_1-full_int-host", technique="full_int", acc_tflm="0.88", model_bytes="1500"),
        row(case_id="C_1-dynamic-host", technique="dynamic", status="unsupported_op", acc_tflm="", acc_tflite="0.9"),
        row(case_id="CL_1-lite-host", network="CL_1", family="1D_CNN_LSTM", acc_tflm="0.7"),
    ]
    plots = make_plots(rows, tmp_path / "plots")
    assert [p.name for p in plots] == ["fig2_accuracy_host.png", "pareto_host.png"]  # no timing on host: no Fig. 3/4
    assert all(p.stat().st_size > 10_000 for p in plots)
    page = write_report(
        rows, "# tinyhil summary\n\n| network | lite |\n|---|---|\n| C_1 | ✓ ok |\n", plots, tmp_path / "report.html"
    )
    text = page.read_text()
    assert "generated</strong> (synthetic-har), not UCI-HAR" in text
    assert '<td class="ok">✓ ok</td>' in text and 'src="plots/fig2_accuracy_host.png"' in text
    # captions say what a figure shows and where its numbers come from, not the file name
    assert "<figcaption>Fig. 2 analogue: accuracy per network and technique on host; accuracy from " in text
    assert "host TFLM (measured)" in text and "TFLite interpreter (measured; TFLM cannot run it)" in text
    assert "<figcaption>fig2_accuracy_host</figcaption>" not in text


def test_simulated_figures_say_so_in_their_caption_and_legend(tmp_path):
    timed = dict(latency_ms_median="0.4", latency_source="simulated", energy_mj_net="0.02", energy_source="simulated")
    rows = [
        row(case_id="C_1-lite-v", target="v", acc_device="0.8", acc_device_source="simulated", **timed),
        row(case_id="C_1-full_int-v", technique="full_int", target="v", acc_device="0.8", **timed),
    ]
    plots = make_plots(rows, tmp_path / "plots")
    fig3 = next(p for p in plots if p.name.startswith("fig3"))
    assert caption(fig3, rows) == (
        "Fig. 3 analogue: latency and net energy per inference on v; latency simulated, energy simulated."
    )


def test_markdown_subset():
    h = markdown_to_html("# T\n\nSome **bold** `x`.\n\n- a\n- b\n\n| h |\n|---|\n| ✗ bad |\n")
    assert "<h1>T</h1>" in h and "<strong>bold</strong>" in h and "<li>a</li>" in h and 'class="bad"' in h


def test_degraded_run_fails_against_the_baseline(project):
    """A smaller memory budget (the RAM board profile) against a baseline from the flash profile."""
    expectations = resources.expectations_dir()
    args = ("-m", "offline", "--networks", "C_4", "--techniques", "lite,full_int", f"--expectations-dir={expectations}")
    run(project, *args).assert_outcomes(passed=2)
    (project.path / "base.csv").write_bytes((project.path / "reports" / "results.csv").read_bytes())
    res = run(project, *args, "--board", "esp32-wroom-32-ram", "--baseline=base.csv", "--report-dir=degraded")
    res.assert_outcomes(failed=1, passed=1)
    res.stdout.fnmatch_lines(
        [
            "*C_4-lite-host regressed against base.csv: verdict changed: ok -> ram_overflow (model copy 208268 B > largest heap block*",
            "*Difference from the baseline*",
            "*| C_4-lite-host | status | ok | ram_overflow |*",
        ]
    )
    assert (project.path / "degraded" / "report.html").exists()
    assert [r["status"] for r in read_csv(project, "degraded")] == ["ram_overflow", "ok"]
