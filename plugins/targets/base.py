"""What a target is, what it returns, and the registry every target is chosen from.

A target module registers a factory with :func:`register_target`: its name (the last
part of a case id), the pytest marker of its cases (``offline`` or ``hil``), and when a
run selects it. The matrix asks :func:`selected_targets`; a case's target is built by
its registered factory from a :class:`TargetContext`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tinyhil.models.boards import Board
from tinyhil.models.pipeline import CaseArtifacts, Study
from tinyhil.models.registry import Registry
from tinyhil.models.verdict import Verdict

if TYPE_CHECKING:
    from tinyhil.plugins.settings.resolve import Settings


@dataclass
class Outcome:
    """What a target found.

    Attributes:
        verdict: Status and reason.
        figures: CSV column -> value, for the figures it could obtain.
        environment: CSV column -> value, what the target reports about itself
            (ESP-IDF and esp-tflite-micro versions, firmware hash of a board).
    """

    verdict: Verdict
    figures: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)


class Target(Protocol):
    """Deploys one case's model and judges it."""

    def run(self, art: CaseArtifacts, study: Study, board: Board) -> Outcome: ...


@dataclass(frozen=True)
class TargetContext:
    """What a factory may use to build its target.

    Attributes:
        settings: The run's settings.
        fixture: Returns a pytest fixture's value by name (pytest-embedded's ``dut``).
        board: The case's board (``settings.board`` in a run of one board).
    """

    settings: Settings
    fixture: Callable[[str], Any]
    board: Any = None


@dataclass(frozen=True)
class TargetKind:
    """A registered target.

    Attributes:
        name: Last part of a case id (``host``, ``esp32``, ``virtual-esp32``).
        marker: pytest marker of its cases: ``offline`` or ``hil``.
        description: One line for the README and errors.
        selected: Whether a run with these settings has cases on it.
        create: Builds the target for one case.
    """

    name: str
    marker: str
    description: str
    selected: Callable[[Settings], bool]
    create: Callable[[TargetContext], Target]


TARGETS: Registry[TargetKind] = Registry("target")


def register_target(
    name: str, marker: str, description: str, selected: Callable[[Settings], bool] = lambda s: True
) -> Callable[[Callable[[TargetContext], Target]], Callable[[TargetContext], Target]]:
    """Registers a target factory under ``name``.

    Raises:
        ValueError: for an unknown marker or a name registered twice.
    """
    if marker not in ("offline", "hil"):
        raise ValueError(f"target {name}: marker must be offline or hil, got {marker!r}")

    def deco(create: Callable[[TargetContext], Target]) -> Callable[[TargetContext], Target]:
        TARGETS.add(name, TargetKind(name, marker, description, selected, create))
        return create

    return deco


def selected_targets(settings: Settings) -> list[TargetKind]:
    """The registered targets this run has cases on: offline ones first, then by registration."""
    kinds = [TARGETS.get(name) for name in TARGETS.names() if TARGETS.get(name).selected(settings)]
    return sorted(kinds, key=lambda kind: kind.marker != "offline")
