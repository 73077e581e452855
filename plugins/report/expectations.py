"""Expected verdicts: a data file per board and TFLM version.

``<expectations-dir>/<board>/tflm-<version>.json`` maps ``network-technique`` to the
status the board is expected to give. A run on a TFLM version that has no file yet is
compared with the newest file of that board, so an upgrade that breaks or fixes a
combination fails the cases that changed. ``--update-expectations`` rewrites the file of
the current version from the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tinyhil import resources
from tinyhil.models.errors import TinyhilError
from tinyhil.models.verdict import STATUSES

DEFAULT_DIR = resources.expectations_dir()


class ExpectationsError(TinyhilError):
    """An expectations file that is not JSON, not of the layout, or holds a status that is no verdict."""


@dataclass(frozen=True)
class Expected:
    status: str
    reason: str


class ExpectationStore:
    """Reads and writes the expectations of one board.

    Args:
        root: Folder holding one sub-folder per board.
        board: Board profile name.
        tflm_version: Version of the TFLM the run uses.
        replace_damaged: Read a damaged file as empty (``--update-expectations`` rewrites
            it) instead of refusing it.

    Raises:
        ExpectationsError: for a damaged file, naming it, the case and the fix.
    """

    def __init__(self, root: Path, board: str, tflm_version: str, replace_damaged: bool = False):
        self.root, self.board, self.tflm_version = root, board, tflm_version
        self.path = root / board / f"tflm-{tflm_version}.json"
        self.source = self._pick()
        self.cases: dict[str, Expected] = {}
        self.damage: str | None = None  # what was wrong with a file that is being replaced
        if self.source is not None:
            try:
                self.cases = read_cases(self.source)
            except ExpectationsError as e:
                if not replace_damaged:
                    raise
                self.damage = str(e)

    def _pick(self) -> Path | None:
        if self.path.exists():
            return self.path
        others = sorted((self.root / self.board).glob("tflm-*.json"))
        return others[-1] if others else None

    @property
    def describe(self) -> str:
        if self.damage is not None:
            return f"{self.source} is damaged; --update-expectations replaces it with this run's verdicts"
        if self.source is None:
            return f"no expectations for {self.board} yet (every case is expected ok)"
        if self.source != self.path:
            return f"no expectations for TFLM {self.tflm_version}; comparing with {self.source.name}"
        return f"expectations from {self.source}"

    def expected(self, key: str) -> Expected:
        return self.cases.get(key, Expected("ok", "no expectation recorded: ok is assumed"))

    def write(self, results: dict[str, Expected]) -> Path:
        """Merges ``results`` into the current version's file and writes it."""
        merged = dict(self.cases) if self.source == self.path else {}  # a damaged file gave no cases
        merged.update(results)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "board": self.board,
            "tflite_micro": self.tflm_version,
            "note": "expected verdict per network-technique; regenerate with --update-expectations",
            "cases": {k: {"status": v.status, "reason": v.reason} for k, v in sorted(merged.items())},
        }
        self.path.write_text(json.dumps(doc, indent=1) + "\n")
        return self.path


def read_cases(path: Path) -> dict[str, Expected]:
    """The cases of one expectations file, each status checked against the verdicts.

    Raises:
        ExpectationsError: naming the file, the case and the fix.
    """
    fix = "rerun with --update-expectations to rewrite it, or delete it"

    def bad(what: str) -> ExpectationsError:
        return ExpectationsError(f"expectations file {path}: {what}; {fix}")

    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise bad(f"not UTF-8 text (byte {e.start})") from None
    except ValueError as e:
        raise bad(f"not JSON ({e})") from None
    except OSError as e:
        raise bad(f"cannot be read ({e.strerror or e})") from None
    if not isinstance(doc, dict):
        raise bad(f"expected a JSON object, got {type(doc).__name__}")
    cases = doc.get("cases", {})
    if not isinstance(cases, dict):
        raise bad(f"'cases' must map network-technique to a status, got a {type(cases).__name__}")
    out = {}
    for key, value in cases.items():
        if not isinstance(value, dict):
            raise bad(f"case {key!r} must be an object with 'status' and 'reason', got {value!r}")
        status, reason = value.get("status"), value.get("reason", "")
        if status not in STATUSES:
            got = "no 'status'" if "status" not in value else f"status {status!r}"
            raise bad(f"case {key!r} has {got}; a status is one of {', '.join(STATUSES)}")
        out[key] = Expected(status, str(reason))
    return out
