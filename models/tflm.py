"""The host TFLM runtime (``tflite-micro``'s Python interpreter): load, arena, run.

It runs the same TFLM kernels (reference kernels, not ESP-NN) and the same arena planner
as the firmware, so it tells op support, the exact minimum arena and the outputs. TFLM
reports why it refuses a model on the C-level stderr; those words become the reason.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyhil.models.cstderr import capture_c_stderr
from tinyhil.models.inspection import check_flatbuffer

ARENA_CEILING = 16 << 20  # larger than any MCU heap: failing here is not an arena problem
_ALLOC_PATTERNS = re.compile(r"Failed to (resize buffer|allocate|initialize)|arena|Requested: \d+", re.I)
_UNSUPPORTED_PATTERNS = re.compile(
    r"not supported|Didn't find op|unsupported|failed to prepare|not currently supported|Only .* supported", re.I
)


@dataclass
class LoadResult:
    """The outcome of creating an interpreter at one arena size."""

    interpreter: object | None
    tflm_message: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.interpreter is not None


class RuntimeUnavailable(RuntimeError):
    """The installed tflite-micro cannot load its native runtime on this Python."""


def ensure_runtime() -> None:
    """Imports the TFLM runtime once, so a broken install stops a run before its first case.

    Raises:
        RuntimeUnavailable: naming the release and what to do.
    """
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError as e:
        raise RuntimeUnavailable(
            f"tflite-micro {tflm_version()} cannot load its runtime on this Python ({e}); "
            "install a release built for it, e.g. pip install tflite-micro==0.dev20261023182759"
        ) from None


def tflm_version() -> str:
    """The installed ``tflite-micro`` release (the version users pin with pip)."""
    from importlib import metadata

    return metadata.version("tflite-micro")


def load(model: bytes, arena_bytes: int) -> LoadResult:
    """Creates a TFLM interpreter, capturing what TFLM prints if it refuses."""
    from tflite_micro.python.tflite_micro import runtime

    check_flatbuffer(model)
    with capture_c_stderr() as cap:
        try:
            interp = runtime.Interpreter.from_bytes(bytes(model), arena_size=int(arena_bytes))
            error = None
        except Exception as e:  # the binding raises RuntimeError/ValueError with a generic text
            interp, error = None, f"{type(e).__name__}: {e}"
    return LoadResult(interp, _clean(cap.text), error)


def _clean(text: str) -> str:
    lines = [
        ln.strip()
        for ln in text.splitlines()
        if ln.strip() and not ln.startswith(("WARNING: All log", "E0000", "W0000", "I0000"))
    ]
    return "\n".join(dict.fromkeys(lines))


def classify_failure(message: str) -> str:
    """Maps TFLM's words to a verdict status (``unsupported_op`` or ``arena_overflow``)."""
    if _UNSUPPORTED_PATTERNS.search(message):
        return "unsupported_op"
    if _ALLOC_PATTERNS.search(message):
        return "arena_overflow"
    return "unsupported_op"


@dataclass
class ArenaResult:
    """Exact minimum arena, or why the model does not load at any arena size."""

    min_arena_bytes: int | None
    status: str  # ok | unsupported_op | arena_overflow
    reason: str
    probes: int


def minimum_arena(
    model: bytes, ceiling: int = ARENA_CEILING, crashed: frozenset[int] = frozenset(), journal: Path | None = None
) -> ArenaResult:
    """Finds the smallest arena TFLM accepts for ``model``, by bisection.

    First loads at ``ceiling``: a refusal there is the model's, not the arena's, and its
    TFLM message is returned. Then bisects ``[1, ceiling]`` and checks the answer: the
    minimum loads and the byte below it does not.

    tflite-micro's runtime crashes the process at some intermediate sizes for some
    models. A caller running this in a child process passes ``journal``: each size is
    written there before it is tried, so after a crash the caller knows the size and
    runs the search again with it in ``crashed``, where it counts as refused.
    """

    def loads(size: int) -> bool:
        if size in crashed:
            return False
        if journal is not None:
            _note(journal, f"probe {size}")
        return load(model, size).ok

    if journal is not None:
        _note(journal, f"ceiling {ceiling}")
    first = load(model, ceiling)
    probes = 1
    if not first.ok:
        message = first.tflm_message or first.error or "TFLM refused the model without a message"
        status = classify_failure(message)
        if status == "arena_overflow":
            message = f"needs more than {ceiling} bytes of arena: {message}"
        return ArenaResult(None, status, message, probes)
    lo, hi = 1, ceiling
    while lo < hi:
        mid = (lo + hi) // 2
        probes += 1
        if loads(mid):
            hi = mid
        else:
            lo = mid + 1
    probes += 1
    if lo > 1 and loads(lo - 1):  # the planner is not monotonic here: walk down
        lo -= 1
        while lo > 1 and loads(lo - 1):
            lo -= 1
            probes += 1
    if journal is not None:
        _note(journal, "done")
    skipped = sorted(crashed)
    note = (
        f"; the runtime crashed at {len(skipped)} probe size(s) ({', '.join(map(str, skipped[:5]))} B)"
        if skipped
        else ""
    )
    return ArenaResult(lo, "ok", f"loads with a {lo} byte arena{note}", probes)


