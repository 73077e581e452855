"""The Python side of the tinyhil serial protocol (``firmware/PROTOCOL.md``, version 1).

Shared by the host (:mod:`plugins.bench.device`) and the virtual board
(:mod:`plugins.bench.virtual_board`). Checked against ``firmware/components/tinyhil_core/test/vectors.tsv``, the
same vectors the firmware's C++ core is tested with.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

PROTOCOL_VERSION = 1
MAX_LINE = 127
MAX_NAME = 15
MAX_ARG = 31
MAX_ARGS = 6
VECTORS = Path(__file__).resolve().parents[2] / "firmware" / "components" / "tinyhil_core" / "test" / "vectors.tsv"

READY = "m-ready"
BOOT = "m-boot-tinyhil"
ERROR_RE = re.compile(r"^e-\[(.*)\]$")


def crc32(data: bytes) -> int:
    """CRC-32 as the firmware computes it (IEEE 802.3, zlib's)."""
    return zlib.crc32(data) & 0xFFFFFFFF


class ProtocolError(ValueError):
    """A command line the protocol rejects; the text is what the device puts in ``e-[…]``."""


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]


def parse_command(text: str) -> Command:
    """Splits the text of one command (without ``%``), with the firmware's limits."""
    tokens = text.split()
    if not tokens:
        raise ProtocolError("empty command")
    if len(tokens[0]) > MAX_NAME:
        raise ProtocolError(f"command name longer than {MAX_NAME} characters")
    if len(tokens) - 1 > MAX_ARGS:
        raise ProtocolError(f"too many arguments ({MAX_ARGS} at most)")
    if any(len(t) > MAX_ARG for t in tokens[1:]):
        raise ProtocolError(f"argument longer than {MAX_ARG} characters")
    return Command(tokens[0], tuple(tokens[1:]))


def format_command(name: str, *args) -> bytes:
    """The bytes the host sends for one command."""
    text = " ".join([name, *(str(a) for a in args)])
    if len(text) > MAX_LINE:
        raise ProtocolError(f"line too long ({len(text)} > {MAX_LINE})")
    parse_command(text)
    return (text + "%").encode("ascii")


class LineAssembler:
    """Collects bytes into commands at ``%``, as the firmware does."""

    def __init__(self):
        self._buf: list[str] = []
        self._overflow = False

    def feed(self, ch: str) -> tuple[str, str] | None:
        """Returns ``("command", text)`` or ``("too_long", "")`` at ``%``, else None."""
        if ch == "%":
            event = ("too_long", "") if self._overflow else ("command", "".join(self._buf))
            self._buf, self._overflow = [], False
            return event
        if not self._buf and ch in "\r\n":
            return None
        if len(self._buf) >= MAX_LINE:
            self._overflow = True
            return None
        self._buf.append(ch)
        return None


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    runs: int


def latency_stats(cycles: list[int], cpu_mhz: float) -> LatencyStats:
    """Median, mean, sample std (n - 1), min, max in ms, as PROTOCOL.md defines them."""
    if not cycles or cpu_mhz <= 0:
        raise ValueError("latency needs at least one cycle count and a positive clock")
    per_ms = cpu_mhz * 1000.0
    ms = sorted(c / per_ms for c in cycles)
    n = len(ms)
    mean = sum(ms) / n
    median = ms[n // 2] if n % 2 else (ms[n // 2 - 1] + ms[n // 2]) / 2
    std = math.sqrt(sum((v - mean) ** 2 for v in ms) / (n - 1)) if n > 1 else 0.0
    return LatencyStats(median, mean, std, ms[0], ms[-1], n)


def format_results(values, dtype: str) -> str:
    """The ``m-results-[…]`` line for an output tensor."""
    if dtype.startswith("int") or dtype.startswith("uint"):
        body = ",".join(str(int(v)) for v in values)
    else:
        body = ",".join(_g9(float(v)) for v in values)
    return f"m-results-[{body}]"


def _g9(v: float) -> str:
    import numpy as np

    return f"{float(np.float32(v)):.9g}"


def parse_results(line: str) -> list[float]:
    m = re.fullmatch(r"m-results-\[(.*)\]", line.strip())
    if not m:
        raise ValueError(f"not a results line: {line!r}")
    return [float(v) for v in m.group(1).split(",")] if m.group(1) else []


@dataclass
class Response:
    """One command's response: protocol messages, an error if any, and log lines."""

    messages: list[str]
    error: str | None
    log: list[str]

    def values(self, prefix: str) -> list[str]:
        """Suffixes of the messages that start with ``m-<prefix>-``."""
        p = f"m-{prefix}-"
        return [m[len(p) :] for m in self.messages if m.startswith(p)]

    def value(self, prefix: str) -> str | None:
        vals = self.values(prefix)
        return vals[-1] if vals else None


def parse_info(messages: list[str]) -> dict[str, str]:
    """``m-info-<key>-<value>`` lines to a dict (keys may contain dashes: known keys first)."""
    keys = sorted(INFO_KEYS, key=len, reverse=True)
    info = {}
    for m in messages:
        if not m.startswith("m-info-"):
            continue
        rest = m[len("m-info-") :]
        key = next((k for k in keys if rest.startswith(k + "-")), rest.split("-", 1)[0])
        info[key] = rest[len(key) + 1 :]
    return info


INFO_KEYS = (
    "fw",
    "fw-sha256",
    "idf",
    "tflm",
    "esp-nn",
    "chip",
    "cpu-mhz",
    "flash-bytes",
    "flash-mode",
    "psram-bytes",
    "heap-free",
    "heap-largest",
    "reset-reason",
    "marker-gpio",
    "model-partition-bytes",
    "simulated",
)


def load_vectors(path: Path = VECTORS) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of every vector."""
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line and not line.startswith("#"):
            out.append((number, line.split("\t")))
    return out
