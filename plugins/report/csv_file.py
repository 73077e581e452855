"""``results.csv``: one row per case, appended and flushed as each case ends.

Every write leaves a file that reads back: a row goes on with one append and is cut off
again when the disk refuses part of it, and a whole new file replaces the old one only
once it is written (:func:`~tinyhil.plugins.report.whole_files.replace_whole`). Reading is
lenient where a person may have been: a UTF-8 BOM (as Excel saves) is skipped, and a
damaged row (a byte that is not UTF-8, a row cut short or inside a quoted field) is left
out with a line saying where, so ``--resume`` runs its case again.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tinyhil.plugins.report.columns import COLUMN_NAMES, format_value
from tinyhil.plugins.report.whole_files import replace_whole, write_all

# Besides what Settings.resume_values gives: the library versions and the code's revision.
VERSION_COLUMNS = ("tensorflow", "tf_keras", "tflite_micro", "ai_edge_litert", "git_rev")

RERUN = "--resume drops this row and runs its case again"


@dataclass
class Table:
    """What a results file holds.

    Attributes:
        header: Its first row.
        rows: Its complete rows (column -> text).
        problems: One line per damaged row left out: file, line, what is wrong, what
            ``--resume`` does about it.
    """

    header: list[str]
    rows: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class CsvReport:
    """Appends rows to ``path``; a killed run keeps every row written before it died.

    Args:
        path: The CSV file.
        resume: Keep the rows already in ``path`` (its header must match) instead of
            starting a new file.

    Raises:
        ValueError: when resuming a file whose header is not :data:`COLUMN_NAMES`.
        OSError: when resuming a file that cannot be read or repaired.
    """

    def __init__(self, path: Path, resume: bool = False):
        self.path = Path(path)
        self.started = False
        self.torn_bytes = 0  # bytes of a row cut by a crash, removed before appending
        self.problems: list[str] = []  # damaged rows found on resuming (see Table.problems)
        self._ids: set[str] | None = None  # case ids in the file, read once (this process writes it)
        if resume and self.path.exists() and self.path.stat().st_size:
            self.problems = read_results(self.path).problems
            self.torn_bytes = repair_torn_tail(self.path)
            self.started = True

    def _start(self) -> None:
        """Starts a new file on the first row, so a run without cases leaves the old one alone."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        replace_whole(self.path, _csv_text([COLUMN_NAMES]))
        self.started = True
        self._ids = set()

    def append(self, row: dict) -> None:
        """Appends ``row``; a row of the same case from an earlier run (other settings) is replaced.

        Raises:
            OSError: when the row could not be written (the disk is full); the file is as it was.
        """
        if not self.started:
            self._start()
        if self._ids is None:
            self._ids = {r["case_id"] for r in self.rows()}
        case_id = row.get("case_id")
        if case_id and case_id in self._ids:
            self.rewrite([r for r in self.rows() if r["case_id"] != case_id])
        line = io.StringIO()
        csv.DictWriter(line, COLUMN_NAMES, extrasaction="raise").writerow(
            {k: format_value(row.get(k)) for k in COLUMN_NAMES}
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            try:
                write_all(fd, line.getvalue().encode())
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # no half row: the file reads back as before
                raise
        finally:
            os.close(fd)
        if case_id:
            self._ids.add(case_id)

    def rewrite(self, rows: list[dict]) -> None:
        """Replaces the file with ``rows`` whole (for columns derived at the end of a run).

        Raises:
            OSError: when the new file could not be written; the old one stays, and no temp file.
        """
        replace_whole(self.path, _csv_text([COLUMN_NAMES, *([r.get(k, "") for k in COLUMN_NAMES] for r in rows)]))
        self._ids = {r["case_id"] for r in rows}

    def rows(self) -> list[dict]:
        """Every complete row in the file (a row cut by a kill mid-write is dropped)."""
        if not self.started:
            return []
        return read_results(self.path, check_header=False).rows


def _csv_text(records) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(records)
    return out.getvalue()


def read_results(path: Path, check_header: bool = True) -> Table:
    """Reads a results file, leaving out (and naming) the rows that are damaged.

    A last line without its newline (a write cut by a crash) is not read: resuming cuts
    it off (:func:`repair_torn_tail`).

    Raises:
        ValueError: when ``check_header`` and the header is not :data:`COLUMN_NAMES`.
        OSError: when the file cannot be read.
    """
    data = Path(path).read_bytes()
    if not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
    lines = io.StringIO(data.decode("utf-8-sig", errors="surrogateescape"), newline="").readlines()
    header = next(csv.reader(lines[:1]), [])
    if check_header and header != COLUMN_NAMES:
        raise ValueError(f"{path} was written with other columns; move it away or run without --resume")
    table = Table(header)
    i = 1
    while i < len(lines):
        feed = _Lines(lines, i)
        try:
            record = next(csv.reader(feed), [])
        except csv.Error as e:
            table.problems.append(f"tinyhil: {path} line {i + 1}: {e}; {RERUN}")
            i = max(feed.pos, i + 1)
            continue
        wrong = _what_is_wrong(record, len(header))
        if wrong:
            table.problems.append(f"tinyhil: {path} line {i + 1}: {wrong}; {RERUN}")
            if wrong.startswith("a row cut inside"):
                feed.pos = i + 1  # the cut row swallowed the lines after it: read them again
        elif record:
            row = dict(zip(header, record, strict=True))
            if row.get("run_started"):
                table.rows.append(row)
        i = feed.pos
    return table


class _Lines:
    """Hands ``lines`` from ``pos`` on to a csv reader, counting what it took."""

    def __init__(self, lines: list[str], pos: int):
        self.lines, self.pos = lines, pos

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


_UNDECODED = re.compile("[\udc80-\udcff]")  # where utf-8 decoding with surrogateescape met a bad byte


def _what_is_wrong(record: list[str], width: int) -> str | None:
    if not record:
        return None  # a blank line
    if len(record) != width:
        if any("\n" in cell or "\r" in cell for cell in record):
            return "a row cut inside a quoted field"
        if len(record) < width:
            return f"a row cut short ({len(record)} of {width} columns)"
        return f"{len(record)} columns, not {width}"
    for cell in record:
        bad = _UNDECODED.search(cell)
        if bad:
            return f"byte 0x{ord(bad.group()) - 0xDC00:02x} is not UTF-8 (saved in another encoding?)"
    return None


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
