"""Reporting: record_property for JUnit, one CSV row per finished case, the summary at the end.

Rows go to ``<report-dir>/results.csv`` from ``pytest_runtest_logreport`` on the process
that reports (the xdist controller under ``-n``), so parallel runs write one file, and a
run killed halfway keeps every finished row. ``--resume`` keeps that file and skips the
cases it already holds for the same settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.options import settings_of
from plugins.report.columns import COLUMN_NAMES, PROPERTY_PREFIX, build_row, derive_energy_savings, format_value
from plugins.report.csv_file import CsvReport, done_case_ids
from plugins.report.environment import host_environment
from plugins.report.page import write_report
from plugins.report.plots import make_plots
from plugins.report.summary import render

STATE_KEY = pytest.StashKey["Reporter"]()


class Reporter:
    """Session state of the reporting plugin."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.settings = settings_of(config)
        self.resume = bool(self.settings["resume"])
        self.report_dir = self.settings.report_dir
        self.env = host_environment(Path(str(config.rootpath)))
        self.controller = not hasattr(config, "workerinput")
        self.csv: CsvReport | None = None
        self.rows_written = 0
        self.extra_sections: list = []  # callables rows -> Markdown, added by other plugins
        self.page: Path | None = None
        self.text: str | None = None  # the summary, rendered once at session finish
        if self.controller:
            try:
                self.csv = CsvReport(self.report_dir / "results.csv", resume=self.resume)
            except ValueError as e:
                raise pytest.UsageError(str(e)) from None

    def current_settings(self) -> dict:
        return {**self.settings.resume_keys, "tflite_micro": self.env["tflite_micro"]}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        if not (self.resume and self.csv):
            return
        done = done_case_ids(self.csv.rows(), self.current_settings())
        for item in items:
            case = getattr(item, "callspec", None) and item.callspec.params.get("case")
            if case is not None and case.id in done:
                item.add_marker(pytest.mark.skip(reason=f"finished in an earlier run ({self.csv.path}); --resume"))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.csv is None or report.when != "call":
            return
        props = {k[len(PROPERTY_PREFIX) :]: v for k, v in report.user_properties if k.startswith(PROPERTY_PREFIX)}
        if "case_id" in props:
            self.csv.append({k: props.get(k) for k in COLUMN_NAMES})
            self.rows_written += 1

    def summary(self) -> str | None:
        if self.csv is None or not self.csv.started:
            return None
        rows = self.csv.rows()
        if not rows:
            return None
        return "\n".join([render(rows), *(section(rows) for section in self.extra_sections)])

    def pytest_sessionfinish(self) -> None:
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
            if self.csv.torn_bytes:
                terminalreporter.write_line(
                    f"tinyhil: removed a torn last row ({self.csv.torn_bytes} B cut by a crash) from {self.csv.path}"
                )
            terminalreporter.write_line(
                f"tinyhil: {self.rows_written} rows written to {self.csv.path}; summary in {self.report_dir / 'summary.md'}"
            )
            if self.page is not None:
                terminalreporter.write_line(f"tinyhil: report with figures: {self.page}")


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

    def record(case, art, outcome, study, board, seconds: float) -> dict:
        row = build_row(case, art, outcome, study, board, {**env, **outcome.environment}, seconds)
        record_property(PROPERTY_PREFIX + "case_key", case.key)
        for column in COLUMN_NAMES:
            value = row.get(column)
            if value is not None and value != "":
                record_property(PROPERTY_PREFIX + column, format_value(value))
        return row

    return record
