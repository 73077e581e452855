"""``--baseline``: every case is compared with an earlier run's results.csv.

A changed verdict fails the case, and so do an accuracy drop, arena or model growth,
latency or energy growth beyond the tolerances (each an option with an ini default).
The summary gets a table of every changed figure and of the cases that appeared or
disappeared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.baseline import Tolerances, diff, read_rows, regressions, render_diff
from plugins.matrix import Case, add_ini_option, option
from plugins.report import STATE_KEY as REPORTER_KEY
from plugins.results import format_value

BASELINE_KEY = pytest.StashKey[dict]()
_TOLERANCES = [
    ("tol-accuracy", "allowed absolute accuracy drop against the baseline", "0.01"),
    ("tol-arena", "allowed relative arena growth", "0.05"),
    ("tol-model", "allowed relative model size growth", "0.05"),
    ("tol-latency", "allowed relative latency growth", "0.10"),
    ("tol-energy", "allowed relative energy growth", "0.10"),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("tinyhil").addoption(
        "--baseline",
        default=None,
        help="results.csv of an earlier run to compare every case with (Default: none)",
    )
    for name, text, default in _TOLERANCES:
        add_ini_option(parser, name, text, default)


def tolerances(config: pytest.Config) -> Tolerances:
    values = {}
    for name, _, _ in _TOLERANCES:
        raw = option(config, name)
        try:
            values[name.removeprefix("tol-")] = float(raw)
        except ValueError:
            raise pytest.UsageError(f"--{name} must be a number, got {raw!r}") from None
    return Tolerances(**values)


@pytest.hookimpl(trylast=True)  # after plugins.report has registered its reporter
def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("baseline")
    state = {"path": None, "rows": {}, "tolerances": tolerances(config)}
    if path:
        try:
            rows = read_rows(Path(path))
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
        state.update(path=Path(path), rows={r["case_id"]: r for r in rows})
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
