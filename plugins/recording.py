"""Reporting: record_property for JUnit, one CSV row per finished case, the summary at the end.

Rows go to ``<report-dir>/results.csv`` from ``pytest_runtest_logreport`` on the process
that reports (the xdist controller under ``-n``), so parallel runs write one file, and a
run killed halfway keeps every finished row. ``--resume`` keeps that file and skips the
cases it already holds for the same settings.

The folder is this run's alone: once its study cases are collected (before any runs or
trains) the controller takes ``<report-dir>/.tinyhil.lock``, and a second run on the same
folder stops there (rc 4) without writing in it. A run with no study case (the framework's
own unit tests) takes no lock. JUnit is written beside its final name and moved in at the
end, so a run that stopped early or found the disk full leaves the last junit.xml whole.
SIGTERM ends a run as Ctrl-C does: every end-of-run file is written and says so.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest
from _pytest.junitxml import xml_key as junit_xml_key

from tinyhil import resources
from tinyhil.models.errors import TinyhilError
from tinyhil.plugins.options import settings_of
from tinyhil.plugins.report.columns import COLUMN_NAMES, PROPERTY_PREFIX, build_row, derive_energy_savings, format_value
from tinyhil.plugins.report.csv_file import VERSION_COLUMNS, CsvReport, read_results, resume_plan
from tinyhil.plugins.report.environment import host_environment
from tinyhil.plugins.report.folder import ReportFolder
from tinyhil.plugins.report.page import write_report
from tinyhil.plugins.report.plots import make_plots
from tinyhil.plugins.report.summary import render
from tinyhil.plugins.report.whole_files import replace_whole, why_not_written
from tinyhil.plugins.targets import TARGETS, Case

STATE_KEY = pytest.StashKey["Reporter"]()
SIGTERM_KEY = pytest.StashKey[object]()  # the SIGTERM handler this run replaced


class Reporter:
    """Session state of the reporting plugin."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.settings = settings_of(config)
        self.resume = self.settings.options.resume
        self.report_dir = self.settings.report_dir
        self.env = host_environment(resources.source_checkout())
        self.controller = not hasattr(config, "workerinput")
        self.csv: CsvReport | None = None  # made once this run holds the folder
        self.session: pytest.Session | None = None
        self.rows_written = 0
        self.rows_lost = 0  # rows not written after a write failed (the run was stopping)
        self.write_failed: str | None = None  # why a row could not be written
        self.end_failures: dict[str, list[str]] = {}  # why -> end-of-run files that could not be written
        self.folder = ReportFolder(config, self.report_dir, self.end_failures)
        self.extra_sections: list = []  # callables rows -> Markdown, added by other plugins
        self.page: Path | None = None
        self.text: str | None = None  # the summary, rendered once at session finish
        self.cases_total = 0  # cases collected; with the rows, tells how far an interrupted run got
        self.interrupted = False
        self.interrupted_by = "Ctrl-C"  # or SIGTERM, or why a row could not be written
        self.kept: set[str] = set()  # --resume: finished cases skipped
        self.stale: dict[str, list[str]] = {}  # --resume: case id -> columns that differ from this run
        self.problems: list[str] = []  # --resume: damaged rows left out, one line each
        self.results_path = self.report_dir / "results.csv"
        if self.resume and self.results_path.exists() and self.results_path.stat().st_size:
            # Read only: the controller writes once it holds the folder; a worker reads to know what to skip.
            try:
                table = read_results(self.results_path)
            except ValueError as e:
                raise pytest.UsageError(f"tinyhil: {e}") from None
            except OSError as e:
                raise pytest.UsageError(
                    f"tinyhil: --resume cannot read {self.results_path} ({e.strerror or e}); "
                    "move it away or run without --resume"
                ) from None
            self.kept, self.stale = resume_plan(table.rows, self.expected_row)
            self.problems = table.problems if self.controller else []

    def expected_row(self, row: dict) -> dict:
        """What a finished row must hold for ``--resume`` to keep it: this run's settings and versions."""
        kind = TARGETS.get(row["target"]) if row.get("target") in TARGETS else None
        marker = kind.marker if kind else "hil"
        try:
            board = self.settings.board_named(row.get("board", ""))
            if board.name != row.get("board"):
                return {"board": "a board of this run"}  # never matches: the case is not kept
            wanted = self.settings.resume_values(marker, row.get("technique", ""), board)
        except (TinyhilError, ValueError):
            return {"technique": "a technique this tinyhil knows"}  # never matches: the case is not kept
        return {**wanted, **{k: self.env[k] for k in VERSION_COLUMNS}}

    def claim_folder(self) -> None:
        """Takes the report folder for this run (:class:`ReportFolder`), once it is known to run
        study cases, then opens results.csv in it.

        Raises:
            pytest.UsageError: when another live run holds the folder, or a file cannot be written.
        """
        if self.csv is not None or self.folder.refused or not self.controller or self.config.option.collectonly:
            return
        left = self.folder.claim()
        if left:
            self._say(
                f"tinyhil: took over {self.folder.lock.path} from pid {left['pid']} ({left.get('command', '?')}), "
                "which is no longer running"
            )
        try:
            self.csv = CsvReport(self.results_path, resume=self.resume)
        except (ValueError, OSError) as e:
            raise pytest.UsageError(f"tinyhil: {e}") from None

    def _say(self, line: str) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(line, yellow=True, bold=True)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    def stop_writing(self, error: OSError) -> None:
        """A row could not be written: says so once and stops the run (no case runs for nothing)."""
        self.write_failed = why_not_written(self.results_path, error)
        self.interrupted_by = self.write_failed
        self._say(
            f"tinyhil: {self.write_failed}; this case's row is lost and the run stops here. "
            "Free some space, then rerun with --resume"
        )
        reason = "tinyhil stopped the run: a result row could not be written"
        if self.session is not None:
            self.session.shouldstop = reason
        dsession = self.config.pluginmanager.get_plugin("dsession")  # xdist's controller loop
        if dsession is not None:
            dsession.shouldstop = reason

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        cases = [item for item in items if _case_of(item) is not None]
        # counted as under xdist (pytest_xdist_node_collection_finished): by the study function's name
        self.cases_total = sum(getattr(item, "originalname", "") == "test_case" for item in items)
        if self.cases_total:
            self.claim_folder()
        for item in cases:
            if _case_of(item).id in self.kept:
                reason = (
                    f"finished in an earlier run with the same settings ({self.report_dir / 'results.csv'}); --resume"
                )
                item.add_marker(pytest.mark.skip(reason=reason))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:
        # under -n the controller collects nothing itself: the workers tell it their items
        self.cases_total = max(self.cases_total, sum("test_case[" in i for i in ids))
        if self.cases_total:
            self.claim_folder()  # before matrix's hook trains anything (this plugin registered later)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.folder.tests_reported += 1
        if self.csv is None or report.when != "call":
            return
        props = {k[len(PROPERTY_PREFIX) :]: v for k, v in report.user_properties if k.startswith(PROPERTY_PREFIX)}
        if "case_id" not in props:
            return
        if self.write_failed:
            self.rows_lost += 1  # a case that was already running when the run stopped
            return
        try:
            self.csv.append({k: props.get(k) for k in COLUMN_NAMES})
        except OSError as e:
            self.stop_writing(e)
            return
        self.rows_written += 1

    @property
    def progress_line(self) -> str:
        done = self.rows_written + len(self.kept)
        return f"interrupted after {done} of {self.cases_total} cases"

    def _mark_junit_interrupted(self) -> None:
        """An interrupted run must not read as a clean pass: one error and a property saying so."""
        xml = self.config.stash.get(junit_xml_key, None)
        if xml is not None:
            xml.add_global_property("tinyhil.interrupted", self.progress_line)
            xml.stats["error"] += 1

    def summary(self) -> str | None:
        if self.csv is None or not self.csv.started:
            return None
        rows = self.csv.rows()
        if not rows:
            return None
        head = (
            [f"**Run {self.progress_line}** ({self.interrupted_by}); rerun with --resume to finish it.\n"]
            if self.interrupted
            else []
        )
        order = self.settings.techniques
        return "\n".join([*head, render(rows, order), *(section(rows) for section in self.extra_sections)])

    def resume_lines(self) -> list[str]:
        if not self.resume:
            return []
        lines = [*self.problems, f"tinyhil: --resume kept {len(self.kept)} finished rows with this run's settings"]
        if self.stale:
            why: dict[str, int] = {}
            for columns in self.stale.values():
                for column in columns:
                    why[column] = why.get(column, 0) + 1
            reasons = ", ".join(f"{column} differs in {n}" for column, n in sorted(why.items()))
            lines.append(
                f"tinyhil: --resume: {len(self.stale)} rows came from other settings ({reasons}); their cases run again"
            )
        return lines

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.folder.refused:
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED and self.controller:
            self.interrupted = True
            self._mark_junit_interrupted()
        if self.csv is not None and self.csv.started:
            self._end_write(self.csv.path, lambda: self.csv.rewrite(derive_energy_savings(self.csv.rows())))
        text = self.text = self.summary()
        if text:
            summary_md = self.report_dir / "summary.md"
            self._end_write(summary_md, lambda: replace_whole(summary_md, text + "\n"))
            rows = self.csv.rows()
            plots = self._end_write(self.report_dir / "plots", lambda: make_plots(rows, self.report_dir / "plots"))
            page = self.report_dir / "report.html"
            self.page = self._end_write(page, lambda: write_report(rows, text, plots or [], page))

    def _end_write(self, path: Path, write):
        """Runs one end-of-run write; a failure becomes a line (the file stays as it was), not a traceback."""
        try:
            return write()
        except OSError as e:
            self.end_failures.setdefault(why_not_written(self.report_dir, e), []).append(path.name)
            return None

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.folder.refused:
            return
        text = self.text if self.text is not None else self.summary()
        if text:
            terminalreporter.section("tinyhil summary")
            terminalreporter.write_line(text)
        for line in self.resume_lines():
            terminalreporter.write_line(line)
        if self.csv is not None and self.csv.torn_bytes:
            terminalreporter.write_line(
                f"tinyhil: removed a torn last row ({self.csv.torn_bytes} B cut by a crash) from {self.csv.path}"
            )
        if self.rows_lost:
            terminalreporter.write_line(f"tinyhil: {self.rows_lost} more rows were not written (the run was stopping)")
        for why, names in self.end_failures.items():
            terminalreporter.write_line(
                f"tinyhil: {', '.join(names)} not written at the end of the run ({why}); the earlier ones stay",
                yellow=True,
                bold=True,
            )
        if text:
            terminalreporter.write_line(
                f"tinyhil: {self.rows_written} rows written to {self.csv.path}; summary in {self.report_dir / 'summary.md'}"
            )
            if self.page is not None:
                terminalreporter.write_line(f"tinyhil: report with figures: {self.page}")


