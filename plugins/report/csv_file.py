"""``results.csv``: one row per case, appended and flushed as each case ends."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

from tinyhil.plugins.report.columns import COLUMN_NAMES, format_value

# Besides what Settings.resume_values gives: the library versions and the code's revision.
VERSION_COLUMNS = ("tensorflow", "tf_keras", "tflite_micro", "ai_edge_litert", "git_rev")


class CsvReport:
    """Appends rows to ``path``; a killed run keeps every row written before it died.

    Args:
        path: The CSV file.
        resume: Keep the rows already in ``path`` (its header must match) instead of
            starting a new file.

    Raises:
        ValueError: when resuming a file whose header is not :data:`COLUMN_NAMES`.
    """

    def __init__(self, path: Path, resume: bool = False):
        self.path = Path(path)
        self.started = False
        self.torn_bytes = 0  # bytes of a row cut by a crash, removed before appending
        self._ids: set[str] | None = None  # case ids in the file, read once (this process writes it)
        if resume and self.path.exists() and self.path.stat().st_size:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), [])
            if header != COLUMN_NAMES:
                raise ValueError(f"{self.path} was written with other columns; move it away or run without --resume")
            self.torn_bytes = repair_torn_tail(self.path)
            self.started = True

    def _start(self) -> None:
        """Starts a new file on the first row, so a run without cases leaves the old one alone."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerow(COLUMN_NAMES)
        self.started = True
        self._ids = set()

    def append(self, row: dict) -> None:
        """Appends ``row``; a row of the same case from an earlier run (other settings) is replaced."""
        if not self.started:
            self._start()
        if self._ids is None:
            self._ids = {r["case_id"] for r in self.rows()}
        case_id = row.get("case_id")
        if case_id and case_id in self._ids:
            self.rewrite([r for r in self.rows() if r["case_id"] != case_id])
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, COLUMN_NAMES, extrasaction="raise").writerow(
                {k: format_value(row.get(k)) for k in COLUMN_NAMES}
            )
            f.flush()
            os.fsync(f.fileno())
        if case_id:
            self._ids.add(case_id)

    def rewrite(self, rows: list[dict]) -> None:
        """Replaces the file with ``rows`` atomically (for columns derived at the end of a run)."""
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, COLUMN_NAMES)
            w.writeheader()
            w.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._ids = {r["case_id"] for r in rows}

    def rows(self) -> list[dict]:
        """Every complete row in the file (a row cut by a kill mid-write is dropped)."""
        if not self.started:
            return []
        with open(self.path, newline="") as f:
            return [r for r in csv.DictReader(f) if None not in r.values() and r.get("run_started")]


def repair_torn_tail(path: Path) -> int:
    """Cuts ``path`` back to its last complete line; returns how many bytes were removed.

    A crash during a write can leave a last row without its newline; appending to it
    would glue the next row onto the broken one.
    """
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as f:
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return len(data) - keep


def resume_plan(rows: list[dict], expected: Callable[[dict], dict]) -> tuple[set[str], dict[str, list[str]]]:
    """Which finished cases ``--resume`` keeps.

    Args:
        rows: The rows already in the file.
        expected: Row -> the values (column -> value) it must hold to be kept.

    Returns:
        ``(kept, stale)``: the case ids to skip, and for each row that must run again
        the columns that differ from this run's settings.
    """
    kept, stale = set(), {}
    for r in rows:
        differ = [k for k, v in expected(r).items() if str(r.get(k, "")) != format_value(v)]
        if differ:
            stale[r["case_id"]] = differ
        else:
            kept.add(r["case_id"])
    return kept, stale
