"""Board profiles (data files in ``models/data/boards`` or a user's JSON file) and the memory-fit verdict.

A profile is checked against :data:`SCHEMA` when it is used, not before: a broken file
stops only the runs that name it, with the file and the key in the message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from tinyhil import resources
from tinyhil.models.errors import TinyhilError, UnknownNameError

BOARDS_DIR = resources.data("boards")
# key -> (type, required); ints must be positive
SCHEMA: dict[str, tuple[type, bool]] = {
    "name": (str, True),
    "description": (str, True),
    "chip": (str, True),
    "cpu_mhz": (int, True),
    "flash_bytes": (int, True),
    "app_partition_bytes": (int, True),
    "model_partition_bytes": (int, True),
    "windows_partition_bytes": (int, False),
    "model_location": (str, True),
    "internal_heap_bytes": (int, True),
    "largest_heap_block_bytes": (int, True),
    "budget_is_estimate": (bool, True),
    "budget_source": (str, True),
    "simulation": (dict, False),
    "kernels": (str, False),
    "psram_bytes": (int, False),
    "psram_heap_bytes": (int, False),
    "psram_largest_block_bytes": (int, False),
    "arena_location": (str, False),
    "model_copy_location": (str, False),
}
MODEL_LOCATIONS = ("flash", "ram")
# Where the arena, and the model's copy when model_location is ram, are allocated: the internal
# heap, or the PSRAM heap of a board that has one (the firmware's CONFIG_TINYHIL_ARENA_IN_PSRAM and
# CONFIG_TINYHIL_MODEL_COPY_IN_PSRAM).
HEAP_LOCATIONS = ("internal", "psram")
HEAP_WORDS = {"internal": "internal RAM", "psram": "PSRAM"}
# 0: the board has no such partition, or no PSRAM
MAY_BE_ZERO = {"windows_partition_bytes", "psram_bytes", "psram_heap_bytes", "psram_largest_block_bytes"}
# The kernel library a board's firmware runs: ESP-NN's optimised kernels, as esp-tflite-micro
# builds them for every Espressif chip, or TFLM's reference kernels (the firmware built for
# Linux without --esp-nn-source). Verdicts can differ between them (plugins/firmware_tools/ops.py).
KERNEL_LIBRARIES = ("esp-nn", "reference")
# A board's name names folders (its expected verdicts live in <expectations-dir>/<name>/).
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")


class BoardError(TinyhilError):
    """A board profile file that is missing, not JSON, or not of the schema."""


@dataclass(frozen=True)
class Board:
    """Memory budgets of one board.

    Attributes:
        model_location: ``flash`` (mapped from the model partition) or ``ram`` (copied to heap).
        internal_heap_bytes: Free internal heap at boot, for the arena (and the model copy in ``ram``).
        largest_heap_block_bytes: Largest contiguous block: bounds each single allocation.
        budget_is_estimate: True until a board's boot report replaced the heap figures.
        simulation: Timing and power model of the virtual board (simulated figures only).
        windows_partition_bytes: The ``windows`` partition, where the host writes the test
            windows once a session (0: none; the windows then travel with every case).
        kernels: The kernel library its firmware runs, one of :data:`KERNEL_LIBRARIES`
            (``esp-nn`` when the profile does not say).
        profile_kernels: The profile's own kernel library; :meth:`with_kernels` changes ``kernels`` only.
        psram_bytes: The PSRAM the module carries (0: none), as the boot report's psram-bytes.
        psram_heap_bytes: Free PSRAM heap at boot (0: none).
        psram_largest_block_bytes: Largest contiguous PSRAM block.
        arena_location: ``internal`` or ``psram``: the heap the arena comes from.
        model_copy_location: ``internal`` or ``psram``: the heap of the model's copy (``model_location`` ram).
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
    kernels: str = "esp-nn"
    windows_partition_bytes: int = 0
    source: str = ""  # the file the profile was read from
    profile_kernels: str = "esp-nn"
    psram_bytes: int = 0
    psram_heap_bytes: int = 0
    psram_largest_block_bytes: int = 0
    arena_location: str = "internal"
    model_copy_location: str = "internal"

    @property
    def expectations_name(self) -> str:
        """The folder of this board's expected verdicts: its name, and the kernel library when the
        run's is not the profile's (``esp32-wroom-32+reference-kernels``)."""
        return self.name if self.kernels == self.profile_kernels else f"{self.name}+{self.kernels}-kernels"

    def with_kernels(self, kernels: str) -> Board:
        """The same board running another kernel library (the firmware host build without ESP-NN)."""
        if kernels not in KERNEL_LIBRARIES:
            raise BoardError(f"kernel library must be one of {', '.join(KERNEL_LIBRARIES)}, got {kernels!r}")
        return replace(self, kernels=kernels)

    def with_measured_heap(self, free_heap: int, largest_block: int) -> Board:
        """The same board with heap figures from a real boot report."""
        return replace(
            self,
            internal_heap_bytes=free_heap,
            largest_heap_block_bytes=largest_block,
            budget_is_estimate=False,
            budget_source="measured by the firmware's boot report",
        )