def _case_of(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("case") if callspec else None


def pytest_configure(config: pytest.Config) -> None:
    reporter = Reporter(config)
    config.stash[STATE_KEY] = reporter
    config.pluginmanager.register(reporter, "tinyhil-reporter")
    if reporter.controller and threading.current_thread() is threading.main_thread():
        config.stash[SIGTERM_KEY] = signal.signal(signal.SIGTERM, _sigterm_handler(reporter))


def _sigterm_handler(reporter: Reporter):
    """SIGTERM (a CI timeout, ``kill``, systemd) ends the run as Ctrl-C does, so junit.xml and
    summary.md are written and say it was interrupted; a second SIGTERM acts as before."""

    def on_sigterm(signum, frame) -> None:
        reporter.interrupted_by = "SIGTERM"
        previous = reporter.config.stash.get(SIGTERM_KEY, None)
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        raise KeyboardInterrupt

    return on_sigterm


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session):
    """Around junitxml's write (to a temp name): a full disk becomes a line at the end, not a
    traceback. The file is moved in once every sessionfinish hook is done with it (pytest-embedded
    rewrites it in its own, in an order that depends on how the plugins were loaded)."""
    reporter = session.config.stash.get(STATE_KEY, None)
    try:
        result = yield
    except OSError as e:
        folder = reporter.folder if reporter is not None else None
        if folder is None or folder.junit_tmp is None or e.filename not in (None, str(folder.junit_tmp)):
            raise
        folder.junit_error, result = e, None
    if reporter is not None and reporter.folder.refused:
        reporter.folder.place_junit()  # removes it, and junitxml's plugin, before its summary line names it
    return result


