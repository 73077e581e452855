"""--device-windows auto: the sequential agreement test between the board and host TFLM."""

import math

import numpy as np
import pytest
from scipy.stats import beta

from tests.unit.subrun import read_csv, run
from tinyhil.plugins.bench.measure.agreement import (
    AGREES,
    DISAGREES,
    MAX_BATCH_WINDOWS,
    MIN_BATCH_WINDOWS,
    UNDECIDED,
    AgreementTest,
    lower_bound,
    run_sequential,
    upper_bound,
)
from tinyhil.plugins.bench.measure.steps import HilSettings, disagreement_reason, window_order

CASES = [(0, 1), (0, 50), (0, 299), (1, 10), (3, 100), (6, 299), (12, 599), (50, 2575), (100, 120), (7, 7)]


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
@pytest.mark.parametrize(("k", "n"), CASES)
def test_the_bounds_are_clopper_pearson(k, n, confidence):
    want_upper = beta.ppf(confidence, k + 1, n - k) if k < n else 1.0
    want_lower = beta.ppf(1 - confidence, k, n - k + 1) if k > 0 else 0.0
    assert upper_bound(k, n, confidence) == pytest.approx(want_upper, rel=1e-9, abs=1e-15)
    assert lower_bound(k, n, confidence) == pytest.approx(want_lower, rel=1e-9, abs=1e-15)


def test_299_windows_without_a_disagreement_prove_agreement_at_the_defaults():
    test = AgreementTest()  # --max-disagreement 0.01, --agreement-confidence 0.95
    assert 1 - 0.05 ** (1 / 299) < 0.01 <= 1 - 0.05 ** (1 / 298)
    assert upper_bound(0, 299, 0.95) < 0.01 <= upper_bound(0, 298, 0.95)
    assert test.windows_to_prove(0) == 299
    assert test.decide(0, 298) == UNDECIDED and test.decide(0, 299) == AGREES
    # each disagreement makes the proof longer; its upper bound is then just below the maximum
    for k in range(1, 6):
        n = test.windows_to_prove(k)
        assert upper_bound(k, n, 0.95) < 0.01 <= upper_bound(k, n - 1, 0.95), (k, n)
    assert AgreementTest(0.05, 0.99).windows_to_prove(0) == math.ceil(math.log(0.01) / math.log(0.95))


def test_the_first_batch_is_the_proof_and_later_ones_are_bounded():
    test = AgreementTest()
    assert test.next_batch(0, 0, 2575) == 299
    assert test.next_batch(0, 0, 120) == 120  # never more than the split holds
    assert test.next_batch(1, 299, 2276) == 473 - 299
    assert test.next_batch(6, 299, 2276) == MAX_BATCH_WINDOWS  # a long proof goes in steps, to stop early
    assert test.next_batch(1, 470, 2000) == MIN_BATCH_WINDOWS  # no command for a handful of windows


def test_the_lower_bound_stops_a_board_that_disagrees():
    test = AgreementTest()
    assert test.decide(6, 299) == UNDECIDED  # 2 % seen, not yet proven above 1 %
    assert test.decide(12, 599) == DISAGREES  # lower bound 0.0116
    assert test.decide(299, 299) == DISAGREES


def _simulated_run(wrong_share: float, seed: int, n_test: int = 2575) -> tuple[str | None, int]:
    """One case against a simulated board that answers a wrong class on ``wrong_share`` of windows:
    the wrong_output reason (or None) and the windows sent."""
    rng = np.random.default_rng(1000 + seed)
    host = rng.integers(0, 6, n_test)
    wrong = rng.random(n_test) < wrong_share  # the board's faulty windows, fixed for the run

    def board(batch: np.ndarray) -> list[int]:
        return [int((host[i] + 1) % 6 if wrong[i] else host[i]) for i in batch]

    settings = HilSettings(seed=seed)
    result = run_sequential(board, host, window_order(n_test, seed), settings.agreement)
    n, k = len(result.order), result.disagreements
    figures = {"device_agreement": 1 - k / n, "device_windows": n, "device_disagreements": k}
    return disagreement_reason(figures, settings, n_test), n