def _note(journal: Path, line: str) -> None:
    """Appends a line with one unbuffered write, so it is on disk before a crash can follow."""
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization of one tensor; ``scale == 0`` means float."""

    dtype: str
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0


def _qparams(details: dict) -> QuantParams:
    qp = details.get("quantization_parameters", {})
    scales, zps = qp.get("scales", []), qp.get("zero_points", [])
    return QuantParams(
        np.dtype(details["dtype"]).name,
        float(scales[0]) if len(scales) else 0.0,
        int(zps[0]) if len(zps) else 0,
    )


def io_quantization(interpreter) -> tuple[QuantParams, QuantParams]:
    """Input and output quantization of a loaded TFLM interpreter."""
    return _qparams(interpreter.get_input_details(0)), _qparams(interpreter.get_output_details(0))


def quantize(x: np.ndarray, qp: QuantParams) -> np.ndarray:
    """Float windows to the model's input dtype (identity for float models)."""
    if not qp.quantized:
        return x.astype(np.float32)
    info = np.iinfo(np.dtype(qp.dtype))
    return np.clip(np.round(x / qp.scale) + qp.zero_point, info.min, info.max).astype(qp.dtype)


def dequantize(y: np.ndarray, qp: QuantParams) -> np.ndarray:
    if not qp.quantized:
        return y.astype(np.float32)
    return ((y.astype(np.float32) - qp.zero_point) * qp.scale).astype(np.float32)


class InvokeError(RuntimeError):
    """TFLM failed while running (after a successful load)."""


def predict(model: bytes, x: np.ndarray, arena_bytes: int) -> np.ndarray:
    """Runs every window of ``x`` (standardised float) through TFLM; returns float scores.

    Raises:
        InvokeError: with TFLM's message when an invoke fails.
    """
    res = load(model, arena_bytes)
    if not res.ok:
        raise InvokeError(res.tflm_message or res.error or "TFLM refused the model")
    interp = res.interpreter
    qin, qout = io_quantization(interp)
    xq = quantize(x, qin)
    out = []
    with capture_c_stderr() as cap:
        try:
            for i in range(len(xq)):
                # The fused LSTM keeps h and c in variable tensors across invokes; each
                # window must start from zero state, as in Keras.
                interp.reset()
                interp.set_input(xq[i : i + 1], 0)
                interp.invoke()
                out.append(np.array(interp.get_output(0)).reshape(-1))
        except Exception as e:
            failed = e
        else:
            failed = None
    if failed is not None:
        raise InvokeError(f"invoke {len(out)} failed: {_clean(cap.text) or failed}")
    return dequantize(np.stack(out), qout)


def predict_litert(model: bytes, x: np.ndarray) -> np.ndarray:
    """Runs ``x`` through the TFLite interpreter (``ai-edge-litert``), for the 'TFLite' accuracy."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=bytes(model))
    interp.allocate_tensors()
    din, dout = interp.get_input_details()[0], interp.get_output_details()[0]
    qin = QuantParams(np.dtype(din["dtype"]).name, float(din["quantization"][0]), int(din["quantization"][1]))
    qout = QuantParams(np.dtype(dout["dtype"]).name, float(dout["quantization"][0]), int(dout["quantization"][1]))
    xq = quantize(x, qin)
    out = []
    for i in range(len(xq)):
        interp.reset_all_variables()  # zero LSTM state per window, as in Keras
        interp.set_tensor(din["index"], xq[i : i + 1])
        interp.invoke()
        out.append(interp.get_tensor(dout["index"]).reshape(-1))
    return dequantize(np.stack(out), qout)
