"""The study: one case per network x technique x target.

Each case builds (or takes from the cache) its model, deploys it on its target, records
every figure, then checks the verdict against the board's expectations.
"""

import time

from plugins.targets import TARGETS


def test_case(case, study, board, report_dir, record_case, expect_verdict, hil_target=None):
    t0 = time.monotonic()
    art = study.artifacts(case.network, case.technique, export_dir=report_dir / "models")
    target = TARGETS.get(case.target)() if case.target in TARGETS else hil_target
    outcome = target.run(art, study, board)
    record_case(case, art, outcome, study, board, time.monotonic() - t0)
    expect_verdict(case, outcome.verdict)
