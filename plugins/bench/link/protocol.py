"""The Python side of the tinyhil serial protocol (``firmware/PROTOCOL.md``, version 1).

Shared by the host (:mod:`tinyhil.plugins.bench.link.device`) and the virtual board
(:mod:`tinyhil.plugins.bench.boards.virtual`), and checked against the same vectors as the
firmware's C++ core (``firmware/components/tinyhil_core/test/vectors.tsv``): the limits of a
command line, how commands are split, formatted and assembled at ``%``, the CRC, the
``m-results`` and ``m-info`` messages, model ids, and which form a command takes when tinyhil
and EEMBC / MLPerf Tiny share its name (``db``: :func:`is_eembc_db`; ``infer``:
:func:`resolve_infer`). EEMBC's ``db`` buffer is :mod:`tinyhil.plugins.bench.link.eembc_db`;
the latency statistics are :mod:`tinyhil.plugins.bench.measure.latency`.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

PROTOCOL_VERSION = 1
MAX_LINE = 127
MAX_NAME = 15
MAX_ARGS = 6
MAX_MODEL_ID = 31
MAX_TIMED_RUNS = 1000  # tinyhil's infer keeps one lap per run
EEMBC_DEFAULT_WARMUP = 10  # EEMBC's infer without W
MAX_WARMUP_RUNS = 1000  # tinyhil's and EEMBC's infer W (tinyhil_core.h: every answer within minutes)
MAX_EEMBC_RUNS = 1_000_000  # EEMBC's infer N
MAX_IDLE_MS = 60_000
DEFAULT_MODEL_ID = "none"

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
    """Splits the text of one command (without ``%``), with the firmware's limits.

    Arguments have no limit of their own, only the line's: EEMBC hosts send hex chunks
    (``db 0a1b…``) of up to 124 digits.
    """
    if len(text) > MAX_LINE:
        raise ProtocolError(f"line too long (more than {MAX_LINE} characters)")
    tokens = text.split()
    if not tokens:
        raise ProtocolError("empty command")
    if len(tokens[0]) > MAX_NAME:
        raise ProtocolError(f"command name longer than {MAX_NAME} characters")
    if len(tokens) - 1 > MAX_ARGS:
        raise ProtocolError(f"too many arguments ({MAX_ARGS} at most)")
    return Command(tokens[0], tuple(tokens[1:]))


def parse_decimal(text: str) -> int | None:
    """A decimal of ASCII digits only (no sign, no blanks) up to 2**32 - 1, as the firmware reads it; else None."""
    if not text or not all("0" <= ch <= "9" for ch in text):
        return None
    value = int(text)
    return value if value <= 0xFFFFFFFF else None


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


def format_results(values, dtype: str) -> str:
    """The ``m-results-[…]`` line for an output tensor."""
    if dtype.startswith("int") or dtype.startswith("uint"):
        body = ",".join(str(int(v)) for v in values)
    else:
        body = ",".join(_g9(float(v)) for v in values)
    return f"m-results-[{body}]"


def format_dequantized_results(values, scale: float, zero_point: int) -> str:
    """EEMBC's ``m-results-[…]``: quantized values as floats, ``(q - zero_point) * scale`` in float32."""
    import numpy as np

    q = np.asarray(values, dtype=np.int64) - int(zero_point)
    real = q.astype(np.float32) * np.float32(scale)
    return "m-results-[" + ",".join(f"{float(v):.9g}" for v in real) + "]"


@dataclass(frozen=True)
class InferRequest:
    """What ``infer`` asks for: ``form`` is ``"tinyhil"`` or ``"eembc"`` (the reply form)."""

    form: str
    runs: int
    warmup: int


INPUT_SOURCES = ("none", "tinyhil", "eembc")  # how the last input arrived: nothing, db input, db load + hex


def resolve_infer(args: tuple[str, ...] | list[str], last_input: str) -> InferRequest:
    """Reads ``infer [N [W]]`` as the firmware does (``ResolveInfer`` in the C++ core).

    Args:
        args: The arguments after ``infer``.
        last_input: One of :data:`INPUT_SOURCES`.

    Returns:
        EEMBC's form for no or one argument (W defaults to 10), and for two after an EEMBC
        ``db load``; tinyhil's form for two otherwise.

    Raises:
        ProtocolError: With the error text of the form chosen.
    """
    if not (len(args) < 2 or (len(args) == 2 and last_input == "eembc")):
        n = parse_decimal(args[0]) if len(args) == 2 else None
        w = parse_decimal(args[1]) if len(args) == 2 else None
        if n is None or w is None or not 1 <= n <= MAX_TIMED_RUNS or w > MAX_WARMUP_RUNS:
            raise ProtocolError(
                f"bad arguments for infer: expected infer <n 1..{MAX_TIMED_RUNS}> <warm-up runs 0..{MAX_WARMUP_RUNS}>"
            )
        return InferRequest("tinyhil", n, w)
    runs = parse_decimal(args[0]) if args else 1
    if not runs:
        raise ProtocolError("Inference iterations must be >0")
    if runs > MAX_EEMBC_RUNS:
        raise ProtocolError(f"Inference iterations must be <={MAX_EEMBC_RUNS}")
    warmup = parse_decimal(args[1]) if len(args) == 2 else EEMBC_DEFAULT_WARMUP
    if warmup is None:
        raise ProtocolError("Inference warmup must be >=0")
    if warmup > MAX_WARMUP_RUNS:
        raise ProtocolError(f"Inference warmup must be <={MAX_WARMUP_RUNS}")
    return InferRequest("eembc", runs, warmup)


_MODEL_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_MODEL_ID}}}")


def valid_model_id(model_id: str) -> bool:
    """Whether ``model_id`` may stand in ``m-model-[…]``: 1 to 31 of ``A-Z a-z 0-9 . _ -``."""
    return _MODEL_ID.fullmatch(model_id) is not None


def is_eembc_db(args: tuple[str, ...] | list[str]) -> bool:
    """Whether ``db`` with these arguments is an EEMBC form: anything but tinyhil's ``db input|model …``."""
    return not args or args[0] not in ("input", "model")


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
    "kernels",
    "chip",
    "mac",
    "cpu-mhz",
    "pointer-bits",
    "flash-bytes",
    "flash-mode",
    "psram-bytes",
    "heap-free",
    "heap-largest",
    "reset-reason",
    "marker-gpio",
    "marker-mode",
    "model-partition-bytes",
    "windows-partition-bytes",
    "rx-buffer-bytes",
    "simulated",
    "host-build",
)
