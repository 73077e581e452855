"""The protocol's test vectors, ``firmware/components/tinyhil_core/test/vectors.tsv``.

The file both sides of the protocol are tested against: the Python side in
``test_protocol.py``, the C++ core there and in ``test_firmware_host.py``.
"""

from __future__ import annotations

from pathlib import Path

from tinyhil import resources

VECTORS = resources.firmware("components", "tinyhil_core", "test", "vectors.tsv")


def load_vectors(path: Path = VECTORS) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of every vector."""
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line and not line.startswith("#"):
            out.append((number, line.split("\t")))
    return out
