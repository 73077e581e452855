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

DEFAULT_DIR = resources.expectations_dir()


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
    """

    def __init__(self, root: Path, board: str, tflm_version: str):
        self.root, self.board, self.tflm_version = root, board, tflm_version
        self.path = root / board / f"tflm-{tflm_version}.json"
        self.source = self._pick()
        self.cases: dict[str, Expected] = {}
        if self.source is not None:
            data = json.loads(self.source.read_text())
            self.cases = {k: Expected(v["status"], v.get("reason", "")) for k, v in data.get("cases", {}).items()}

    def _pick(self) -> Path | None:
        if self.path.exists():
            return self.path
        others = sorted((self.root / self.board).glob("tflm-*.json"))
        return others[-1] if others else None

    @property
    def describe(self) -> str:
        if self.source is None:
            return f"no expectations for {self.board} yet (every case is expected ok)"
        if self.source != self.path:
            return f"no expectations for TFLM {self.tflm_version}; comparing with {self.source.name}"
        return f"expectations from {self.source}"

    def expected(self, key: str) -> Expected:
        return self.cases.get(key, Expected("ok", "no expectation recorded: ok is assumed"))

    def write(self, results: dict[str, Expected]) -> Path:
        """Merges ``results`` into the current version's file and writes it."""
        merged = dict(self.cases) if self.source == self.path else {}
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