@pytest.hookimpl(tryfirst=True)  # before junitxml's "generated xml file" line names it
def pytest_terminal_summary(terminalreporter) -> None:
    reporter = terminalreporter.config.stash.get(STATE_KEY, None)
    if reporter is not None:
        reporter.folder.place_junit()


def pytest_unconfigure(config: pytest.Config) -> None:
    reporter = config.stash.get(STATE_KEY, None)
    if reporter is not None:
        reporter.folder.release()
    if SIGTERM_KEY in config.stash:
        previous = config.stash[SIGTERM_KEY]
        del config.stash[SIGTERM_KEY]
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@pytest.fixture
def record_case(record_property, pytestconfig: pytest.Config):
    """Returns ``record(case, art, outcome, study, board, seconds) -> row``.

    Every column becomes a ``tinyhil.<column>`` property (JUnit XML) and, through the
    report hook, a CSV row; what the target reported about itself (``outcome.environment``)
    joins the host's environment. Empty figures are not recorded as properties.
    """
    env = pytestconfig.stash[STATE_KEY].env

    settings = settings_of(pytestconfig)

    def record(case, art, outcome, study, board, seconds: float) -> dict:
        key = settings.figures_key(case.marker, case.technique, board)
        env_row = {**env, **outcome.environment, "settings_key": key}
        row = build_row(case, art, outcome, study, board, env_row, seconds)
        record_property(PROPERTY_PREFIX + "case_key", case.key)
        for column in COLUMN_NAMES:
            value = row.get(column)
            if value is not None and value != "":
                record_property(PROPERTY_PREFIX + column, format_value(value))
        return row

    return record
