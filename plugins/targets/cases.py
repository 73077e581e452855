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
    """One matrix cell; ``marker`` is its target's pytest marker."""

    network: str
    technique: str
    target: str
    marker: str = "offline"

    @property
    def key(self) -> str:
        """``network-technique``: the expectations file's key."""
        return case_key(self.network, self.technique)

    @property
    def id(self) -> str:
        return f"{self.key}-{self.target}"


def matrix(settings: Settings) -> list[Case]:
    """Every case of the run, target by target, then network by network."""
    return [
        Case(net, tech, target.name, target.marker)
        for target in selected_targets(settings)
        for net in settings.networks
        for tech in settings.techniques_for(net)
    ]
