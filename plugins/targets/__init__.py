"""Targets a case deploys to: host TFLM, the ESP32 on the bench, the virtual ESP32.

Each target module registers itself in :data:`~tinyhil.plugins.targets.base.TARGETS`; importing
this package imports them all.
"""

from tinyhil.plugins.targets import esp32, host  # noqa: F401 - each registers its targets
from tinyhil.plugins.targets.base import (
    TARGETS,
    Outcome,
    Target,
    TargetContext,
    TargetKind,
    register_target,
    selected_targets,
)
from tinyhil.plugins.targets.cases import Case, matrix

__all__ = [
    "TARGETS",
    "Case",
    "matrix",
    "Outcome",
    "Target",
    "TargetContext",
    "TargetKind",
    "register_target",
    "selected_targets",
]