def board_names() -> list[str]:
    """The built-in profiles, by file name."""
    return sorted(f.stem for f in BOARDS_DIR.glob("*.json"))


def _check(doc: object, path: Path) -> None:
    fix = f"see {BOARDS_DIR / 'esp32-wroom-32.json'} for a complete profile"
    if not isinstance(doc, dict):
        raise BoardError(f"board profile {path}: expected a JSON object; {fix}")
    unknown = sorted(set(doc) - set(SCHEMA))
    if unknown:
        raise BoardError(f"board profile {path}: unknown key {unknown[0]!r}; known keys: {', '.join(SCHEMA)}")
    for key, (kind, required) in SCHEMA.items():
        if key not in doc:
            if required:
                raise BoardError(f"board profile {path}: missing key {key!r} ({kind.__name__}); {fix}")
            continue
        value = doc[key]
        # bool is an int to Python; a budget written as true is still wrong
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BoardError(
                f"board profile {path}: {key!r} must be {kind.__name__}, got {type(value).__name__} {value!r}"
            )
        if kind is int and (value < 0 if key in MAY_BE_ZERO else value <= 0):
            raise BoardError(
                f"board profile {path}: {key!r} must be {'0 or more' if key in MAY_BE_ZERO else 'positive'}, got {value}"
            )
    name = doc["name"]
    if not NAME_PATTERN.fullmatch(name) or name in (".", ".."):
        raise BoardError(
            f"board profile {path}: 'name' must be an identifier of letters, digits, '-', '_' and '.' "
            f"(not '.' or '..': it names a folder), got {name!r}"
        )
    if doc["largest_heap_block_bytes"] > doc["internal_heap_bytes"]:
        raise BoardError(
            f"board profile {path}: 'largest_heap_block_bytes' {doc['largest_heap_block_bytes']} is larger than "
            f"'internal_heap_bytes' {doc['internal_heap_bytes']}: the largest block is part of the heap"
        )
    if doc.get("kernels", "esp-nn") not in KERNEL_LIBRARIES:
        raise BoardError(
            f"board profile {path}: 'kernels' must be one of {', '.join(KERNEL_LIBRARIES)}, got {doc['kernels']!r}"
        )
    if doc["model_location"] not in MODEL_LOCATIONS:
        raise BoardError(
            f"board profile {path}: 'model_location' must be one of {', '.join(MODEL_LOCATIONS)}, "
            f"got {doc['model_location']!r}"
        )
    psram, heap, largest = (doc.get(k, 0) for k in ("psram_bytes", "psram_heap_bytes", "psram_largest_block_bytes"))
    if heap > psram or largest > heap:
        raise BoardError(
            f"board profile {path}: PSRAM figures out of order: 'psram_largest_block_bytes' {largest} <= "
            f"'psram_heap_bytes' {heap} <= 'psram_bytes' {psram} (the heap is part of the PSRAM)"
        )
    for key in ("arena_location", "model_copy_location"):
        where = doc.get(key, "internal")
        if where not in HEAP_LOCATIONS:
            raise BoardError(f"board profile {path}: {key!r} must be one of {', '.join(HEAP_LOCATIONS)}, got {where!r}")
        if where == "psram" and heap == 0:
            raise BoardError(
                f"board profile {path}: {key!r} is psram but the board has no PSRAM heap "
                f"('psram_heap_bytes' {heap}); give the PSRAM figures or say internal"
            )


