"""Corrupted models with a matching CRC for a board, and a driver that uploads them and watches for panics.

A corruption changes one to three bytes of a real .tflite, nine times in ten among the bytes that
are not a buffer's data (the tables and vectors of indices, shapes and offsets TFLM reads), with a
random byte, a bit flip, a small step or 0xff. Each is sent as ``db model`` with its own CRC and
loaded with ``model upload … auto ram``, so the board's flatbuffers verifier and whatever follows it
see it. The verifier refuses most (``tflm: not a valid TFLite flatbuffer``); the others are the ones
that count: a board must answer each with a load or an ``e-[…]`` line, never a panic.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

NOT_A_MODEL = "e-[tflm: not a valid TFLite flatbuffer]"


def data_ranges(model: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of each buffer's data in ``model`` (the weights: corrupting them is harmless)."""
    from tflite_micro.python.tflite_micro import runtime

    fb = runtime.schema_fb
    root = fb.Model.GetRootAs(bytearray(model), 0)
    out = []
    for i in range(root.BuffersLength()):
        tab = root.Buffers(i)._tab
        o = tab.Offset(4)
        if o:
            start = tab.Vector(o)
            out.append((start, start + tab.VectorLen(o)))
    return out


def corrupted(model: bytes, rng: random.Random, structure: list[int]) -> bytes:
    """``model`` with one to three bytes changed (``structure``: the offsets outside buffer data)."""
    data = bytearray(model)
    for _ in range(rng.choice([1, 1, 2, 3])):
        at = rng.choice(structure) if structure and rng.random() < 0.9 else rng.randrange(8, len(data))
        kind = rng.random()
        if kind < 0.4:
            data[at] = rng.randrange(256)
        elif kind < 0.7:
            data[at] ^= 1 << rng.randrange(8)
        elif kind < 0.9:
            data[at] = (data[at] + rng.choice([-2, -1, 1, 2, 16])) & 0xFF
        else:
            data[at] = 0xFF
    return bytes(data)


@dataclass
class ModelFuzzReport:
    sent: int = 0
    not_a_model: int = 0  # refused by the verifier
    refused: dict[str, int] = field(default_factory=dict)  # other e-[…] answers, by text
    loaded: int = 0
    panics: list[tuple[int, list[str]]] = field(default_factory=list)  # (try, the lines before the banner)
    panic_models: list[bytes] = field(default_factory=list)  # the bytes of each, to reproduce it


def _command(link, command: str, payload: bytes | None, timeout_s: float) -> tuple[list[str], bool]:
    """The lines up to ``m-ready`` and whether a boot banner came (a panic: the lines before the banner,
    read on to its ``m-ready``)."""
    link.write(command.encode() + b"%")
    lines, booted, before = [], False, []
    while True:
        line = link.read_line(timeout_s).strip()
        if line == "m-boot-tinyhil" and not booted:
            booted = True
            before = list(lines)
        elif line.startswith("m-db-ready-") and payload is not None:
            link.write(payload)
        elif line == "m-ready":
            return (before if booted else lines), booted
        lines.append(line)


def drive_models(link, models: list[bytes], tries: int, seed: int, timeout_s: float = 30.0) -> ModelFuzzReport:
    """Uploads corrupted copies of ``models`` until ``tries`` of them passed the verifier.

    Args:
        link: The board's serial link (``write``, ``read_line``).
        models: Real .tflite files to corrupt.
        tries: How many the verifier must let through.
        seed: Makes the corruptions reproducible.
    """
    rng = random.Random(seed)
    structure = []
    for m in models:
        inside = set()
        for start, end in data_ranges(m):
            inside.update(range(start, end))
        structure.append([i for i in range(8, len(m)) if i not in inside])
    report = ModelFuzzReport()
    while report.sent - report.not_a_model < tries:
        k = rng.randrange(len(models))
        bad = corrupted(models[k], rng, structure[k])
        crc = f"{zlib.crc32(bad) & 0xFFFFFFFF:08x}"
        report.sent += 1
        lines, booted = _command(link, f"db model {len(bad)} {crc}", bad, timeout_s)
        if not booted:
            lines, booted = _command(link, f"model upload {len(bad)} {crc} auto ram", None, timeout_s)
        errors = [x for x in lines if x.startswith("e-[")]
        if booted:
            report.panics.append((report.sent, lines[-12:]))
            report.panic_models.append(bad)
        elif errors == [NOT_A_MODEL]:
            report.not_a_model += 1
        elif errors:
            report.refused[errors[0]] = report.refused.get(errors[0], 0) + 1
        else:
            report.loaded += 1
    return report
