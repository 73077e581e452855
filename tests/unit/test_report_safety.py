"""The report folder stays whole: runs that collide, a run stopped by SIGTERM, a full disk,
and a damaged results.csv under --resume.

Most runs here use a tiny project whose cases only record a row's worth of properties (no
model is built), so a sub-run takes seconds; the --resume run of the real study is at the end.
"""

import csv
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.unit.subrun import read_csv, run
from tinyhil.plugins.report.columns import COLUMN_NAMES
from tinyhil.plugins.report.csv_file import CsvReport

TINY_CASES = """
import os
import time
from pathlib import Path

import pytest


@pytest.mark.parametrize("i", range(int(os.environ.get("TINY_CASES", "3"))))
def test_case(i, record_property):
    \"\"\"Stands in for a study case: records a row, then waits as the test running it says.\"\"\"
    record_property("tinyhil.case_id", f"c{i}")
    record_property("tinyhil.reason", os.environ.get("TINY_REASON", ""))
    record_property("tinyhil.run_started", "2024-01-01T00:00:00")
    hold = os.environ.get("TINY_HOLD")
    if hold:
        Path(hold + ".started").touch()
        while not Path(hold).exists():
            time.sleep(0.05)
    time.sleep(float(os.environ.get("TINY_SLEEP_S", "0")))
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A project that asks for tinyhil and holds stand-in cases named like the study's."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tinyhil.study"]\n')
    (tmp_path / "test_tiny.py").write_text(TINY_CASES)
    return tmp_path


def start(project: Path, *args: str, **env: str) -> subprocess.Popen:
    """Starts pytest in ``project`` in the background; output in ``.communicate()``."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
        cwd=project,
        env={**environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout_s: float = 120) -> str:
    return proc.communicate(timeout=timeout_s)[0]


def wait_until(condition, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the run ended first (rc {proc.returncode}):\n{finish(proc)}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"timed out:\n{finish(proc)}")
        time.sleep(0.1)