def load_board(path: Path) -> Board:
    """Reads and checks one profile file.

    Raises:
        BoardError: naming the file and the key that is missing, unknown or of the wrong type.
    """
    path = Path(path).expanduser()
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BoardError(
            f"board profile {path} does not exist; give a JSON file or one of: {', '.join(board_names())}"
        ) from None
    except (OSError, ValueError) as e:
        raise BoardError(f"board profile {path} is not readable JSON ({e})") from None
    _check(doc, path)
    return Board(**doc, source=str(path), profile_kernels=doc.get("kernels", "esp-nn"))


def get_board(name: str) -> Board:
    """A built-in profile by name, or a profile file by path (``*.json``).

    Raises:
        UnknownNameError: for an unknown name.
        BoardError: for a broken file.
    """
    if name.endswith(".json") or "/" in name:
        return load_board(Path(name))
    path = BOARDS_DIR / f"{name}.json"
    if not path.is_file():
        raise UnknownNameError("board", name, board_names())
    return load_board(path)


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
    """Checks a model and its arena against a board's budgets; the reason gives the numbers.

    On a board with PSRAM the arena and the model's RAM copy each come from the heap the profile
    names (``arena_location``, ``model_copy_location``), and the reason says where they run.
    """
    flash = check_flash(board, model_bytes)
    if flash is not None:
        return flash
    if board.psram_bytes == 0:
        return _check_internal(board, model_bytes, arena_bytes)
    return _check_with_psram(board, model_bytes, arena_bytes)


def _check_internal(board: Board, model_bytes: int, arena_bytes: int) -> Fit:
    """A board without PSRAM: everything on the internal heap (the ESP32-WROOM-32's verdicts)."""
    est = " (estimated budget)" if board.budget_is_estimate else ""
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


def _check_with_psram(board: Board, model_bytes: int, arena_bytes: int) -> Fit:
    """A board with PSRAM: the arena and the model copy each on the heap the profile says."""
    est = " (estimated budget)" if board.budget_is_estimate else ""
    heaps = {
        "internal": (board.internal_heap_bytes, board.largest_heap_block_bytes, "internal heap"),
        "psram": (board.psram_heap_bytes, board.psram_largest_block_bytes, "PSRAM heap"),
    }
    _, largest, heap_name = heaps[board.arena_location]
    where = HEAP_WORDS[board.arena_location]
    if arena_bytes > largest:
        return Fit(
            "arena_overflow",
            f"arena {arena_bytes} B in {where} > largest {heap_name} block {largest} B{est} on {board.name}",
        )
    used = {"internal": 0, "psram": 0}
    used[board.arena_location] += arena_bytes
    placed = f"arena in {where}"
    if board.model_location == "ram":
        copy_at = board.model_copy_location
        total, largest, heap_name = heaps[copy_at]
        if model_bytes > largest:
            return Fit(
                "ram_overflow",
                f"model copy {model_bytes} B in {HEAP_WORDS[copy_at]} > largest {heap_name} block {largest} B{est} "
                f"on {board.name}",
            )
        used[copy_at] += model_bytes
        if used[copy_at] > total:
            return Fit(
                "ram_overflow",
                f"model {model_bytes} B + arena {arena_bytes} B = {used[copy_at]} B in {HEAP_WORDS[copy_at]} > "
                f"{heap_name} {total} B{est} on {board.name}",
            )
        placed += f", model copy in {HEAP_WORDS[copy_at]}"
    else:
        placed += ", model mapped from flash"
    return Fit(
        "ok",
        f"uses {used['internal']} B of {board.internal_heap_bytes} B internal heap and {used['psram']} B of "
        f"{board.psram_heap_bytes} B PSRAM heap{est} on {board.name}: {placed}",
    )
