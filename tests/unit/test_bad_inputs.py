"""Bad files and bad user code: each stops the run at start-up naming the file and the fix,
or ends its case with a verdict; none reaches an INTERNALERROR or a raw traceback."""

import errno
import json
import textwrap
from pathlib import Path

import pytest

from tests.unit.subrun import read_csv, run
from tinyhil.models.boards import BOARDS_DIR, BoardError, load_board
from tinyhil.models.byo_example import BUILDERS

SINE = Path(__import__("tflite_micro").__path__[0]) / "python" / "tflite_micro" / "sine_float.tflite"


def _tflm_version() -> str:
    from tinyhil.models.tflm import tflm_version

    return tflm_version()


def _board_doc(**changes) -> dict:
    doc = json.loads((BOARDS_DIR / "esp32-wroom-32.json").read_text())
    doc.update(changes)
    return doc


# 1. expectations files ------------------------------------------------------------------

DAMAGED = {
    "truncated": b'{"cases": {"C_1-lite": {"status": "ok"',
    "empty": b"",
    "null": b"null",
    "not-utf8": b'{"cases": {"C_1-lite": {"status": "ok", "reason": "\xff\xfe"}}}',
    "no-status": b'{"cases": {"C_1-lite": {"reason": "fine"}}}',
    "cases-list": b'{"cases": [{"status": "ok"}]}',
    "case-string": b'{"cases": {"C_1-lite": "ok"}}',
    "status-okay": b'{"cases": {"C_1-lite": {"status": "okay"}}}',
    "status-null": b'{"cases": {"C_1-lite": {"status": null}}}',
}


@pytest.mark.parametrize("kind", list(DAMAGED))
def test_a_damaged_expectations_file_is_refused_naming_it(tmp_path, kind):
    from tinyhil.plugins.report.expectations import ExpectationsError, ExpectationStore

    path = tmp_path / "esp32-wroom-32" / "tflm-1.json"
    path.parent.mkdir()
    path.write_bytes(DAMAGED[kind])
    with pytest.raises(ExpectationsError) as e:
        ExpectationStore(tmp_path, "esp32-wroom-32", "1")
    assert str(path) in str(e.value) and "--update-expectations" in str(e.value)
    if kind.startswith("status"):
        assert "C_1-lite" in str(e.value) and "flash_overflow" in str(e.value)  # the verdict list


def test_update_expectations_replaces_a_damaged_file(tmp_path):
    from tinyhil.plugins.report.expectations import ExpectationStore, Expected

    path = tmp_path / "b" / "tflm-1.json"
    path.parent.mkdir()
    path.write_bytes(DAMAGED["no-status"])
    store = ExpectationStore(tmp_path, "b", "1", replace_damaged=True)
    assert store.cases == {} and "damaged" in store.describe and "replaces" in store.describe
    store.write({"C_1-lite": Expected("ok", "fits")})
    assert json.loads(path.read_text())["cases"] == {"C_1-lite": {"status": "ok", "reason": "fits"}}


def test_a_damaged_expectations_file_stops_the_run_at_start_up(project):
    path = Path("exp") / "esp32-wroom-32" / f"tflm-{_tflm_version()}.json"  # as --expectations-dir gives it
    (project.path / path).parent.mkdir(parents=True)
    (project.path / path).write_bytes(DAMAGED["no-status"])
    res = run(project, "--co", "--networks=C_1", "--techniques=lite")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines([f"*tinyhil: *{path}*C_1-lite*--update-expectations*"])
    assert "INTERNALERROR" not in res.stdout.str() + res.stderr.str()

    res = run(project, "--co", "--networks=C_1", "--techniques=lite", "--update-expectations")
    assert res.ret == pytest.ExitCode.OK
    res.stdout.fnmatch_lines([f"*tinyhil: *{path}*damaged*replaces it*"])


# 2. unusable folders, read-only cache ---------------------------------------------------


