"""Targets a case deploys to. Each registers by name and declares its pytest marker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from models.boards import Board
from models.pipeline import CaseArtifacts, Study
from models.registry import Registry
from models.verdict import Verdict


@dataclass
class Outcome:
    """What a target found: the verdict and the figures it could obtain (CSV column -> value)."""

    verdict: Verdict
    figures: dict[str, Any] = field(default_factory=dict)


class Target(Protocol):
    name: str
    marker: str  # "offline" or "hil"

    def run(self, art: CaseArtifacts, study: Study, board: Board) -> Outcome: ...


TARGETS: Registry[type] = Registry("target")
