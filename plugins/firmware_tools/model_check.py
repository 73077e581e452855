"""The firmware's model structure check (``firmware/main/model_check.cc``), for the Python virtual board.

The flatbuffers verifier checks offsets and sizes, not what the indices inside a model point at.
A corrupted model whose CRC matches can pass it with a tensor, buffer or op code index out of
range, constant data shorter than its tensor, or quantization arrays TFLM reads past; TFLM then
trips a flatbuffers assertion or crashes. The firmware refuses those before TFLM sees them, and
this module makes the same checks in the same order with the same words, so both boards answer
``e-[model: …]`` alike.
"""

from __future__ import annotations

import math

# Bits per element of the tensor types with a fixed size (TensorType values of the TFLite schema);
# the others (strings, resources, variants) are not checked against their shape.
_BITS = {
    17: 4, 20: 4, 19: 2,  # INT4, UINT4, INT2
    3: 8, 9: 8, 6: 8, 21: 8, 22: 8,  # UINT8, INT8, BOOL, FLOAT8_E4M3FN, FLOAT8_E5M2
    1: 16, 18: 16, 7: 16, 16: 16,  # FLOAT16, BFLOAT16, INT16, UINT16
    0: 32, 2: 32, 15: 32,  # FLOAT32, INT32, UINT32
    4: 64, 12: 64, 10: 64, 8: 64,  # INT64, UINT64, FLOAT64, COMPLEX64
    11: 128,  # COMPLEX128
}  # fmt: skip
# The zero points a quantized tensor of a type can hold: (schema name, low, high).
_ZERO_POINTS = {17: ("INT4", -8, 7), 9: ("INT8", -128, 127), 3: ("UINT8", 0, 255), 7: ("INT16", -32768, 32767)}
_MAX_ELEMENTS = 1 << 32  # model_check.cc's cap: far above any buffer a flatbuffer holds


def _n(values) -> int:
    return 0 if values is None else len(values)


def check_model(model) -> str | None:
    """The firmware's error text (``model: …``) for the first thing TFLM would read out of range, or None.

    Args:
        model: The flatbuffer as the TFLite schema's object API reads it (``schema_fb.ModelT``).
    """
    if not model.subgraphs:
        return "model: no subgraphs"
    codes, buffers = _n(model.operatorCodes), model.buffers or []
    for s, sg in enumerate(model.subgraphs):
        tensors = _n(sg.tensors)
        if s == 0 and (_n(sg.inputs) == 0 or _n(sg.outputs) == 0):  # the firmware reports input 0 and output 0
            return f"model: subgraph 0 has no {'inputs' if _n(sg.inputs) == 0 else 'outputs'}"
        for what, indices in (
            (f"an input of subgraph {s} is", sg.inputs),
            (f"an output of subgraph {s} is", sg.outputs),
        ):
            if bad := _bad_index(indices, tensors, optional=False, what=what):
                return bad
        for i, t in enumerate(sg.tensors or []):
            if bad := _check_tensor(t, i, s, buffers):
                return bad
        for j, op in enumerate(sg.operators or []):
            if op.opcodeIndex >= codes:
                return f"model: operator {j} of subgraph {s} has op code {op.opcodeIndex}; the model has {codes}"
            for verb, indices, optional in (
                ("reads", op.inputs, True),
                ("writes", op.outputs, False),
                ("has intermediate", op.intermediates, False),
            ):
                if bad := _bad_index(indices, tensors, optional, f"operator {j} of subgraph {s} {verb}"):
                    return bad
    return None


def _bad_index(indices, tensors: int, optional: bool, what: str) -> str | None:
    for index in [] if indices is None else indices:
        index = int(index)
        if not ((index == -1 and optional) or 0 <= index < tensors):
            return f"model: {what} tensor {index}; the subgraph has {tensors}"
    return None


def _check_tensor(t, i: int, s: int, buffers: list) -> str | None:
    """Its buffer index, its shape, its constant data against the shape, its quantization arrays
    (as TFLM copies them: only when scale and zero point are both there)."""
    if t.buffer >= len(buffers):
        return f"model: tensor {i} of subgraph {s} uses buffer {t.buffer}; the model has {len(buffers)}"
    elements = 1
    for d, n in enumerate([] if t.shape is None else [int(x) for x in t.shape]):
        if n < 0:
            return f"model: tensor {i} of subgraph {s} has dimension {d} of size {n}"
        elements = min(elements * n, _MAX_ELEMENTS)
    data = buffers[t.buffer].data
    bits = _BITS.get(t.type, 0)
    if data is not None and len(data) > 0 and bits:
        need = (elements * bits + 7) // 8
        if len(data) < need:
            return f"model: tensor {i} of subgraph {s} needs {need} bytes; its buffer {t.buffer} holds {len(data)}"
    q = t.quantization
    if q is None or _n(q.scale) == 0 or _n(q.zeroPoint) == 0:
        return None
    scales, zeros = len(q.scale), len(q.zeroPoint)
    if zeros not in (1, scales):
        return f"model: tensor {i} of subgraph {s} has {scales} quantization scales and {zeros} zero points"
    for k, scale in enumerate(q.scale):
        if not (math.isfinite(float(scale)) and scale > 0):
            return f"model: quantization scale {k} of tensor {i} of subgraph {s} is not a positive finite number"
    if t.type in _ZERO_POINTS:
        name, low, high = _ZERO_POINTS[t.type]
        for k, zero in enumerate(q.zeroPoint):
            if not low <= int(zero) <= high:
                return (
                    f"model: zero point {k} of tensor {i} of subgraph {s} is {int(zero)}, "
                    f"outside {name}'s {low}..{high}"
                )
    return None
