"""The board's ``windows`` partition: the test windows, written once a session, read by ``classify windows``.

Every case of a study classifies windows of the same test split, and most share their input
bytes (``benchmarks/window_sharing.py`` measures it). So the windows a case would send over the
UART are written once, as float32, into a data partition (esptool, compressed, skipped when the
board already holds them); the firmware converts each to the loaded model's input type as the
host does (:func:`tinyhil.models.tflm.quantize`) and classifies it by index. Layout
(little-endian), the firmware's ``windows.h`` reads the same::

    0   magic   b"TNYHLWIN"
    8   u32     version (1)
    12  u32     windows stored
    16  u32     float32 values per window
    20  u32     0
    24  32 B    sha256 of the payload
    56  8 B     0
    64  payload windows x values float32

The windows are stored in the order the agreement test sends them (a seeded permutation of the
split), so the first ``count`` windows of that order are on the board.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"TNYHLWIN"
VERSION = 1
HEADER = struct.Struct("<8sIIII32s8x")  # 64 bytes
assert HEADER.size == 64


def windows_file(flash_file: Path) -> Path:
    """Where a virtual board keeps its windows partition: beside its model partition's file (both
    virtual boards read it there, and :class:`~tinyhil.plugins.bench.link.delivery.FlashFileDelivery`
    writes it there as esptool would)."""
    return Path(flash_file).with_name("windows-partition.bin")


@dataclass(frozen=True)
class WindowImage:
    """A partition image: the header and ``count`` windows of ``values`` float32 each."""

    data: bytes
    count: int
    values: int
    sha256: str  # of the payload, as the header and ``windows%`` give it

    @property
    def payload_bytes(self) -> int:
        return self.count * self.values * 4


def capacity(partition_bytes: int, values: int) -> int:
    """How many windows of ``values`` float32 a partition of ``partition_bytes`` holds."""
    return max(0, (partition_bytes - HEADER.size) // (values * 4))


def build_image(windows: np.ndarray, partition_bytes: int) -> WindowImage:
    """The image of as many of ``windows`` (in order) as the partition holds.

    Args:
        windows: Float windows, ``(n, ...)``; stored as float32.
        partition_bytes: The board's windows partition size.
    """
    flat = np.ascontiguousarray(windows, dtype="<f4").reshape(len(windows), -1)
    count = min(len(flat), capacity(partition_bytes, flat.shape[1]))
    payload = flat[:count].tobytes()
    digest = hashlib.sha256(payload).digest()
    header = HEADER.pack(MAGIC, VERSION, count, flat.shape[1], 0, digest)
    return WindowImage(header + payload, count, flat.shape[1], digest.hex())


@dataclass(frozen=True)
class StoredWindows:
    """What a board's ``windows%`` says it holds (count 0: nothing, or not this layout)."""

    count: int
    values: int
    sha256: str

    def holds(self, image: WindowImage) -> bool:
        return (self.count, self.values, self.sha256) == (image.count, image.values, image.sha256)


def parse_header(data: bytes) -> StoredWindows:
    """The header of a partition's first bytes; count 0 for erased flash or another layout."""
    if len(data) < HEADER.size:
        return StoredWindows(0, 0, "")
    magic, version, count, values, _, digest = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        return StoredWindows(0, 0, "")
    return StoredWindows(count, values, digest.hex())
