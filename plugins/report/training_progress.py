"""Training progress on the terminal: one line per network, updated in place on a TTY.

One process writes (the pytest controller), before any case runs, so the lines never mix
with pytest's progress characters. On a terminal each network in training holds one
line, rewritten at every epoch, and becomes its ``done`` line when it ends; elsewhere (a
CI log, a pipe) every line is printed as it comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tinyhil.models.parallel_training import TrainingResult
from tinyhil.plugins.report.summary import plural

CLEAR_LINE = "\x1b[2K"
LOG_INTERVAL_S = 10.0  # in a log, a network's epoch lines at most this often (its first always)


def _up(n: int) -> str:
    return f"\x1b[{n}F" if n else ""  # to the start of the line n lines up


class TrainingBoard:
    """Renders the progress of :func:`tinyhil.models.parallel_training.train_networks`.

    Args:
        write: Writes text as it is (no newline added).
        tty: Rewrite lines in place (a terminal) or print each line (a log).
        total: Networks to train.
        jobs: Processes training at once (for the header).
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(
        self, write: Callable[[str], None], tty: bool, total: int, jobs: int, profile: str, clock=time.monotonic
    ):
        self.write, self.tty, self.total, self.profile, self.clock = write, tty, total, profile, clock
        self.t0 = clock()
        self.live: dict[str, str] = {}  # network -> its latest line, in start order
        self.live_drawn: list[str] = []  # the live block as it is on the screen
        self.logged: dict[str, float] = {}  # network -> when its last line went to the log
        self.done = 0
        at_once = min(jobs, total)
        self.write(
            f"[train] {plural(total, 'network')} to train ({profile} profile), {at_once} at a time: "
            f"starting {'its process' if at_once == 1 else f'{at_once} processes'} (importing TensorFlow)\n"
        )

    def _redraw(self, above: list[str]) -> None:
        """Rewrites the live block, first printing ``above`` (lines that stay)."""
        out = [_up(len(self.live_drawn))] if self.tty else []
        for line in above:
            out.append(f"{CLEAR_LINE}{line}\n" if self.tty else f"{line}\n")
        if self.tty:
            out.extend(f"{CLEAR_LINE}{line}\n" for line in self.live.values())
            # lines of a block that shrank: clear them, then come back up
            extra = len(self.live_drawn) - len(above) - len(self.live)
            if extra > 0:
                out.append(f"{CLEAR_LINE}\n" * extra + _up(extra))
            self.live_drawn = list(self.live.values())
        self.write("".join(out))

    def line(self, network: str, text: str) -> None:
        """A progress line of ``network``'s training."""
        if " done: " in text:
            return  # the result's own line says it, with the count (see :meth:`result`)
        if " converting " in text and not self.tty:
            return  # in a log, the result line follows soon
        if self.tty:
            self.live[network] = text
            self._redraw([])
        elif " epoch " not in text:  # a phase (loading the data, building): once each, always shown
            self.write(text + "\n")
        else:
            now = self.clock()
            if network not in self.logged or now - self.logged[network] >= LOG_INTERVAL_S:
                self.logged[network] = now
                self.write(text + "\n")

    def result(self, res: TrainingResult) -> None:
        """``network`` ended: its final line stays above the live block."""
        self.done += 1
        self.live.pop(res.network, None)
        head = f"[train {res.network} {self.profile}]"
        count = f"{self.done}/{self.total} networks, {self.clock() - self.t0:.0f} s elapsed"
        if res.error:
            text = f"{head} not trained: {res.error}; its cases will try again ({count})"
        else:
            text = (
                f"{head} done: {res.epochs} epochs, kept epoch {res.kept_epoch}, test acc={res.accuracy:.3f} "
                f"({res.seconds:.1f} s; {count})"
            )
        self._redraw([text])
