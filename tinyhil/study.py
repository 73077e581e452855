"""The tinyhil study, as a pytest plugin and one test function.

Asking for tinyhil in a pytest run means loading this module as a plugin: the root
``conftest.py`` of tinyhil's own checkout does (``pytest_plugins``), and so does
``pytest -p tinyhil.study`` (or ``pytest_plugins = ["tinyhil.study"]``, or
``addopts = -p tinyhil.study``) in a project of your own. It registers every tinyhil
plugin; without it, the installed package only declares its options and changes nothing.

The cases come from :func:`test_case`: a test module that imports it holds the study,
one case per network x technique x target, with the same ids everywhere::

    # tests/test_tinyhil.py in your project
    from tinyhil.study import test_case  # noqa: F401 - the tinyhil study
"""

from __future__ import annotations

import time

pytest_plugins = [
    "tinyhil.plugins.options",
    "tinyhil.plugins.option_fixtures",
    "tinyhil.plugins.matrix",
    "tinyhil.plugins.recording",
    "tinyhil.plugins.run_progress",
    "tinyhil.plugins.expected_verdicts",
    "tinyhil.plugins.regression",
    "tinyhil.plugins.bench_wiring",
]


def test_case(case, case_target, study, case_board, report_dir, record_case, check_baseline, expect_verdict):
    """One case: build (or take from the cache) its model, deploy it on its target, record
    every figure, compare it with a baseline run (``--baseline``) and check the verdict
    against the board's expectations."""
    from tinyhil.plugins.targets import Outcome

    t0 = time.monotonic()
    board = case_board  # the case's board: one of --board a,b, or --board's
    art = study.artifacts(case.network, case.technique, export_dir=report_dir / "models", board=board)
    outcome = Outcome(art.verdict) if art.verdict else case_target.run(art, study, board)
    row = record_case(case, art, outcome, study, board, time.monotonic() - t0)
    check_baseline(case, row)
    expect_verdict(case, outcome.verdict)