def test_a_model_cache_that_is_a_file_stops_the_run(project):
    (project.path / "cache-file").write_text("")
    res = run(project, "--co", "--networks=C_1", "--techniques=lite", "--model-cache=cache-file")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*--model-cache cache-file is a file*"])


def test_a_results_csv_that_is_a_folder_stops_the_run(project):
    (project.path / "out" / "results.csv").mkdir(parents=True)
    res = run(project, "--co", "--networks=C_1", "--techniques=lite", "--report-dir=out")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*--report-dir out: *results.csv is a folder*"])


@pytest.fixture
def sine_study(tmp_path):
    from tinyhil.models.model_files import register_model_file
    from tinyhil.models.pipeline import Study, StudyConfig

    register_model_file(SINE)

    def make() -> Study:
        return Study(StudyConfig(cache_dir=tmp_path / "cache"))

    return make


def _read_only(monkeypatch):
    from tinyhil.models import cache

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(cache, "_new_build_dir", refuse)


def test_a_read_only_cache_missing_an_entry_gives_a_verdict(sine_study, monkeypatch, tmp_path):
    from tinyhil.models.boards import get_board
    from tinyhil.plugins.targets.host import HostTarget

    _read_only(monkeypatch)
    study = sine_study()
    art = study.artifacts("sine_float", "as_is")
    verdict = HostTarget().run(art, study, get_board("esp32-wroom-32")).verdict
    assert verdict.status == "convert_error"
    assert "read-only" in verdict.reason and str(tmp_path / "cache") in verdict.reason


def test_a_warm_read_only_cache_keeps_working(sine_study, monkeypatch):
    from tinyhil.models.boards import get_board
    from tinyhil.plugins.targets.host import HostTarget

    sine_study().artifacts("sine_float", "as_is")  # fills the cache
    _read_only(monkeypatch)
    study = sine_study()
    art = study.artifacts("sine_float", "as_is")
    assert art.conversion.from_cache
    assert HostTarget().run(art, study, get_board("esp32-wroom-32")).verdict.status == "ok"


# 3. board names and heap figures --------------------------------------------------------


@pytest.mark.parametrize("name", ["../../evil", "..", ".", "a/b", "", "two words"])
def test_a_board_name_is_an_identifier(tmp_path, name):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(_board_doc(name=name)))
    with pytest.raises(BoardError, match=rf"{tmp_path}.*'name'"):
        load_board(path)


def test_a_largest_heap_block_above_the_heap_is_refused(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(_board_doc(internal_heap_bytes=1000, largest_heap_block_bytes=2000)))
    with pytest.raises(BoardError, match=r"'largest_heap_block_bytes' 2000 .* 'internal_heap_bytes' 1000"):
        load_board(path)


def test_a_kernel_library_the_firmware_has_no_build_of_is_refused(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(_board_doc(kernels="cmsis-nn")))
    with pytest.raises(BoardError, match=r"'kernels' must be one of esp-nn, reference, got 'cmsis-nn'"):
        load_board(path)


def test_a_board_named_out_of_its_folder_stops_the_run(project, tmp_path):
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(_board_doc(name="../../evil")))
    res = run(project, "--co", f"--board={path}", "--update-expectations", "--expectations-dir=mine")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines([f"*board profile {path}: 'name'*"])
    assert not (project.path / "evil").exists()


# 4. a model far larger than the board's flash ------------------------------------------


def test_a_huge_model_file_is_judged_by_its_size(project, tmp_path):
    padded = tmp_path / "padded.tflite"
    padded.write_bytes(SINE.read_bytes() + bytes(20 << 20))
    board = tmp_path / "small.json"
    board.write_text(json.dumps(_board_doc(name="small-flash", flash_bytes=4 << 20, model_partition_bytes=1 << 20)))
    res = run(
        project,
        "-m",
        "offline",
        f"--networks={padded}",
        f"--board={board}",
        "--techniques=lite",
        f"--model-cache={tmp_path / 'cache'}",
    )
    res.assert_outcomes(failed=1)  # no expectation recorded for it: ok is assumed
    (row,) = read_csv(project)
    size = padded.stat().st_size
    assert row["status"] == "flash_overflow" and str(size) in row["reason"] and row["model_bytes"] == str(size)
    assert not list(project.path.rglob("g_model.cc"))
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert all(p.stat().st_size < 1 << 20 for p in cached), cached


