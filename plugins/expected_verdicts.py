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
    """Session state: a store per board (by board name), and the verdicts seen when updating
    (controller side)."""

    def __init__(self, config: pytest.Config, stores: dict[str, ExpectationStore]):
        self.config = config
        self.stores = stores
        self.updating = settings_of(config).options.update_expectations
        self.seen: dict[str, dict[str, Expected]] = {name: {} for name in stores}
        self.written: list[Path] = []

    def store_for(self, board: str) -> ExpectationStore:
        """The store of a row's or a case's board (the first board's for "")."""
        return self.stores.get(board) or next(iter(self.stores.values()))

    def pytest_report_header(self) -> list[str]:
        return [f"tinyhil: {store.describe}" for store in self.stores.values()]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.updating or report.when != "call":
            return
        props = dict(report.user_properties)
        key, status = props.get(PROPERTY_PREFIX + "case_key"), props.get(PROPERTY_PREFIX + "status")
        board = str(props.get(PROPERTY_PREFIX + "board", ""))
        if key and status:
            seen = self.seen[board] if board in self.seen else next(iter(self.seen.values()))
            seen[key] = Expected(str(status), str(props.get(PROPERTY_PREFIX + "reason", "")))

    def pytest_sessionfinish(self) -> None:
        if self.updating and not hasattr(self.config, "workerinput"):
            self.written = [self.stores[name].write(seen) for name, seen in self.seen.items() if seen]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        for path in self.written:
            terminalreporter.write_line(f"tinyhil: expected verdicts written to {path}")


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
        stores = {
            b.name: ExpectationStore(
                chosen, b.expectations_name, tflm_version(), replace_damaged=settings.options.update_expectations
            )
            for b in settings.all_boards
        }
    except ExpectationsError as e:
        raise pytest.UsageError(f"tinyhil: {e}") from None
    state = ExpectationsState(config, stores)
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "tinyhil-expectations")


@pytest.fixture
def expect_verdict(pytestconfig: pytest.Config):
    """Returns ``check(case, verdict)``: passes on a match, xfails an expected failure, fails on change."""
    state = pytestconfig.stash[STATE_KEY]

    def check(case: Case, verdict: Verdict) -> None:
        if state.updating:
            return
        store = state.store_for(settings_of(pytestconfig).board_named(case.board).name)
        exp = store.expected(case.key)
        if verdict.status != exp.status:
            pytest.fail(
                f"{case.id}: verdict changed on {store.board}: expected {exp.status} ({exp.reason}), "
                f"got {verdict.status}: {verdict.reason}. If the change is intended, rerun with --update-expectations",
                pytrace=False,
            )
        if verdict.status != "ok":
            pytest.xfail(f"expected {verdict.status}: {verdict.reason}")

    return check
