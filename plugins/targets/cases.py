"""The cases of a run: every selected network x technique x selected target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyhil.models.pipeline import case_key
from tinyhil.plugins.targets.base import selected_targets

if TYPE_CHECKING:
    from tinyhil.plugins.settings.resolve import Settings


@dataclass(frozen=True)
class Case:
    """One matrix cell; ``marker`` is its target's pytest marker, ``board`` its board when the
    run has several (``--board a,b``), else ""."""

    network: str
    technique: str
    target: str
    marker: str = "offline"
    board: str = ""

    @property
    def key(self) -> str:
        """``network-technique``: the expectations file's key."""
        return case_key(self.network, self.technique)

    @property
    def id(self) -> str:
        """``network-technique-target``, and ``-board`` when the run has several (``-k`` selects by board)."""
        return f"{self.key}-{self.target}" + (f"-{self.board}" if self.board else "")


def matrix(settings: Settings) -> list[Case]:
    """Every case of the run, target by target, board by board (with several), then network by network."""
    boards = [b.name for b in settings.all_boards] if settings.board_axis else [""]
    return [
        Case(net, tech, target.name, target.marker, board)
        for target in selected_targets(settings)
        for board in boards
        for net in settings.networks
        for tech in settings.techniques_for(net)
    ]
