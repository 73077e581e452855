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
import re
from functools import cache
from pathlib import Path

from tinyhil import resources
from tinyhil.plugins.firmware_tools.commands import xmacro_entries

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
_INT_MAX = (1 << 31) - 1
_ANY = 255  # no maximum the kernel enforces

# How many inputs and outputs the kernel of each builtin op of ops.def reads:
# (min inputs, max inputs, min outputs, max outputs), from firmware/main/op_arity.def, which
# model_check.cc's table is built from too.
OP_ARITY_DEF = resources.firmware("main", "op_arity.def")
_ARITY = re.compile(r"TINYHIL_ARITY\(\s*([A-Z0-9_]+)\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\)(\s*//.*)?")


@cache
def op_arities(path: Path = OP_ARITY_DEF) -> dict[str, tuple[int, int, int, int]]:
    """``{BUILTIN_NAME: (min in, max in, min out, max out)}`` of an ``op_arity.def`` file (``kAny``: no maximum).

    Raises:
        ValueError: an entry this parser cannot read (the C preprocessor might still, and the
            firmware's checks and the Python board's would differ), or none.
    """
    form = "TINYHIL_ARITY(BUILTIN_NAME, min in, max in, min out, max out)"
    out = {}
    for m in xmacro_entries(path, "TINYHIL_ARITY", _ARITY, form):
        try:
            out[m.group(1)] = tuple(_ANY if v == "kAny" else int(v) for v in m.group(2, 3, 4, 5))
        except ValueError:
            raise ValueError(f"{path}: {m.group(0)!r}: counts are numbers or kAny") from None
    return out


