"""Does the board compute what host TFLM computes? A sequential test on the test windows.

Host TFLM's accuracy over the whole test split is exact on the host; what the windows sent to
the board have to show is that the board's class equals host TFLM's. With ``--device-windows
auto`` they go in a seeded random order, in batches, and streaming stops as soon as the
one-sided Clopper–Pearson bounds on the disagreement rate decide against ``--max-disagreement``
at ``--agreement-confidence``: the upper bound below it proves agreement (299 windows when none
disagrees, at 0.01 and 0.95), the lower bound above it proves disagreement (``wrong_output``).
When the split runs out first, the case is judged as with ``--device-windows all``: by
``--min-agreement`` on the whole split.

The bounds are computed here from the binomial distribution (scipy is not a dependency);
``scipy.stats.beta.ppf`` gives the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

AUTO = "auto"  # --device-windows auto
AGREES, DISAGREES, UNDECIDED = "agrees", "disagrees", "undecided"
MIN_BATCH_WINDOWS = 50  # a classify% command's round trip is paid at most once per 50 windows
MAX_BATCH_WINDOWS = 300  # a disagreeing board is caught within 300 windows of its proof


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed term by term in log space."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    return min(
        1.0,
        math.fsum(
            math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
            for i in range(k + 1)
        ),
    )


def _solve_decreasing(f: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] where the decreasing ``f`` crosses ``target``, by bisection."""
    low, high = 0.0, 1.0
    for _ in range(200):
        mid = (low + high) / 2
        if f(mid) > target:
            low = mid
        else:
            high = mid
        if high - low < 1e-15:
            break
    return (low + high) / 2


def upper_bound(disagreements: int, windows: int, confidence: float) -> float:
    """One-sided Clopper–Pearson upper bound on the disagreement rate.

    Args:
        disagreements: Windows whose class differs from host TFLM's (k).
        windows: Windows compared (n).
        confidence: Confidence of the bound, e.g. 0.95.

    Returns:
        The p with P(X <= k | n, p) = 1 - confidence (``beta.ppf(confidence, k + 1, n - k)``);
        1.0 when every window disagrees or none was compared.
    """
    if disagreements >= windows:
        return 1.0
    alpha = 1.0 - confidence
    if disagreements == 0:
        return -math.expm1(math.log(alpha) / windows)  # 1 - alpha^(1/n), exact
    return _solve_decreasing(lambda p: _binomial_cdf(disagreements, windows, p), alpha)


def lower_bound(disagreements: int, windows: int, confidence: float) -> float:
    """One-sided Clopper–Pearson lower bound on the disagreement rate.

    Returns:
        The p with P(X >= k | n, p) = 1 - confidence (``beta.ppf(1 - confidence, k, n - k + 1)``);
        0.0 when no window disagrees.
    """
    if disagreements <= 0:
        return 0.0
    if disagreements >= windows:
        return (1.0 - confidence) ** (1.0 / windows)
    return _solve_decreasing(lambda p: _binomial_cdf(disagreements - 1, windows, p), confidence)


@dataclass(frozen=True)
class AgreementTest:
    """The stopping rule of ``--device-windows auto``.

    Attributes:
        max_disagreement: The largest disagreement rate that still counts as agreeing (``--max-disagreement``).
        confidence: Confidence of both one-sided bounds (``--agreement-confidence``).
    """

    max_disagreement: float = 0.01
    confidence: float = 0.95

    def decide(self, disagreements: int, windows: int) -> str:
        """:data:`AGREES`, :data:`DISAGREES` or :data:`UNDECIDED` after ``windows`` compared."""
        if windows <= 0:
            return UNDECIDED
        if upper_bound(disagreements, windows, self.confidence) < self.max_disagreement:
            return AGREES
        if lower_bound(disagreements, windows, self.confidence) > self.max_disagreement:
            return DISAGREES
        return UNDECIDED

    def windows_to_prove(self, disagreements: int) -> int:
        """The fewest windows whose upper bound falls below the maximum with ``disagreements`` of them disagreeing."""
        below = lambda n: upper_bound(disagreements, n, self.confidence) < self.max_disagreement  # noqa: E731
        high = max(disagreements + 1, 1)
        while not below(high):
            high *= 2
        low = high // 2  # below(low) is False, or low is too small to hold the disagreements
        while high - low > 1:
            mid = (low + high) // 2
            if mid > disagreements and below(mid):
                high = mid
            else:
                low = mid
        return high

    def next_batch(self, disagreements: int, windows: int, remaining: int) -> int:
        """Windows in the next ``classify%``: those that would complete the proof if all of them agree,
        from :data:`MIN_BATCH_WINDOWS` to :data:`MAX_BATCH_WINDOWS`, never more than remain."""
        wanted = self.windows_to_prove(disagreements) - windows
        return min(remaining, max(MIN_BATCH_WINDOWS, min(wanted, MAX_BATCH_WINDOWS)))

    def rule(self) -> str:
        """The test as the ``agreement_test`` column states it."""
        return f"max {self.max_disagreement:g} at confidence {self.confidence:g}"


@dataclass(frozen=True)
class SequentialResult:
    """What the sequential test saw.

    Attributes:
        order: Indices of the windows sent, in the order sent.
        device_classes: The board's class of each of them.
        disagreements: Windows whose class differs from host TFLM's.
        outcome: :data:`AGREES`, :data:`DISAGREES`, or :data:`UNDECIDED` (the split ran out).
    """

    order: np.ndarray
    device_classes: np.ndarray
    disagreements: int
    outcome: str


def run_sequential(
    classify: Callable[[np.ndarray], list[int]],
    host_classes: np.ndarray,
    order: np.ndarray,
    test: AgreementTest,
) -> SequentialResult:
    """Classifies the windows of ``order`` batch by batch until ``test`` decides or they run out.

    Args:
        classify: The board's classes of the windows at these indices (one ``classify%`` command).
        host_classes: Host TFLM's class of every window of the split.
        order: The windows in the order to send them (a seeded permutation of the split).
        test: The stopping rule.

    Returns:
        The windows sent, their classes on the board, and the test's outcome.
    """
    classes: list[int] = []
    disagreements, outcome = 0, UNDECIDED
    while len(classes) < len(order):
        done = len(classes)
        batch = order[done : done + test.next_batch(disagreements, done, len(order) - done)]
        answers = classify(batch)
        disagreements += int(np.count_nonzero(np.asarray(answers) != host_classes[batch]))
        classes.extend(answers)
        outcome = test.decide(disagreements, len(classes))
        if outcome != UNDECIDED:
            break
    sent = order[: len(classes)]
    return SequentialResult(sent, np.asarray(classes, dtype=np.int64), disagreements, outcome)
