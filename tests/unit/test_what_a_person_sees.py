"""What a person sees: the figures, the page, the summary, --help and the messages."""

import html
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.unit.rows import make_row
from tinyhil.plugins.report import plots
from tinyhil.plugins.report import summary as summary_md
from tinyhil.plugins.report.page import write_report

NOT_THE_DATASETS = "does not take the dataset's inputs"


def row(**kw):
    figures = {
        "acc_keras": "0.91",
        "acc_tflite": "0.90",
        "acc_tflm": "0.90",
        "arena_bytes": "11440",
        "model_bytes": "31084",
    }
    return make_row(**{**figures, **kw})


def mixed_run():
    """One network, several techniques, one case that never ran, and a user's .tflite without accuracy."""
    return [
        row(acc_keras="1.0", acc_tflite="1.0", acc_tflm="1.0"),
        row(technique="full_int", acc_tflite="0.89", acc_tflm="0.885", model_bytes="13328", arena_bytes="5456"),
        row(technique="dynamic", status="unsupported_op", acc_tflm="", acc_tflite="0.90", arena_bytes=""),
        row(technique="int4", status="convert_error", reason="converter failed", acc_tflite="", acc_tflm=""),
        row(
            network="sine_float",
            family="tflite-file",
            technique="as_is",
            acc_keras="",
            acc_tflite="",
            acc_tflm="",
            model_bytes="3164",
            arena_bytes="1936",
        ),
    ]


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures make_plots draws, by file name, before they are closed."""
    drawn = {}
    save = plots._save

    def keep(fig, path, plt):
        drawn[path.name] = fig
        fig.canvas.draw()  # tick labels exist only once drawn
        return save(fig, path, plt)

    monkeypatch.setattr(plots, "_save", keep)
    return drawn


def test_every_case_with_a_figure_is_in_a_plot_and_the_page_says_why_not(tmp_path, figures):
    rows = mixed_run()
    drawn = {}
    paths = plots.make_plots(rows, tmp_path / "plots", drawn=drawn)
    assert [p.name for p in paths] == ["fig2_accuracy_host.png", "pareto_host.png"]
    fig2, pareto = drawn["fig2_accuracy_host.png"], drawn["pareto_host.png"]
    for r in rows:
        acc, _ = plots.accuracy_source(r)
        if acc is not None:
            assert fig2[r["case_id"]] == "point", r["case_id"]
            if r["status"] == "ok":
                assert pareto[r["case_id"]] == "point", r["case_id"]
    assert NOT_THE_DATASETS in fig2["sine_float-as_is-host"]
    assert "convert_error" in fig2["C_1-int4-host"]
    legends = [ax.get_legend() for ax in figures["fig2_accuracy_host.png"].axes]
    legend = [t.get_text() for lg in legends if lg is not None for t in lg.get_texts()]
    assert not any("not run" in t for t in legend if t.startswith("as_is")), legend
    panel_text = [t.get_text() for ax in figures["fig2_accuracy_host.png"].axes for t in ax.texts]
    assert any(NOT_THE_DATASETS in t for t in panel_text), panel_text

    summary = summary_md.render(rows, ["lite", "full_int", "dynamic", "int4", "as_is"])
    page = write_report(rows, summary, paths, tmp_path / "report.html").read_text()
    accuracy_table = summary.split("## Accuracy", 1)[1].split("##", 1)[0]
    sine = next(line for line in accuracy_table.splitlines() if line.startswith("| sine_float"))
    assert f"– (the model {NOT_THE_DATASETS})" in sine
    assert "– (no run: convert_error)" in accuracy_table
    assert f"the model {NOT_THE_DATASETS}" in html.unescape(page)


def test_base_series_has_markers_and_accuracy_stops_at_one(tmp_path, figures):
    plots.make_plots(mixed_run(), tmp_path / "plots")
    for ax in figures["fig2_accuracy_host.png"].axes:
        base = [line for line in ax.lines if line.get_label() == "base (Keras)"]
        if base:
            assert base[0].get_marker() not in (None, "None", "", " ")
        assert ax.get_ylim()[1] <= 1.0
    assert figures["pareto_host.png"].axes[0].get_ylim()[1] <= 1.0


def test_cost_axis_reads_bytes_and_every_point_is_named(tmp_path, figures):
    rows = mixed_run()
    plots.make_plots(rows, tmp_path / "plots")
    ax = figures["pareto_host.png"].axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels(minor=False) + ax.get_xticklabels(minor=True)]
    shown = [t for t in labels if t]
    assert shown and not any("times" in t or "^" in t for t in shown), shown
    assert all(t.endswith("kB") or t.endswith(" B") for t in shown), shown
    names = {t.get_text() for t in ax.texts}
    for r in rows:
        if r["status"] == "ok" and plots.accuracy_source(r)[0] is not None:
            assert f"{r['network']}-{r['technique']}" in names


def test_pareto_labels_cover_no_other_label_in_a_crowd():
    """28 points, most within a few kB and a few thousandths of accuracy (as the study's int8
    CNN-LSTMs are): every label is placed where it covers no other label and stays in the axes."""
    import itertools

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    rng = np.random.default_rng(0)
    costs, accuracies = rng.uniform(18e3, 40e3, 28), rng.uniform(0.89, 0.93, 28)
    pts = [(float(c), float(a)) for c, a in zip(costs, accuracies, strict=True)]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.scatter(costs, accuracies)
    ax.set_xscale("log")
    fig.tight_layout()
    plots._label_points(fig, ax, pts, [f"CL_{i}-full_int" for i in range(len(pts))], {0, 1, 2})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]
    plt.close(fig)
    assert len(boxes) == len(pts)
    overlapping = [(a, b) for a, b in itertools.combinations(range(len(boxes)), 2) if boxes[a].overlaps(boxes[b])]
    assert overlapping == []


def test_a_sampled_device_accuracy_is_not_drawn_as_the_splits():
    """--device-windows auto: the board's accuracy is over a sample; where it agreed with host
    TFLM, the plots and Pareto tables use host TFLM's whole-split accuracy and say so."""
    row = {"status": "ok", "acc_device": "0.789", "acc_tflm": "0.784", "acc_device_source": "measured"}
    auto = {**row, "agreement_test": "agrees: max 0.01 at confidence 0.95"}
    assert plots.accuracy_source(auto) == (0.784, "host TFLM, whole split (the target agreed with it, measured)")
    every = {**row, "agreement_test": "none (--device-windows all)"}
    assert plots.accuracy_source(every) == (0.789, "on target (measured)")
    wrong = {**auto, "status": "wrong_output", "agreement_test": "disagrees: max 0.01 at confidence 0.95"}
    assert plots.accuracy_source(wrong)[0] == 0.789


