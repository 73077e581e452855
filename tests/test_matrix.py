"""The study: one case per network x technique x target.

Each case builds (or takes from the cache) its model, deploys it on its target, records
every figure, then compares it with a baseline run (``--baseline``) and checks the
verdict against the board's expectations.
"""

import time


def test_case(case, case_target, study, board, report_dir, record_case, check_baseline, expect_verdict):
    t0 = time.monotonic()
    art = study.artifacts(case.network, case.technique, export_dir=report_dir / "models")
    outcome = case_target.run(art, study, board)
    row = record_case(case, art, outcome, study, board, time.monotonic() - t0)
    check_baseline(case, row)
    expect_verdict(case, outcome.verdict)
