"""Board profiles (data files in ``models/data/boards``) and the memory-fit verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from models.registry import Registry

BOARDS_DIR = Path(__file__).parent / "data" / "boards"


@dataclass(frozen=True)
class Board:
    """Memory budgets of one board.

    Attributes:
        model_location: ``flash`` (mapped from the model partition) or ``ram`` (copied to heap).
        internal_heap_bytes: Free internal heap at boot, for the arena (and the model copy in ``ram``).
        largest_heap_block_bytes: Largest contiguous block: bounds each single allocation.
        budget_is_estimate: True until a board's boot report replaced the heap figures.
        simulation: Timing and power model of the virtual board (simulated figures only).
    """

    name: str
    description: str
    chip: str
    cpu_mhz: int
    flash_bytes: int
    app_partition_bytes: int
    model_partition_bytes: int
    model_location: str
    internal_heap_bytes: int
    largest_heap_block_bytes: int
    budget_is_estimate: bool
    budget_source: str
    simulation: dict = field(default_factory=dict)

    def with_measured_heap(self, free_heap: int, largest_block: int) -> Board:
        """The same board with heap figures from a real boot report."""
        return replace(
            self,
            internal_heap_bytes=free_heap,
            largest_heap_block_bytes=largest_block,
            budget_is_estimate=False,
            budget_source="measured by the firmware's boot report",
        )


BOARDS: Registry[Board] = Registry("board")
for _f in sorted(BOARDS_DIR.glob("*.json")):
    _b = Board(**json.loads(_f.read_text()))
    BOARDS.add(_b.name, _b)


def get_board(name: str) -> Board:
    return BOARDS.get(name)


@dataclass(frozen=True)
class Fit:
    """Memory-fit outcome: ``ok``, ``flash_overflow``, ``ram_overflow`` or ``arena_overflow``."""

    status: str
    reason: str

    @property
    def fits(self) -> bool:
        return self.status == "ok"


def check_flash(board: Board, model_bytes: int) -> Fit | None:
    """A ``flash_overflow`` fit when the model does not fit the model partition, else None."""
    if model_bytes > board.model_partition_bytes:
        return Fit(
            "flash_overflow",
            f"model {model_bytes} B > model partition {board.model_partition_bytes} B on {board.name}",
        )
    return None


def check_fit(board: Board, model_bytes: int, arena_bytes: int) -> Fit:
    """Checks a model and its arena against a board's budgets; the reason gives the numbers."""
    est = " (estimated budget)" if board.budget_is_estimate else ""
    flash = check_flash(board, model_bytes)
    if flash is not None:
        return flash
    if arena_bytes > board.largest_heap_block_bytes:
        return Fit(
            "arena_overflow",
            f"arena {arena_bytes} B > largest heap block {board.largest_heap_block_bytes} B{est} on {board.name}",
        )
    if board.model_location == "ram":
        if model_bytes > board.largest_heap_block_bytes:
            return Fit(
                "ram_overflow",
                f"model copy {model_bytes} B > largest heap block {board.largest_heap_block_bytes} B{est} on {board.name}",
            )
        if model_bytes + arena_bytes > board.internal_heap_bytes:
            return Fit(
                "ram_overflow",
                f"model {model_bytes} B + arena {arena_bytes} B = {model_bytes + arena_bytes} B > "
                f"internal heap {board.internal_heap_bytes} B{est} on {board.name}",
            )
        used = model_bytes + arena_bytes
    else:
        used = arena_bytes
    return Fit("ok", f"uses {used} B of {board.internal_heap_bytes} B internal heap{est} on {board.name}")