# 5. a user's builders file that hangs or builds nothing usable -------------------------


def test_a_builders_file_that_never_returns_is_stopped(tmp_path):
    from tinyhil.models.networks import NetworkFileError, load_builders

    path = tmp_path / "loops.py"
    path.write_text("while True:\n    pass\n")
    with pytest.raises(NetworkFileError, match=rf"{path}.*did not finish importing within 1 s"):
        load_builders(path, timeout_s=1)


BAD_BUILDERS = {
    "None": ("return None", "returned None"),
    "no-output": ("return k.Model(inputs, [])", "0 outputs"),
    "two-outputs": ("return k.Model(inputs, [outputs, outputs])", "2 outputs"),
    "raises": ("raise ValueError('no such layer')", "raised ValueError: no such layer"),
}


def _bad_builders(tmp_path, kind: str) -> Path:
    ret, _ = BAD_BUILDERS[kind]
    path = tmp_path / f"bad_{kind.replace('-', '_')}.py"
    family = f"bad_{kind.replace('-', '_')}"
    path.write_text(
        textwrap.dedent(f"""
        import tf_keras as k
        from tinyhil.models.networks import add_network, register_family

        @register_family("{family}")
        def build_bad(spec, input_shape, n_classes):
            inputs = k.Input(shape=input_shape)
            outputs = k.layers.Dense(n_classes)(k.layers.Flatten()(inputs))
            {ret}

        add_network("{family}_1", "{family}")
        """)
    )
    return path


@pytest.mark.parametrize("kind", list(BAD_BUILDERS))
def test_a_builder_that_returns_no_usable_model_is_named(tmp_path, kind):
    from tinyhil.models.networks import NetworkFileError, check_builders, load_builders

    path = _bad_builders(tmp_path, kind)
    added = load_builders(path)
    with pytest.raises(NetworkFileError) as e:
        check_builders(added, (128, 9), 6)
    assert "build_bad" in str(e.value) and str(path) in str(e.value) and BAD_BUILDERS[kind][1] in str(e.value)


def test_a_bad_builder_stops_the_run_at_start_up(project, tmp_path):
    path = _bad_builders(tmp_path, "None")
    res = run(project, "--co", f"--networks-from={path}", "--networks=bad_None_1", "--techniques=lite")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines([f"*--networks-from: {path}: build_bad*returned None*"])


# 6. user networks train in the training phase ------------------------------------------


def test_user_networks_train_in_the_training_phase(project, tmp_path):
    builders = tmp_path / "my_nets.py"
    builders.write_text(BUILDERS)
    res = run(
        project,
        "-m",
        "offline",
        f"--networks-from={builders}",
        "--networks=mlp_8",
        "--techniques=lite",
        f"--model-cache={tmp_path / 'cache'}",
    )
    res.assert_outcomes(passed=1)
    out = res.stdout.str()
    assert "not trained" not in out
    res.stdout.fnmatch_lines(["*[[]train mlp_8 quick[]] done: *1/1 networks*"])


# 7. xdist with an option's value after a space -----------------------------------------


def test_xdist_workers_take_a_spaced_report_dir_that_does_not_exist_yet(project, tmp_path):
    out = tmp_path / "new" / "dir"
    res = run(
        project, "-n", "2", "-m", "offline", "--networks", "C_1", "--techniques", "lite", "--report-dir", str(out)
    )
    assert "UsageError" not in res.stdout.str() + res.stderr.str()
    res.assert_outcomes(passed=1)
    assert (out / "results.csv").is_file()
