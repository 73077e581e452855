"""The pytest plugins, exercised as a user would: a real sub-run of the study matrix."""

import json
import xml.etree.ElementTree as ET

import pytest

from tests.unit.subrun import ROOT, read_csv, run
from tinyhil.models.networks import get_network
from tinyhil.models.training import training_recipe
from tinyhil.plugins.report.columns import COLUMN_NAMES


@pytest.mark.parametrize(
    "args, message",
    [
        (["--networks", "C_9"], "unknown network 'C_9'; known networks: *C_1*"),
        (
            ["--techniques", "int3"],
            "unknown technique 'int3'; known techniques: *full_int*lite*prune<sparsity_pct>*; or one of the sets paper, extended, all*",
        ),
        (["--board", "esp8266"], "unknown board 'esp8266'; known boards: esp32-c3-devkitm-1, *esp32-wroom-32*"),
        (["--seed", "x"], "*argument --seed: expected a whole number, got 'x'"),
        (["--seed", "-1"], "*argument --seed: must be from 0 to 4294967295, got -1"),
        (["--split", "random"], "*argument --split: unknown value 'random'; known: paper, subjects"),
        (["--profile", "slow"], "*argument --profile: unknown value 'slow'; known: *quick*"),
        (["--device-windows", "0"], "*argument --device-windows: expected auto, all or a whole number >= 1, got '0'"),
        (["--device-windows=-5"], "*argument --device-windows: expected auto, all or a whole number >= 1, got '-5'"),
        (
            ["--max-disagreement=1.5"],
            "*argument --max-disagreement: must be a share between 0 and 1 (both excluded), got 1.5",
        ),
        (["--agreement-confidence=0"], "*argument --agreement-confidence: must be a share between 0 and 1*got 0"),
        (["--inferences", "0"], "*argument --inferences: must be >= 1, got 0"),
        (["--device-timeout", "0"], "*argument --device-timeout: must be > 0, got 0"),
        (["--hil-retries=-1"], "*argument --hil-retries: must be >= 0, got -1"),
        (["--seed=99999999999999999999"], "*argument --seed: must be from 0 to 4294967295, got 99999999999999999999"),
        (["--techniques", "prune150"], "*--techniques: prune150: sparsity_pct must be from 0 to 99, got 150"),
        (["--techniques", "full_int+lut99"], "*--techniques: lut99: bits must be from 1 to 7, got 99"),
        (
            ["--techniques", "distill_t0+full_int"],
            "*--techniques: distill_t0: temperature must be from 1 to 100, got 0",
        ),
        (["--techniques", "prune"], "*--techniques: prune: write the sparsity_pct in the id, as in prune50"),
        (
            ["--techniques", "full_int++lut4"],
            "*--techniques: full_int++lut4: an empty step; join steps with a single +*",
        ),
        (["--model-ids", "C_1=kws 01"], "*--model-ids: 'C_1=kws 01' is not network=id*"),
        (["--min-agreement", "1.5"], "*--min-agreement is a share from 0 to 1, got 1.5*"),
        (["-m", "hil", "--virtual-board", "--energy", "joulescope"], "*--energy joulescope measures a real board*"),
        (["--report-dir=/proc/x"], "*--report-dir /proc/x cannot be written*give a folder you can write to"),
        (["--report-dir=pytest.ini"], "*--report-dir pytest.ini is a file; give a folder*"),
    ],
)
def test_bad_options_stop_the_run_with_the_known_values(project, args, message):
    res = run(project, *args)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*" + message])


def test_a_bad_ini_value_is_refused_with_its_key(project):
    ini = project.path / "pytest.ini"
    ini.write_text(ini.read_text() + "tinyhil_inferences = 0\n")
    res = run(project, "--co")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*ini option tinyhil_inferences = '0': must be >= 1, got 0; fix it in pytest.ini*"])


def test_help_groups_options_by_concern(project):
    res = run(project, "--help")
    out = res.stdout.str()
    positions = [out.index(f"tinyhil {group}:") for group in ("study", "report", "regression", "bench", "energy")]
    assert positions == sorted(positions)
    section = out[positions[3] : positions[4]]  # bench
    assert "--device-windows" in section and "--shunt-ohms" not in section and "--networks" not in section


