"""Reporting: record_property for JUnit, one CSV row per finished case, the summary at the end.

Rows go to ``<report-dir>/results.csv`` from ``pytest_runtest_logreport`` on the process
that reports (the xdist controller under ``-n``), so parallel runs write one file, and a
run killed halfway keeps every finished row. ``--resume`` keeps that file and skips the
cases it already holds for the same settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.junitxml import xml_key as junit_xml_key

from tinyhil import resources
from tinyhil.models.errors import TinyhilError
from tinyhil.plugins.options import settings_of
from tinyhil.plugins.report.columns import COLUMN_NAMES, PROPERTY_PREFIX, build_row, derive_energy_savings, format_value
from tinyhil.plugins.report.csv_file import VERSION_COLUMNS, CsvReport, resume_plan
from tinyhil.plugins.report.environment import host_environment
from tinyhil.plugins.report.page import write_report
from tinyhil.plugins.report.plots import make_plots
from tinyhil.plugins.report.summary import render
from tinyhil.plugins.targets import TARGETS, Case

STATE_KEY = pytest.StashKey["Reporter"]()


class Reporter:
    """Session state of the reporting plugin."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.settings = settings_of(config)
        self.resume = self.settings.options.resume
        self.report_dir = self.settings.report_dir
        self.env = host_environment(resources.source_checkout())
        self.controller = not hasattr(config, "workerinput")
        self.csv: CsvReport | None = None
        self.rows_written = 0
        self.extra_sections: list = []  # callables rows -> Markdown, added by other plugins
        self.page: Path | None = None
        self.text: str | None = None  # the summary, rendered once at session finish
        self.cases_total = 0  # cases collected; with the rows, tells how far an interrupted run got
        self.interrupted = False
        self.kept: set[str] = set()  # --resume: finished cases skipped
        self.stale: dict[str, list[str]] = {}  # --resume: case id -> columns that differ from this run
        path = self.report_dir / "results.csv"
        try:
            # Only the controller writes; a worker reads the same file to know what to skip.
            self.csv = CsvReport(path, resume=self.resume) if self.controller else None
            if self.resume:
                rows = (self.csv or CsvReport(path, resume=True)).rows()
                self.kept, self.stale = resume_plan(rows, self.expected_row)
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None

    def expected_row(self, row: dict) -> dict:
        """What a finished row must hold for ``--resume`` to keep it: this run's settings and versions."""
        kind = TARGETS.get(row["target"]) if row.get("target") in TARGETS else None
        marker = kind.marker if kind else "hil"
        try:
            wanted = self.settings.resume_values(marker, row.get("technique", ""))
        except (TinyhilError, ValueError):
            return {"technique": "a technique this tinyhil knows"}  # never matches: the case is not kept
        return {**wanted, **{k: self.env[k] for k in VERSION_COLUMNS}}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        cases = [item for item in items if _case_of(item) is not None]
        self.cases_total = len(cases)
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

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.csv is None or report.when != "call":
            return
        props = {k[len(PROPERTY_PREFIX) :]: v for k, v in report.user_properties if k.startswith(PROPERTY_PREFIX)}
        if "case_id" in props:
            self.csv.append({k: props.get(k) for k in COLUMN_NAMES})
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
            [f"**Run {self.progress_line}** (Ctrl-C); rerun with --resume to finish it.\n"] if self.interrupted else []
        )
        order = self.settings.techniques
        return "\n".join([*head, render(rows, order), *(section(rows) for section in self.extra_sections)])

    def resume_lines(self) -> list[str]:
        if not self.resume:
            return []
        lines = [f"tinyhil: --resume kept {len(self.kept)} finished rows with this run's settings"]
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
        if exitstatus == pytest.ExitCode.INTERRUPTED and self.controller:
            self.interrupted = True
            self._mark_junit_interrupted()
        if self.csv is not None and self.csv.started:
            self.csv.rewrite(derive_energy_savings(self.csv.rows()))
        text = self.text = self.summary()
        if text:
            (self.report_dir / "summary.md").write_text(text + "\n")
            rows = self.csv.rows()
            plots = make_plots(rows, self.report_dir / "plots")
            self.page = write_report(rows, text, plots, self.report_dir / "report.html")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        text = self.text if self.text is not None else self.summary()
        if text:
            terminalreporter.section("tinyhil summary")
            terminalreporter.write_line(text)
            for line in self.resume_lines():
                terminalreporter.write_line(line)
            if self.csv.torn_bytes:
                terminalreporter.write_line(
                    f"tinyhil: removed a torn last row ({self.csv.torn_bytes} B cut by a crash) from {self.csv.path}"
                )
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
        env_row = {**env, **outcome.environment, "settings_key": settings.figures_key(case.marker, case.technique)}
        row = build_row(case, art, outcome, study, board, env_row, seconds)
        record_property(PROPERTY_PREFIX + "case_key", case.key)
        for column in COLUMN_NAMES:
            value = row.get(column)
            if value is not None and value != "":
                record_property(PROPERTY_PREFIX + column, format_value(value))
        return row

    return record