def test_bytes_as_people_read_them():
    assert plots.bytes_text(20_000) == "20 kB"
    assert plots.bytes_text(3_164) == "3.16 kB"
    assert plots.bytes_text(512) == "512 B"
    assert plots.bytes_text(1_500_000) == "1.5 MB"


def test_stale_plots_of_another_target_are_removed(tmp_path):
    out = tmp_path / "plots"
    out.mkdir()
    (out / "fig2_accuracy_esp32.png").write_bytes(b"old")
    (out / "pareto_esp32.png").write_bytes(b"old")
    (out / "my_notes.png").write_bytes(b"mine")
    paths = plots.make_plots(mixed_run(), out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*(p.name for p in paths), "my_notes.png"])


def test_one_number_format_in_every_table():
    rows = [
        row(
            latency_ms_median="12.3456",
            latency_source="simulated",
            energy_mj_gross="0.0123456",
            energy_mj_net="0.0095941",
            energy_source="simulated",
            power_mw_mean="456.78",
        )
    ]
    text = summary_md.render(rows, ["lite"])
    assert "0.0095941" not in text and "0.0096 " not in text
    assert text.count(summary_md.figure(0.0095941)) >= 2  # the latency-energy table and the Pareto table
    assert (
        summary_md.figure(0.0095941) == "0.00959"
        and summary_md.figure(12.3456) == "12.3"
        and summary_md.figure(31084) == "31084"
    )


def test_plurals():
    assert (
        summary_md.plural(1, "case") == "1 case"
        and summary_md.plural(2, "case") == "2 cases"
        and summary_md.plural(0, "row") == "0 rows"
    )


def test_page_counts_cases_in_words(tmp_path):
    page = write_report([row()], "# tinyhil summary\n", [], tmp_path / "report.html").read_text()
    assert "<p>1 case." in page and "1 cases" not in page


def test_terminal_summary_wraps_at_words():
    text = summary_md.render([row(board="a-board-profile-with-a-long-name")], ["lite"])
    wrapped = summary_md.for_terminal(text, 60)
    for line in wrapped.splitlines():
        assert line.startswith("|") or len(line) <= 60, line
    prose = [ln for ln in text.splitlines() if not ln.startswith("|")]
    prose_wrapped = [ln for ln in wrapped.splitlines() if not ln.startswith("|")]
    assert " ".join(" ".join(prose).split()) == " ".join(" ".join(prose_wrapped).split())  # no word cut


