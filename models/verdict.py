"""Verdicts: how every case ends."""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = (
    "ok",
    "convert_error",
    "unsupported_op",
    "arena_overflow",
    "ram_overflow",
    "flash_overflow",
    "device_error",
    "timeout",
    "wrong_output",
)
MEMORY_STATUSES = ("arena_overflow", "ram_overflow", "flash_overflow")


@dataclass(frozen=True)
class Verdict:
    """A status from :data:`STATUSES` and a human-readable reason.

    ``fits`` is None when the case never got far enough to know (conversion failed, the
    runtime refused an op before planning memory).
    """

    status: str
    reason: str
    fits: bool | None
    runs: bool

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}; known: {', '.join(STATUSES)}")