def csv_ids(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return [r["case_id"] for r in csv.DictReader(f)]


# 1. Two runs on one --report-dir


def test_a_second_run_on_a_held_report_dir_stops_at_start_and_leaves_the_files_alone(tiny):
    out = tiny / "out"
    out.mkdir()
    before = {name: f"from an earlier run: {name}\n" for name in ("results.csv", "junit.xml", "report.html")}
    for name, text in before.items():
        (out / name).write_text(text)
    hold = tiny / "hold"
    first = start(tiny, "--report-dir=out", TINY_HOLD=str(hold))
    try:
        wait_until(Path(f"{hold}.started").exists, first)
        second = start(tiny, "--report-dir=out")
        text = finish(second)
        assert second.returncode == pytest.ExitCode.USAGE_ERROR, text
        assert f"pid {first.pid}" in text and "--report-dir=out" in text, text
        assert "another --report-dir" in text, text
        for name, content in before.items():
            assert (out / name).read_text() == content, f"the stopped run changed {name}"
    finally:
        hold.touch()
        text = finish(first)
    assert first.returncode == pytest.ExitCode.OK, text
    assert csv_ids(out / "results.csv") == ["c0", "c1", "c2"]
    assert len(list(ET.parse(out / "junit.xml").getroot().iter("testcase"))) == 3
    assert not (out / ".tinyhil.lock").exists(), "the lock is given back at the end"
    assert not list(out.glob("*.tmp")), "no temp file is left behind"


def test_a_run_that_stops_at_start_up_leaves_the_report_folder_as_it_was(tiny):
    """A run stopped before any test (a missing board, a bad file: pytest.exit at collection) wrote
    junit.xml as an empty suite while results.csv and report.html kept the last run's results."""
    out = tiny / "out"
    out.mkdir()
    before = {name: f"from an earlier run: {name}\n" for name in ("results.csv", "junit.xml", "report.html")}
    for name, text in before.items():
        (out / name).write_text(text)
    (tiny / "conftest.py").write_text(
        'import pytest\n\npytest_plugins = ["tinyhil.study"]\n\n\n'
        "def pytest_collection_finish(session):\n"
        '    pytest.exit("stopped at start-up", returncode=pytest.ExitCode.USAGE_ERROR)\n'
    )
    proc = start(tiny, "--report-dir=out")
    text = finish(proc)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, text
    for name, content in before.items():
        assert (out / name).read_text() == content, f"the stopped run changed {name}"
    assert not list(out.glob(".*.tmp")) and not (out / ".tinyhil.lock").exists()


def test_a_lock_left_by_a_dead_run_is_taken_over(tiny):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tiny / "out"
    out.mkdir()
    (out / ".tinyhil.lock").write_text(json.dumps({"pid": dead.pid, "command": "pytest --crashed", "cwd": "/x"}))
    proc = start(tiny, "--report-dir=out")
    text = finish(proc)
    assert proc.returncode == pytest.ExitCode.OK, text
    assert f"took over out/.tinyhil.lock from pid {dead.pid} (pytest --crashed), which is no longer running" in text
    assert csv_ids(out / "results.csv") == ["c0", "c1", "c2"]
    assert not (out / ".tinyhil.lock").exists()


def test_the_lock_is_held_until_released_and_names_its_holder(tmp_path):
    from tinyhil.plugins.report.lock import ReportDirBusy, ReportLock

    first = ReportLock(tmp_path)
    assert first.acquire("pytest -m offline") is None  # nothing taken over
    with pytest.raises(ReportDirBusy) as busy:
        ReportLock(tmp_path).acquire("pytest -m hil")
    assert busy.value.holder["pid"] == os.getpid() and busy.value.holder["command"] == "pytest -m offline"
    first.release()
    assert not (tmp_path / ".tinyhil.lock").exists()
    again = ReportLock(tmp_path)
    assert again.acquire("pytest -m hil") is None
    again.release()


def test_a_run_without_study_cases_takes_no_lock(tiny):
    """The framework's own unit tests load tinyhil too; they must not keep a study out of its folder."""
    (tiny / "test_tiny.py").write_text("def test_plain():\n    pass\n")
    out = tiny / "out"
    out.mkdir()
    from tinyhil.plugins.report.lock import ReportLock

    held = ReportLock(out)
    held.acquire("pytest held by this test")
    try:
        proc = start(tiny, "--report-dir=out")
        text = finish(proc)
        assert proc.returncode == pytest.ExitCode.OK, text
    finally:
        held.release()


# 2. SIGTERM


def test_sigterm_to_a_parallel_run_writes_junit_and_summary_saying_so(tiny):
    out = tiny / "out"
    proc = start(tiny, "-n", "2", "--report-dir=out", TINY_CASES="8", TINY_SLEEP_S="2")
    wait_until(lambda: (out / "results.csv").exists() and csv_ids(out / "results.csv"), proc)
    proc.send_signal(signal.SIGTERM)
    text = finish(proc)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert re.fullmatch(r"interrupted after \d of 8 cases", props["tinyhil.interrupted"]), props
    summary = (out / "summary.md").read_text()
    assert re.match(r"\*\*Run interrupted after \d of 8 cases\*\* \(SIGTERM\)", summary), summary
    assert not (out / ".tinyhil.lock").exists()


# 3. A full disk


FULL_DISK_AFTER_FIRST_ROW = """
import errno
import os

_real_write, _rows = os.write, []


def _write(fd, data):
    # the second row of results.csv finds the disk full (seen at the OS, as on a real disk)
    if os.readlink(f"/proc/self/fd/{fd}").endswith("results.csv") and b"c1," in bytes(data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _real_write(fd, data)


os.write = _write
"""


def test_a_full_disk_stops_the_run_once_with_the_path(tiny):
    (tiny / "full_disk.py").write_text(FULL_DISK_AFTER_FIRST_ROW)
    proc = start(tiny, "-p", "full_disk", "--report-dir=out", TINY_CASES="5", PYTHONPATH=str(tiny))
    text = finish(proc)
    out = tiny / "out"
    assert text.count("tinyhil: no space left on out/results.csv") == 1, text
    assert "Errno 28" not in text and "Traceback" not in text, text
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    assert "2 passed" in text, "the case whose row was lost ran; no case ran after it"
    assert csv_ids(out / "results.csv") == ["c0"]
    assert "(no space left on" in (out / "summary.md").read_text()


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 64 KiB tmpfs (needs root), almost full."""
    mount = tmp_path / "small"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        st = os.statvfs(mount)
        (mount / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 3 * 4096))
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_disk_stops_the_run_and_keeps_complete_rows(tiny, small_disk):
    out = small_disk / "out"
    proc = start(tiny, f"--report-dir={out}", TINY_CASES="10", TINY_REASON="x" * 1500)
    text = finish(proc)
    assert text.count(f"tinyhil: no space left on {out / 'results.csv'}") == 1, text
    assert "Errno 28" not in text and "Traceback" not in text and "INTERNALERROR" not in text, text
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    ids = csv_ids(out / "results.csv")
    assert 1 <= len(ids) < 10 and ids == [f"c{i}" for i in range(len(ids))], "complete rows, in order"
    assert f"{len(ids) + 1} passed" in text, "no case ran after the one whose row was lost"
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def _fail_fsync(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _row(case_id: str, **values) -> dict:
    return {"case_id": case_id, "run_started": "2024-01-01T00:00:00", **values}


def test_a_row_that_cannot_be_written_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    report = CsvReport(tmp_path / "results.csv")
    report.append(_row("c0"))
    before = report.path.read_bytes()
    monkeypatch.setattr(os, "fsync", _fail_fsync)
    with pytest.raises(OSError) as e:
        report.append(_row("c1"))
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert report.path.read_bytes() == before


def test_a_failed_rewrite_keeps_the_old_file_and_removes_its_temp(tmp_path, monkeypatch):
    report = CsvReport(tmp_path / "results.csv")
    report.append(_row("c0"))
    report.append(_row("c1"))
    before = report.path.read_bytes()
    monkeypatch.setattr(os, "fsync", _fail_fsync)
    with pytest.raises(OSError):
        report.rewrite([_row("c0", status="ok")])
    monkeypatch.undo()
    assert report.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


# 4. A damaged results.csv under --resume


def _write_rows(path: Path, rows: list[dict], encoding: str = "utf-8") -> None:
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.DictWriter(f, COLUMN_NAMES, restval="")
        w.writeheader()
        w.writerows(rows)


def test_resume_reads_a_file_saved_with_a_bom(tmp_path):
    path = tmp_path / "results.csv"
    _write_rows(path, [_row("c0"), _row("c1")], encoding="utf-8-sig")  # as Excel saves "CSV UTF-8"
    report = CsvReport(path, resume=True)
    assert [r["case_id"] for r in report.rows()] == ["c0", "c1"]
    assert report.problems == []


def test_resume_names_the_line_of_a_byte_that_is_not_utf8_and_drops_only_that_row(tmp_path):
    path = tmp_path / "results.csv"
    _write_rows(path, [_row("c0"), _row("c1", reason="r\xe9sum\xe9"), _row("c2")], encoding="latin-1")
    report = CsvReport(path, resume=True)
    assert [r["case_id"] for r in report.rows()] == ["c0", "c2"]
    assert report.problems == [
        f"tinyhil: {path} line 3: byte 0xe9 is not UTF-8 (saved in another encoding?); "
        "--resume drops this row and runs its case again"
    ]


def test_resume_names_a_row_cut_inside_a_quoted_field_and_keeps_the_next_one(tmp_path):
    path = tmp_path / "results.csv"
    _write_rows(path, [_row("c0"), _row("c1", reason="a, b"), _row("c2")])
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2][: lines[2].index('"a, b') + 3] + "\r\n"  # the row stops inside "a, b"
    path.write_text("".join(lines))
    report = CsvReport(path, resume=True)
    assert [r["case_id"] for r in report.rows()] == ["c0", "c2"]
    assert report.problems == [
        f"tinyhil: {path} line 3: a row cut inside a quoted field; --resume drops this row and runs its case again"
    ]


def test_resume_names_a_row_cut_short(tmp_path):
    path = tmp_path / "results.csv"
    _write_rows(path, [_row("c0"), _row("c1")])
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = "c0,C_1,1D_CNN\r\n"
    path.write_text("".join(lines))
    report = CsvReport(path, resume=True)
    assert [r["case_id"] for r in report.rows()] == ["c1"]
    assert report.problems == [
        f"tinyhil: {path} line 2: a row cut short (3 of {len(COLUMN_NAMES)} columns); "
        "--resume drops this row and runs its case again"
    ]


def test_resume_over_a_damaged_row_runs_that_case_again(project):
    args = ("-m", "offline", "--networks", "C_1", "--techniques", "lite,full_int")
    run(project, *args).assert_outcomes(passed=2)
    path = project.path / "reports" / "results.csv"
    data = path.read_bytes()
    damaged = data.index(b"C_1-full_int-host,C_1,") + len(b"C_1-full_int-host,C_1,")
    path.write_bytes(data[:damaged] + b"\xff" + data[damaged:])
    res = run(project, *args, "--resume")
    res.assert_outcomes(passed=1, skipped=1)
    res.stdout.fnmatch_lines(
        [f"tinyhil: {path.relative_to(project.path)} line 3: byte 0xff is not UTF-8*; --resume drops this row*"]
    )
    assert "came from other settings" not in res.stdout.str()
    assert sorted(r["case_id"] for r in read_csv(project)) == ["C_1-full_int-host", "C_1-lite-host"]