def test_help_says_default_and_choices_once():
    from _pytest.config.argparsing import Parser

    from tinyhil.plugins.options import pytest_addoption
    from tinyhil.plugins.settings.table import OPTIONS

    parser = Parser(_ispytest=True)
    pytest_addoption(parser)
    by_name = {o.names()[0]: o for g in parser._groups for o in g.options}
    for opt in OPTIONS:
        argparse_opt = by_name[f"--{opt.name}"]
        text = argparse_opt.attrs()["help"]
        assert "ini tinyhil_" not in text and "tinyhil_" not in str(argparse_opt.attrs().get("metavar", "")), text
        assert text.count("(Default: ") == 1, text
        choices = getattr(opt.parse, "choices", None)
        if choices:
            assert all(c in text for c in choices), text
    assert "(Default: quick)" in by_name["--profile"].attrs()["help"]
    assert "none" in by_name["--virtual-fault"].attrs()["help"]
    assert getattr(OPTIONS[[o.name for o in OPTIONS].index("virtual-fault")].parse, "choices", None)


def test_an_unknown_board_names_the_option_and_own_boards(tmp_path, monkeypatch):
    from tinyhil.plugins.settings.resolve import SettingsError, _look_up_names
    from tinyhil.plugins.settings.table import OPTIONS

    monkeypatch.chdir(tmp_path)
    values = {o.name: (False if o.is_flag else o.parse(o.default)) for o in OPTIONS}
    values["board"] = "esp32s3"
    with pytest.raises(SettingsError) as e:
        _look_up_names(values)
    text = str(e.value)
    # the chip is not a profile: the message lists the profiles, the S3's among them
    assert text.startswith("tinyhil: --board: unknown board 'esp32s3'; known boards: esp32-c3-devkitm-1, ")
    assert "esp32-s3-devkitc-1" in text and "esp32-wroom-32" in text
    assert "--board=my-board.json" in text


def test_a_damaged_tflite_of_ones_own_is_not_a_cache_entry(tmp_path):
    from tinyhil.models.errors import ModelFileError
    from tinyhil.models.model_files import register_model_file

    bad = tmp_path / "mine.tflite"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(ModelFileError) as e:
        register_model_file(bad)
    assert "cache" not in str(e.value) and str(bad) in str(e.value)
    assert "TFLite converter" in str(e.value)


def test_energy_uses_the_voltage_at_the_module():
    from tinyhil.plugins.bench.measure.energy.analysis import analyse
    from tinyhil.plugins.bench.measure.energy.trace import Trace

    rate, shunt_ohms = 10_000.0, 9.8
    n = 3000
    marker = np.zeros(n, bool)
    marker[1000:2000] = True  # a 100 ms window
    current_a = np.where(marker, 0.05, 0.0)
    v_module = np.full(n, 2.8)  # a supply that sags through the shunt: not --supply-volts' 3.3
    trace = Trace(rate, current_a * shunt_ohms, v_module, marker)
    res = analyse(trace, n_inferences=1, shunt_ohms=shunt_ohms)
    assert res.energy_mj_gross == pytest.approx(2.8 * 0.05 * 0.1 * 1e3, rel=1e-3)
    assert res.power_mw_mean == pytest.approx(2.8 * 0.05 * 1e3, rel=1e-3)


def test_tensorflow_start_up_noise_stays_quiet_unless_asked():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "import tinyhil.models, tensorflow as tf, sys; tf.constant(1) + 1; print('tinyhil line', file=sys.stderr)"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "cuInit" not in res.stderr and "cudart_stub" not in res.stderr and "absl::InitializeLog" not in res.stderr
    assert "oneDNN" not in res.stderr, res.stderr
    assert "tinyhil line" in res.stderr
    asked = subprocess.run(  # a user who sets the level asks for TensorFlow's own lines
        [sys.executable, "-c", code], env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"}, capture_output=True, text=True
    )
    assert "oneDNN" in asked.stderr, asked.stderr


def test_training_progress_says_what_happens_before_the_first_epoch(monkeypatch):
    import queue

    from tinyhil.models import parallel_training as pt
    from tinyhil.plugins.report.training_progress import TrainingBoard

    out = []
    TrainingBoard(out.append, tty=False, total=1, jobs=2, profile="quick")
    assert out == [
        "[train] 1 network to train (quick profile), 1 at a time: starting its process (importing TensorFlow)\n"
    ]

    class Trained:
        meta = {"keras_accuracy": 0.9, "epochs_run": 3, "kept_epoch": 2}

    class FakeStudy:
        def __init__(self, config):
            self.config = config

        def trained(self, network):
            return Trained()

    lines = queue.Queue()
    monkeypatch.setattr(pt, "_QUEUE", lines)
    monkeypatch.setattr(pt, "_STUDY", None)
    monkeypatch.setattr(pt, "Study", FakeStudy)
    FakeStudy.dataset = "loaded"
    config = type("Config", (), {"profile": "quick"})()
    assert pt._train_child(config, "C_1").error is None
    said = [lines.get_nowait()[1] for _ in range(lines.qsize())]
    assert said[:2] == ["[train C_1 quick] loading the dataset", "[train C_1 quick] building and training the network"]