# The positions of an op's weights among its inputs: TFLite's int8 quantization is symmetric for them
# (zero point 0), and TFLM's kernels assume it (FULLY_CONNECTED's, which the LSTM's gates use too, stops
# on TFLITE_DCHECK(filter zero point == 0)).
_WEIGHT_INPUTS = {
    "FULLY_CONNECTED": (1,),
    "CONV_2D": (1,),
    "DEPTHWISE_CONV_2D": (1,),
    "TRANSPOSE_CONV": (1,),  # inputs: output shape, weights, input, bias
    "SVDF": (1, 2),  # weights_feature, weights_time
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (1, 2, 3, 4, 5, 6, 7, 8, 16),  # the gates' weights, the projection
}
# Elementwise ops whose kernel reads both inputs as the output's type.
_SAME_TYPE_OPERANDS = {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM"}
_INT8, _INT4, _INT16 = 9, 17, 7


def _names(enum) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


_SCHEMA_NAMES: list = []


def _schema_names() -> tuple[dict[int, str], dict[int, str], int]:
    """BuiltinOperator's and TensorType's names by value, and BuiltinOptions.SoftmaxOptions."""
    if not _SCHEMA_NAMES:
        from tinyhil.models.inspection import tflite_schema

        fb = tflite_schema()
        _SCHEMA_NAMES.extend([_names(fb.BuiltinOperator), _names(fb.TensorType), fb.BuiltinOptions.SoftmaxOptions])
    return _SCHEMA_NAMES[0], _SCHEMA_NAMES[1], _SCHEMA_NAMES[2]


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
            oc = model.operatorCodes[op.opcodeIndex]
            if bad := _check_operator(op, max(oc.builtinCode, oc.deprecatedBuiltinCode), j, s, sg):
                return bad
    return None


def _takes(low: int, high: int) -> str:
    """ "5", "2 or 3", "at least 1", "1 to 10": how many an op takes."""
    if low == high:
        return f"{low}"
    if high == _ANY:
        return f"at least {low}"
    return f"{low} or {high}" if high == low + 1 else f"{low} to {high}"


def _scale(t) -> float:
    """The first scale of a tensor as TFLM copies it into params.scale (0 without both a scale and a zero point)."""
    q = t.quantization
    if q is None or _n(q.scale) == 0 or _n(q.zeroPoint) == 0:
        return 0.0
    return float(q.scale[0])


def _check_operator(op, code: int, j: int, s: int, sg) -> str | None:
    """What TFLM's kernel of builtin op ``code`` needs of operator ``j`` beyond valid indices: its inputs and
    outputs, symmetric int8 weights, operands of one type, and the scales whose ratios TFLM checks with
    TFLITE_CHECK (ADD, SUB, SOFTMAX) rather than refuse."""
    op_names, type_names, softmax_options = _schema_names()
    name = op_names.get(code, "")
    ins = [] if op.inputs is None else [int(x) for x in op.inputs]
    outs = [] if op.outputs is None else [int(x) for x in op.outputs]
    where = f"model: operator {j} ({name}) of subgraph {s}"
    if name in op_arities():
        min_in, max_in, min_out, max_out = op_arities()[name]
        if not min_in <= len(ins) <= max_in:
            return f"{where} has {len(ins)} input{'' if len(ins) == 1 else 's'}; {name} takes {_takes(min_in, max_in)}"
        if not min_out <= len(outs) <= max_out:
            return (
                f"{where} has {len(outs)} output{'' if len(outs) == 1 else 's'}; "
                f"{name} writes {_takes(min_out, max_out)}"
            )
    tensors = sg.tensors
    for k in _WEIGHT_INPUTS.get(name, ()):
        if k >= len(ins) or ins[k] < 0:  # optional
            continue
        t = tensors[ins[k]]
        q = t.quantization
        if t.type not in (_INT8, _INT4) or q is None or _n(q.scale) == 0:
            continue
        for zero in [] if q.zeroPoint is None else q.zeroPoint:
            if int(zero) != 0:
                return f"{where} has weights (tensor {ins[k]}) with zero point {int(zero)}, not 0"
    if name in _SAME_TYPE_OPERANDS and len(ins) >= 2 and len(outs) >= 1:
        for k in range(2):  # an output is never -1 (_bad_index)
            if ins[k] < 0:
                return f"{where} omits input {k}"
        kind = tensors[outs[0]].type
        for k in range(2):
            other = tensors[ins[k]].type
            if other != kind:
                return (
                    f"{where} mixes types: tensor {ins[k]} is {type_names.get(other, '')}, "
                    f"tensor {outs[0]} {type_names.get(kind, '')}"
                )
        if name in ("ADD", "SUB") and kind in (_INT8, _INT16):
            # TFLM rescales both inputs to twice the larger input scale, shifted left 20 bits (15 for
            # int16), and checks that the output's multiplier is below 1 (and every one above 0)
            for index in (ins[0], ins[1], outs[0]):
                if not _scale(tensors[index]) > 0:
                    return f"{where} has unquantized operand tensor {index}"
            high, out = max(_scale(tensors[ins[0]]), _scale(tensors[ins[1]])), _scale(tensors[outs[0]])
            shift = 15 if kind == _INT16 else 20
            if not 2 * high < float(1 << shift) * out:
                return f"{where} has output scale {out:g}, at most 2^-{shift} times twice input scale {high:g}"
    if name == "SOFTMAX" and ins and ins[0] >= 0 and tensors[ins[0]].type == _INT8:
        # TFLM turns beta times the input scale, shifted left 26 bits, into a multiplier it checks is
        # above 1 (a missing SoftmaxOptions leaves beta 0)
        has = op.builtinOptionsType == softmax_options and op.builtinOptions is not None
        beta = float(op.builtinOptions.beta) if has else 0.0
        scale = _scale(tensors[ins[0]])
        if not beta * scale * 67108864.0 > 1:
            return f"{where} has beta {beta:g} times input scale {scale:g} at most 2^-26"
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
    # TFLM counts a tensor's elements in an int and asserts each dimension is below INT_MAX over the
    # count before it (tflite::NumElements; the count stops at a 0)
    count = 1
    for n in [] if t.shape is None else [int(x) for x in t.shape]:
        if count <= 0:
            break
        if n >= _INT_MAX // count:
            return f"model: tensor {i} of subgraph {s} has more elements than TFLM counts (2^31)"
        count *= n
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
