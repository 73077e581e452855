"""The virtual board's memory: its internal heap and its model partition, at the board profile's sizes.

The heap is a budget, not an allocator: it counts the bytes the firmware would hold (the
buffers it keeps across model loads, the model's RAM copy, the arena) against the profile's
``internal_heap_bytes``, and a block against ``largest_heap_block_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinyhil.models.boards import Board
from tinyhil.plugins.bench.link.protocol import ProtocolError

ARENA_SLACK = 64  # model_runner.cc's kArenaSlack: what arena auto leaves of the largest block
PLACES = ("flash", "ram")  # where the model runs from: in place in the partition, or a copy on the heap


class DoesNotFit(Exception):
    """A model, copy or arena the board's memory cannot hold; the message is the firmware's error text."""


@dataclass
class ModelPartition:
    """The model partition: a file the host writes as esptool would, of the profile's size.

    Args:
        path: The file (absent until the host first writes it).
        size_bytes: The partition's size.
    """

    path: Path
    size_bytes: int

    def read(self, n_bytes: int) -> bytes:
        """The partition's first ``n_bytes`` (fewer when the file is shorter, none when absent).

        Raises:
            DoesNotFit: ``n_bytes`` is more than the partition holds.
        """
        if n_bytes > self.size_bytes:
            raise DoesNotFit(f"model: {n_bytes} bytes > partition {self.size_bytes}")
        return self.path.read_bytes()[:n_bytes] if self.path.exists() else b""


@dataclass
class WindowsPartition:
    """The windows partition: a file the host writes as esptool would; erased bytes read 0xff.

    Args:
        path: The file (absent until the host first writes it).
        size_bytes: The partition's size (0: the board has none).
    """

    path: Path
    size_bytes: int

    def read(self, offset: int, n_bytes: int) -> bytes:
        """``n_bytes`` from ``offset``, as the firmware's ``ReadWindows`` reads them.

        Raises:
            DoesNotFit: with the firmware's words, for no partition or bytes past its end.
        """
        if self.size_bytes == 0:
            raise DoesNotFit("windows: the partition table has no windows partition")
        if offset > self.size_bytes or n_bytes > self.size_bytes - offset:
            raise DoesNotFit(f"windows: bytes {offset}..{offset + n_bytes} are past the partition's {self.size_bytes}")
        got = b""
        if self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(offset)
                got = f.read(n_bytes)
        return got + b"\xff" * (n_bytes - len(got))


class HeapBudget:
    """The internal heap as the firmware spends it.

    Args:
        board: Board profile (``internal_heap_bytes``, ``largest_heap_block_bytes``).
    """

    def __init__(self, board: Board):
        self.total_bytes = board.internal_heap_bytes
        self.block_limit_bytes = board.largest_heap_block_bytes
        self.used_bytes = 0
        # the PSRAM heap of a board that has one: the arena and the model copy go there when the
        # profile says so (the firmware's CONFIG_TINYHIL_ARENA_IN_PSRAM / _MODEL_COPY_IN_PSRAM)
        self.psram_total_bytes = board.psram_heap_bytes
        self.psram_block_limit_bytes = board.psram_largest_block_bytes
        self.psram_used_bytes = 0
        self.arena_in_psram = board.arena_location == "psram"
        self.copy_in_psram = board.model_copy_location == "psram"
        # buffers the firmware keeps on its heap across model loads: EEMBC's db load, the last db model
        self.held: dict[str, int] = {"db load": 0, "db model": 0}

    @property
    def free_bytes(self) -> int:
        return self.total_bytes - self.used_bytes

    @property
    def largest_block_bytes(self) -> int:
        """As info% and the firmware host build count it: one block is at most the profile's largest."""
        return min(self.block_limit_bytes, self.free_bytes)

    def hold(self, what: str, n_bytes: int) -> None:
        """The firmware frees the previous buffer of this kind and keeps the new one on its heap."""
        self.used_bytes += n_bytes - self.held[what]
        self.held[what] = n_bytes

    def reserve_db_load(self, n_bytes: int) -> None:
        """Frees the previous ``db load`` buffer and holds ``n_bytes`` for the new one.

        Raises:
            ProtocolError: the bytes do not fit in the largest free block.
        """
        self.hold("db load", 0)
        largest = self.largest_block_bytes
        if n_bytes > largest:
            raise ProtocolError(f"db load: {n_bytes} bytes do not fit: largest free block {largest}")
        self.hold("db load", n_bytes)

    def free_model(self) -> None:
        """The previous model's copy and arena are freed; the held buffers stay."""
        self.used_bytes = sum(self.held.values())
        self.psram_used_bytes = 0

    def place_model(self, model_bytes: int, place: str, arena: str) -> int:
        """Takes the model's RAM copy (``place`` ram) and sizes its arena; returns the arena's bytes.

        The arena is not taken here: :meth:`take` it once the model has loaded.

        Args:
            model_bytes: The model's size.
            place: One of :data:`PLACES`.
            arena: ``auto`` (the largest block left, less :data:`ARENA_SLACK`, 16 B aligned) or bytes.

        Raises:
            DoesNotFit: the copy or the arena is larger than the largest free block.
        """
        heaps = {
            False: [self.total_bytes, self.block_limit_bytes],
            True: [self.psram_total_bytes, self.psram_block_limit_bytes],
        }
        if place == "ram":
            free, largest = heaps[self.copy_in_psram]
            if model_bytes > min(largest, free):
                raise DoesNotFit(
                    f"ram: cannot allocate {model_bytes} bytes for the model copy; "
                    f"largest free block {min(largest, free)}"
                )
            if self.copy_in_psram:
                self.psram_used_bytes += model_bytes
            else:
                self.used_bytes += model_bytes
            heaps[self.copy_in_psram][0] -= model_bytes
        free, largest = heaps[self.arena_in_psram]
        largest = min(largest, free)
        # auto: as the firmware (model_runner.cc), the largest block less its 64 B of allocator slack, 16 B aligned
        arena_bytes = max(0, largest - ARENA_SLACK) & ~15 if arena == "auto" else int(arena)
        if arena_bytes > largest:
            raise DoesNotFit(f"arena: cannot allocate {arena_bytes} bytes; largest free block {largest}")
        return arena_bytes

    def take(self, n_bytes: int) -> None:
        """Counts ``n_bytes`` more as used (the loaded model's arena), on the arena's heap."""
        if self.arena_in_psram:
            self.psram_used_bytes += n_bytes
        else:
            self.used_bytes += n_bytes