@pytest.mark.parametrize(
    ("n_test", "by_bound", "by_split", "median_sent"),
    [(2575, 100, 0, 599), (1080, 89, 11, 599)],  # a UCI-HAR-sized split; the generated data's
)
def test_a_board_wrong_on_2_percent_of_windows_is_caught_in_at_least_95_of_100_runs(
    n_test, by_bound, by_split, median_sent
):
    runs = [_simulated_run(0.02, seed, n_test) for seed in range(100)]
    reasons = [reason for reason, _ in runs]
    assert sum("more than 0.01 of them at confidence 0.95" in (r or "") for r in reasons) == by_bound
    assert sum(f"of the split's {n_test} windows" in (r or "") for r in reasons) == by_split
    assert reasons.count(None) == 100 - by_bound - by_split == 0
    assert sorted(n for _, n in runs)[50] == median_sent  # half the runs stop within their second batch


def test_a_correct_board_is_never_flagged_and_stops_at_299_windows():
    runs = [_simulated_run(0.0, seed) for seed in range(100)]
    assert [reason for reason, _ in runs] == [None] * 100
    assert {n for _, n in runs} == {299}


def test_a_split_smaller_than_the_proof_is_judged_on_its_own_share():
    settings = HilSettings()
    ok = {"device_agreement": 1 - 1 / 120, "device_windows": 120, "device_disagreements": 1}
    wrong = {"device_agreement": 1 - 2 / 120, "device_windows": 120, "device_disagreements": 2}
    assert disagreement_reason(ok, settings, 120) is None  # 0.8 % of the whole split
    assert "the class differs in 2 of the split's 120 windows (1.7%" in disagreement_reason(wrong, settings, 120)


def test_min_agreement_judges_all_and_a_count():
    figures = {"device_agreement": 0.97, "device_windows": 100, "device_disagreements": 3}
    assert disagreement_reason(figures, HilSettings(device_windows=100), 1080) is None  # 0.97 >= 0.95
    reason = disagreement_reason(figures, HilSettings(device_windows=0, min_agreement=0.98), 1080)
    assert reason == "outputs disagree with host TFLM: the class matches in 97% of 100 windows (--min-agreement 0.98)"


def test_device_windows_parses_auto():
    from tinyhil.plugins.settings.table import OPTIONS

    parse = next(o for o in OPTIONS if o.name == "device-windows").parse
    assert parse("auto") == "auto" and parse(" AUTO") == "auto" and parse("all") == 0 and parse("50") == 50
    assert next(o for o in OPTIONS if o.name == "device-windows").default == "auto"


def test_a_virtual_board_wrong_on_2_percent_of_windows_is_wrong_output(project):
    """End to end: --virtual-fault wrong-class-2pct answers another class for 2 % of the windows
    (by their bytes); the agreement test proves it and the case says so, every figure recorded."""
    res = run(
        project,
        "-m",
        "hil",
        "--virtual-board",
        "--networks=C_1",
        "--techniques=full_int",
        "--virtual-fault=wrong-class-2pct",
    )
    res.assert_outcomes(failed=1)
    (row,) = read_csv(project)
    assert row["status"] == "wrong_output", row["reason"]
    assert row["reason"].startswith("outputs disagree with host TFLM: the class differs in ")
    k, n = int(row["device_disagreements"]), int(row["device_windows"])
    assert k > 0 and float(row["device_agreement"]) == pytest.approx(1 - k / n)
    assert lower_bound(k, n, 0.95) > 0.01 or n == 1080
    assert row["agreement_test"] in (
        f"{DISAGREES}: max 0.01 at confidence 0.95",
        f"{UNDECIDED}: max 0.01 at confidence 0.95",
    )
    assert float(row["latency_ms_median"]) > 0 and row["acc_tflm"] != ""
