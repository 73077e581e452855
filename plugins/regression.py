"""``--baseline``: every case is compared with an earlier run's results.csv.

A changed verdict fails the case, and so do an accuracy drop, arena or model growth,
latency or energy growth beyond the tolerances (each an option with an ini default).
The summary gets a table of every changed figure and of the cases that appeared or
disappeared.
"""

from __future__ import annotations

import pytest

from tinyhil.plugins.options import settings_of
from tinyhil.plugins.recording import STATE_KEY as REPORTER_KEY
from tinyhil.plugins.report.baseline import diff, read_rows, regressions, render_diff
from tinyhil.plugins.report.columns import format_value
from tinyhil.plugins.targets import Case

BASELINE_KEY = pytest.StashKey[dict]()


@pytest.hookimpl(trylast=True)  # after tinyhil.plugins.recording has registered its reporter
def pytest_configure(config: pytest.Config) -> None:
    settings = settings_of(config)
    path = settings.options.baseline
    state = {"path": None, "rows": {}, "tolerances": settings.tolerances}
    if path:
        try:
            rows = read_rows(path)
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
        state.update(path=path, rows={r["case_id"]: r for r in rows})
        reporter = config.stash.get(REPORTER_KEY, None)
        if reporter is not None:
            reporter.extra_sections.append(lambda current: render_diff(diff(rows, current), path, "this run"))
    config.stash[BASELINE_KEY] = state


@pytest.fixture
def check_baseline(pytestconfig: pytest.Config):
    """Returns ``check(case, row)``: fails the case on a regression against ``--baseline``."""
    state = pytestconfig.stash[BASELINE_KEY]

    def check(case: Case, row: dict) -> None:
        base = state["rows"].get(case.id)
        if base is None:
            return
        current = {k: format_value(v) for k, v in row.items()}
        problems = regressions(current, base, state["tolerances"])
        if problems:
            pytest.fail(f"{case.id} regressed against {state['path']}: " + "; ".join(problems), pytrace=False)

    return check
