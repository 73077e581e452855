"""How far a long run is: every minute, a line with the cases done and an estimate of the time left.

pytest's own progress is a percentage at the end of each line of dots; a study of
hundreds of cases on a bench runs for hours, so once a run has gone on for
:data:`FIRST_AFTER_S` seconds, a line like
``[tinyhil] 30/182 cases done in 2m10s; about 10m40s left`` follows every
:data:`EVERY_S` seconds (in the xdist controller under ``-n``). The estimate is the wall
time per finished case so far (parallel workers included) times the cases left.
"""

from __future__ import annotations

import time

import pytest

FIRST_AFTER_S = 30.0
EVERY_S = 60.0


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class RunProgress:
    """Counts finished cases and writes the progress line when it is due."""

    def __init__(self, write, clock=time.monotonic):
        self.write, self.clock = write, clock
        self.total = 0
        self.done = 0
        self.t0: float | None = None
        self.next_at: float | None = None

    def case_started(self) -> None:
        if self.t0 is None:
            self.t0 = self.clock()
            self.next_at = self.t0 + FIRST_AFTER_S

    def case_finished(self) -> None:
        self.done += 1
        now = self.clock()
        if self.t0 is None or now < self.next_at or not self.total or self.done >= self.total:
            return
        self.next_at = now + EVERY_S
        self.write(self.line(now))

    def line(self, now: float) -> str:
        elapsed = now - self.t0
        left = elapsed / self.done * (self.total - self.done)
        return f"[tinyhil] {self.done}/{self.total} cases done in {duration(elapsed)}; about {duration(left)} left"


class _Hooks:
    """The hooks of one run's :class:`RunProgress` (registered in ``pytest_configure``)."""

    def __init__(self, progress: RunProgress):
        self.progress = progress

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.total = len(session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        self.progress.total = len(ids)

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        self.progress.case_started()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # a case ends with its teardown report (setup errors and skips included)
        if report.when == "teardown":
            self.progress.case_finished()


def pytest_configure(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(config, "workerinput") or config.option.collectonly:
        return
    config.pluginmanager.register(_Hooks(RunProgress(reporter.write_line)), "tinyhil-progress")
