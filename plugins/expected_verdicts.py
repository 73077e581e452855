"""pytest side of expected verdicts: ``--update-expectations`` and the ``expect_verdict`` fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyhil import resources
from tinyhil.models.verdict import Verdict
from tinyhil.plugins.options import settings_of
from tinyhil.plugins.report.columns import PROPERTY_PREFIX
from tinyhil.plugins.report.expectations import ExpectationsError, ExpectationStore, Expected
from tinyhil.plugins.targets import Case

STATE_KEY = pytest.StashKey["ExpectationsState"]()


class ExpectationsState:
    """Session state: the store, and the verdicts seen when updating (controller side)."""

    def __init__(self, config: pytest.Config, store: ExpectationStore):
        self.config = config
        self.store = store
        self.updating = settings_of(config).options.update_expectations
        self.seen: dict[str, Expected] = {}
        self.written: Path | None = None

    def pytest_report_header(self) -> str:
        return f"tinyhil: {self.store.describe}"

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.updating or report.when != "call":
            return
        props = dict(report.user_properties)
        key, status = props.get(PROPERTY_PREFIX + "case_key"), props.get(PROPERTY_PREFIX + "status")
        if key and status:
            self.seen[key] = Expected(str(status), str(props.get(PROPERTY_PREFIX + "reason", "")))

    def pytest_sessionfinish(self) -> None:
        if self.updating and self.seen and not hasattr(self.config, "workerinput"):
            self.written = self.store.write(self.seen)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.written:
            terminalreporter.write_line(f"tinyhil: expected verdicts written to {self.written}")


def pytest_configure(config: pytest.Config) -> None:
    from tinyhil.models.tflm import RuntimeUnavailable, ensure_runtime, tflm_version

    try:
        ensure_runtime()
    except RuntimeUnavailable as e:
        raise pytest.UsageError(str(e)) from None

    settings = settings_of(config)
    chosen, shipped = settings.options.expectations_dir, resources.expectations_dir()
    if (
        settings.options.update_expectations
        and chosen.resolve() == shipped.resolve()
        and not resources.source_checkout()
    ):
        raise pytest.UsageError(
            f"tinyhil: --update-expectations would write into the installed package ({shipped}): "
            f"name a folder of your own, --expectations-dir=DIR (to start from the shipped verdicts, copy "
            f"{shipped} into it first)"
        )
    try:
        store = ExpectationStore(
            chosen,
            settings.board.expectations_name,
            tflm_version(),
            replace_damaged=settings.options.update_expectations,
        )
    except ExpectationsError as e:
        raise pytest.UsageError(f"tinyhil: {e}") from None
    state = ExpectationsState(config, store)
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "tinyhil-expectations")


@pytest.fixture
def expect_verdict(pytestconfig: pytest.Config):
    """Returns ``check(case, verdict)``: passes on a match, xfails an expected failure, fails on change."""
    state = pytestconfig.stash[STATE_KEY]

    def check(case: Case, verdict: Verdict) -> None:
        if state.updating:
            return
        exp = state.store.expected(case.key)
        if verdict.status != exp.status:
            pytest.fail(
                f"{case.id}: verdict changed on {state.store.board}: expected {exp.status} ({exp.reason}), "
                f"got {verdict.status}: {verdict.reason}. If the change is intended, rerun with --update-expectations",
                pytrace=False,
            )
        if verdict.status != "ok":
            pytest.xfail(f"expected {verdict.status}: {verdict.reason}")

    return check