def test_a_broken_board_file_stops_only_the_run_that_names_it(project):
    import json

    doc = json.loads((ROOT / "models" / "data" / "boards" / "esp32-wroom-32.json").read_text())
    (project.path / "bad-board.json").write_text(json.dumps({**doc, "flash_speed_mhz": 80}))
    res = run(project, "--board=bad-board.json", "--co")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*board profile bad-board.json: unknown key 'flash_speed_mhz'; known keys: name*"])
    (project.path / "good-board.json").write_text(json.dumps({**doc, "name": "my-esp32"}))
    res = run(project, "--board=good-board.json", "-m", "offline", "--networks", "C_1", "--techniques", "lite")
    res.assert_outcomes(passed=1)
    assert read_csv(project)[0]["board"] == "my-esp32"


def test_a_npz_dataset_goes_through_the_study(project):
    import numpy as np

    rng = np.random.default_rng(1)
    y_train, y_test = rng.integers(0, 3, 300), rng.integers(0, 3, 60)
    # three classes told apart by their mean: learnable in a few epochs
    x_train = rng.normal(size=(300, 32, 4)).astype(np.float32) + 3 * y_train[:, None, None]
    x_test = rng.normal(size=(60, 32, 4)).astype(np.float32) + 3 * y_test[:, None, None]
    np.savez(project.path / "mine.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    res = run(project, "--dataset=mine.npz", "-m", "offline", "--networks", "C_1", "--techniques", "lite")
    res.assert_outcomes(passed=1)
    (row,) = read_csv(project)
    assert row["dataset"] == "mine.npz" and row["split"] == "file" and row["status"] == "ok"
    # well above chance (1/3), and TFLM gives the float model's accuracy on the file's test split
    assert float(row["acc_keras"]) > 0.5 and abs(float(row["acc_tflm"]) - float(row["acc_keras"])) < 0.05
    np.savez(project.path / "broken.npz", x_train=x_train, y_train=y_train, x_test=x_test)
    res = run(project, "--dataset=broken.npz", "--co")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*dataset broken.npz: missing key 'y_test'; it must hold x_train*"])


def test_hil_without_a_board_stops_at_once(project):
    res = run(project, "-m", "hil", "--networks", "C_1")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stdout.fnmatch_lines(
        ["*3 bench (hil) cases are selected but no board is configured*", "*--port*", "*--virtual-board*"]
    )
    assert "passed" not in res.stdout.str()


def test_wrong_data_dir_stops_once_with_the_fix(project, tmp_path):
    res = run(
        project, "-m", "offline", "--dataset", "uci-har", f"--data-dir={tmp_path / 'nope'}", "--networks", "C_1,C_2"
    )
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stdout.fnmatch_lines(
        ["*tinyhil: UCI-HAR:*nope does not exist*python -m tinyhil.models.datasets.uci_har_cli download*"]
    )
    assert "failed" not in res.stdout.str()


def test_training_progress_reaches_the_terminal(project):
    res = run(project, "-m", "offline", "--networks", "C_1", "--techniques", "lite", "--seed", "5")
    res.assert_outcomes(passed=1)
    epochs = training_recipe("quick", get_network("C_1"))["epochs"]
    res.stdout.fnmatch_lines(
        [
            f"[[]train C_1 quick[]] epoch 1/{epochs} loss=* acc=* val_loss=* val_acc=* lr=* s)",
            "[[]train C_1 quick[]] done: * epochs, kept epoch *, test acc=* s; 1/1 networks, * s elapsed)",
        ]
    )


def test_study_records_properties_csv_summary_and_expectations(project):
    args = ("-m", "offline", "--networks", "C_1", "--techniques", "lite,dynamic")
    first = run(project, *args)
    # no expectations yet: ok is assumed, so the dynamic case fails with TFLM's words
    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines(
        [
            "*C_1-dynamic-host: verdict changed*got unsupported_op: TFLM: Input type: FLOAT32 with filter type: INT8 not supported*"
        ]
    )

    update = run(project, *args, "--update-expectations")
    update.assert_outcomes(passed=2)
    written = list((project.path / "exp" / "esp32-wroom-32").glob("tflm-*.json"))
    assert len(written) == 1
    assert json.loads(written[0].read_text())["cases"]["C_1-dynamic"]["status"] == "unsupported_op"

    again = run(project, *args)
    again.assert_outcomes(passed=1, xfailed=1)
    again.stdout.fnmatch_lines(["*Fits and runs on target `host`*", "*| C_1 | ✓ ok | ✗ unsupported_op |*"])

    rows = read_csv(project)
    assert [r["case_id"] for r in rows] == ["C_1-lite-host", "C_1-dynamic-host"]
    assert list(rows[0]) == COLUMN_NAMES
    lite, dyn = rows
    assert lite["status"] == "ok" and lite["fits"] == "true" and int(lite["arena_bytes"]) > 0
    assert float(lite["acc_tflm"]) > 0.3 and lite["dataset_generated"] == "true"
    assert lite["latency_ms_median"] == "" and lite["energy_mj_net"] == ""  # host measures neither: empty, never 0
    assert dyn["status"] == "unsupported_op" and dyn["runs"] == "false" and dyn["acc_tflm"] == ""
    assert "FULLY_CONNECTED" in dyn["reason"]

    props = {
        tc.get("name"): {p.get("name"): p.get("value") for p in tc.iter("property")}
        for tc in ET.parse(project.path / "reports" / "junit.xml").getroot().iter("testcase")
    }
    assert props["test_case[C_1-lite-host]"]["tinyhil.status"] == "ok"
    assert props["test_case[C_1-lite-host]"]["tinyhil.model_bytes"] == lite["model_bytes"]
    assert "not supported" in props["test_case[C_1-dynamic-host]"]["tinyhil.reason"]
    assert (project.path / "reports" / "summary.md").read_text().startswith("# tinyhil summary")
    assert (project.path / "reports" / "models" / "C_1-lite" / "g_model.cc").exists()

    # a verdict that changes either way fails, naming the case and both verdicts
    data = json.loads(written[0].read_text())
    data["cases"]["C_1-lite"] = {"status": "ram_overflow", "reason": "edited"}
    written[0].write_text(json.dumps(data))
    changed = run(project, *args)
    changed.assert_outcomes(failed=1, xfailed=1)
    changed.stdout.fnmatch_lines(
        ["*C_1-lite-host: verdict changed on esp32-wroom-32: expected ram_overflow (edited), got ok*"]
    )


def test_resume_skips_finished_cases_and_keeps_their_rows(project):
    args = ("-m", "offline", "--networks", "C_1", "--techniques", "lite,full_int")
    run(project, *args, "--techniques", "lite").assert_outcomes(passed=1)
    res = run(project, *args, "--resume")
    res.assert_outcomes(passed=1, skipped=1)
    res.stdout.fnmatch_lines(["*finished in an earlier run*"])
    assert sorted(r["case_id"] for r in read_csv(project)) == ["C_1-full_int-host", "C_1-lite-host"]


def test_resume_runs_again_what_other_settings_produced(project):
    """A row from another --teacher is not kept: its case runs again and replaces it; the rest stays."""
    args = ("-m", "offline", "--networks", "C_1", "--techniques", "lite,distill_t4+full_int")
    run(project, *args, "--teacher", "C_2").assert_outcomes(passed=2)
    res = run(project, *args, "--teacher", "C_3", "--resume")
    res.assert_outcomes(passed=1, skipped=1)
    res.stdout.fnmatch_lines(
        [
            "*--resume kept 1 finished rows with this run's settings*",
            "*--resume: 1 rows came from other settings (settings_key differs in 1); their cases run again*",
        ]
    )
    rows = read_csv(project)
    assert sorted(r["case_id"] for r in rows) == ["C_1-distill_t4+full_int-host", "C_1-lite-host"]
    assert "teacher=C_3" in next(r for r in rows if "distill" in r["case_id"])["compression_notes"]


INTERRUPT_AFTER_FIRST = """
def pytest_runtest_logreport(report):
    if report.when == "call":
        raise KeyboardInterrupt
"""


def test_an_interrupted_run_says_so_in_junit_and_summary(project):
    (project.path / "interrupt_after_first.py").write_text(INTERRUPT_AFTER_FIRST)
    args = ("-m", "offline", "--networks", "C_1", "--techniques", "lite,full_int,dynamic")
    res = run(project, "-p", "interrupt_after_first", *args)
    assert res.ret == pytest.ExitCode.INTERRUPTED
    suite = ET.parse(project.path / "reports" / "junit.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["tinyhil.interrupted"] == "interrupted after 1 of 3 cases"
    assert int(suite.get("errors")) >= 1, "an interrupted run must not read as a clean pass"
    summary = (project.path / "reports" / "summary.md").read_text()
    assert summary.startswith("**Run interrupted after 1 of 3 cases** (Ctrl-C)")


def test_a_killed_run_keeps_finished_rows(project):
    """Simulates a kill after the first row: the partial line is dropped, the rest stays."""
    from tinyhil.plugins.report.csv_file import CsvReport

    run(project, "-m", "offline", "--networks", "C_1", "--techniques", "lite").assert_outcomes(passed=1)
    path = project.path / "reports" / "results.csv"
    with open(path, "a") as f:
        f.write("C_1-full_int-host,C_1,1D_CNN,full_int,ho")  # a write cut by the kill
    assert [r["case_id"] for r in CsvReport(path, resume=True).rows()] == ["C_1-lite-host"]
    assert path.read_text().endswith("\n"), "resuming cuts the torn row back to the last complete line"

    # The torn case runs again and its new row stands on a line of its own.
    path.write_text(path.read_text() + "C_1-full_int-host,C_1,1D_CNN,full_int,ho")
    res = run(project, "-m", "offline", "--networks", "C_1", "--techniques", "lite,full_int", "--resume")
    res.assert_outcomes(passed=1, skipped=1)
    res.stdout.fnmatch_lines(["*removed a torn last row (40 B cut by a crash)*"])
    rows = read_csv(project)
    assert [r["case_id"] for r in rows] == ["C_1-lite-host", "C_1-full_int-host"]
    assert rows[1]["status"] == "ok" and rows[1]["run_started"]


def test_parallel_run_writes_one_merged_csv_and_junit(project):
    args = ("-n", "2", "-m", "offline", "--networks", "C_1", "--techniques", "lite,full_int", "--report-dir=out")
    run(project, *args).assert_outcomes(passed=2)
    assert sorted(r["case_id"] for r in read_csv(project, "out")) == ["C_1-full_int-host", "C_1-lite-host"]
    # JUnit goes beside results.csv, so runs with different --report-dir keep their own
    cases = list(ET.parse(project.path / "out" / "junit.xml").getroot().iter("testcase"))
    assert len(cases) == 2 and all(tc.find("properties") is not None for tc in cases)
    assert not (project.path / "reports" / "junit.xml").exists()


def test_an_option_value_written_after_a_space_is_not_taken_for_a_test_path(project, tmp_path):
    """pytest picks its configuration from the path arguments before it loads plugins: an
    existing folder after --report-dir used to hide pytest.ini and the conftest."""
    out = tmp_path / "elsewhere"
    out.mkdir()
    res = run(project, "-m", "offline", "--networks", "C_1", "--techniques", "lite", "--report-dir", str(out))
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["configfile: pytest.ini"])
    assert len(read_csv(project, str(out))) == 1
    assert "tinyhil.acc_tflm" in (out / "junit.xml").read_text()  # pytest.ini's xunit1 applied


def test_a_long_run_says_how_many_cases_are_done_and_the_time_left():
    from tinyhil.plugins.run_progress import EVERY_S, FIRST_AFTER_S, RunProgress, duration

    lines, now = [], [0.0]
    progress = RunProgress(lines.append, clock=lambda: now[0])
    progress.total = 10
    progress.case_started()
    for t in (10, 20, FIRST_AFTER_S + 1, FIRST_AFTER_S + 2, FIRST_AFTER_S + 1 + EVERY_S):
        now[0] = t
        progress.case_finished()
    assert lines == [
        "[tinyhil] 3/10 cases done in 31s; about 1m12s left",
        "[tinyhil] 5/10 cases done in 1m31s; about 1m31s left",
    ]
    assert [duration(s) for s in (5, 185, 7620)] == ["5s", "3m05s", "2h07m"]
