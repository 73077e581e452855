"""What is inside a .tflite: ops with their input and weight dtypes, parameters, MACs, bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyhil.models.errors import ModelFileError

# Ops whose constant inputs are the model's parameters (shape tensors of RESHAPE etc. are not).
COMPUTE_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM"}


@dataclass(frozen=True)
class OpInfo:
    """One operator: its name, the dtype of its activation input and of its weights."""

    op: str
    input_dtype: str
    weight_dtype: str | None
    macs: int
    per_channel: bool = False  # the weights carry one quantization scale per output channel
    out_elements: int = 0  # elements of its first output
    window: int = 0  # filter height x width of a conv, depthwise conv or pool (0: none)

    def __str__(self) -> str:
        return (
            f"{self.op}({self.input_dtype}/{self.weight_dtype})"
            if self.weight_dtype
            else f"{self.op}({self.input_dtype})"
        )


@dataclass
class ModelInfo:
    """Inspection result.

    Attributes:
        model_bytes: Flatbuffer size.
        ops: Operators in execution order (first subgraph).
        params: Elements of the constant inputs of compute ops (weights and biases).
        macs: Multiply-accumulates of one inference (conv, fully connected, LSTM gates).
        input_dtype, output_dtype: Of the model's first input and output.
        input_quant, output_quant: ``(scale, zero_point)`` of them; scale 0 means float.
        subgraphs: Number of subgraphs (WHILE/IF bodies show up here).
    """

    model_bytes: int
    ops: list[OpInfo] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    input_dtype: str = ""
    output_dtype: str = ""
    input_quant: tuple[float, int] = (0.0, 0)
    output_quant: tuple[float, int] = (0.0, 0)
    subgraphs: int = 1
    input_shape: tuple[int, ...] = ()  # with the batch axis
    output_shape: tuple[int, ...] = ()

    @property
    def op_summary(self) -> str:
        return ";".join(dict.fromkeys(str(o) for o in self.ops))

    @property
    def weight_dtypes(self) -> str:
        return ",".join(sorted({o.weight_dtype for o in self.ops if o.weight_dtype}))


def check_flatbuffer(data: bytes, source: str = "model") -> None:
    """Raises :class:`ModelFileError` unless ``data`` looks like a TFLite flatbuffer."""
    if len(data) < 16 or data[4:8] != b"TFL3":
        raise ModelFileError(
            f"{source}: not a TFLite flatbuffer ({len(data)} bytes, identifier {data[4:8]!r}, expected b'TFL3'); "
            "regenerate it with the converter or delete it from the cache"
        )


def tflite_schema():
    """The TFLite schema's generated Python module (``Model``, ``ModelT``, the enums)."""
    # The schema module moved between tflite-micro releases; the runtime always imports it.
    from tflite_micro.python.tflite_micro import runtime

    return runtime.schema_fb


def inspect_tflite(data: bytes, source: str = "model") -> ModelInfo:
    """Parses a flatbuffer with the TFLite schema that ``tflite-micro`` ships.

    Raises:
        ModelFileError: when ``data`` is not a readable TFLite model.
    """
    check_flatbuffer(data, source)
    fb = tflite_schema()
    op_names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k.lower() for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    try:
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(data), 0))
    except Exception as e:
        raise ModelFileError(f"{source}: the flatbuffer does not parse ({e}); it is corrupt or truncated") from None
    info = ModelInfo(model_bytes=len(data), subgraphs=len(model.subgraphs))
    sg = model.subgraphs[0]

    def is_const(t) -> bool:
        buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        return bool(buf is not None and ((buf.data is not None and len(buf.data)) or getattr(buf, "size", 0)))

    # Outputs of DEQUANTIZE / DECODE fed only by constants are weights stored in another
    # dtype (float16, LUT indices): count them as weights of that stored dtype.
    stored: dict[int, str] = {}
    for op in sg.operators or []:
        code = model.operatorCodes[op.opcodeIndex]
        name = op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")
        if name == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
            name = f"CUSTOM:{custom}"
        tensors = [sg.tensors[i] if i >= 0 else None for i in op.inputs]
        acts = [t for t in tensors if t is not None and not is_const(t)]
        consts = [t for t in tensors if t is not None and is_const(t)]
        if name in ("DEQUANTIZE", "CUSTOM:TFLM_DECODE") and not acts and consts:
            for o in op.outputs:
                stored[int(o)] = type_names[consts[0].type]
        derived = [(i, sg.tensors[i]) for i in op.inputs if i >= 0 and int(i) in stored]
        weight_dtype = None
        if name in COMPUTE_OPS and (consts or derived):
            weight_dtype = stored[int(derived[0][0])] if derived else type_names[consts[0].type]
            weights = consts + [t for _, t in derived]
            info.params += sum(int(np.prod(t.shape)) if t.shape is not None else 0 for t in weights)
        out = sg.tensors[op.outputs[0]] if op.outputs is not None and len(op.outputs) else None
        macs = _macs(name, tensors, out)
        out_elements = int(np.prod(out.shape)) if out is not None and out.shape is not None else 0
        info.macs += macs
        first = acts[0] if acts else (consts[0] if consts else None)
        wq = consts[0].quantization if consts and weight_dtype else None
        per_channel = bool(wq is not None and wq.scale is not None and len(wq.scale) > 1)
        info.ops.append(
            OpInfo(
                name,
                type_names[first.type] if first is not None else "-",
                weight_dtype,
                macs,
                per_channel,
                out_elements,
                _window(name, tensors, op),
            )
        )
    info.input_dtype = type_names[sg.tensors[sg.inputs[0]].type]
    info.output_dtype = type_names[sg.tensors[sg.outputs[0]].type]
    info.input_quant = _quant(sg.tensors[sg.inputs[0]])
    info.output_quant = _quant(sg.tensors[sg.outputs[0]])
    info.input_shape = _shape(sg.tensors[sg.inputs[0]])
    info.output_shape = _shape(sg.tensors[sg.outputs[0]])
    return info


def _shape(tensor) -> tuple[int, ...]:
    return () if tensor.shape is None else tuple(int(d) for d in tensor.shape)


def _quant(tensor) -> tuple[float, int]:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return (0.0, 0)
    return (float(q.scale[0]), int(q.zeroPoint[0]) if q.zeroPoint is not None and len(q.zeroPoint) else 0)


def _window(name: str, inputs: list, op) -> int:
    """Filter height x width: of the weights of a conv or depthwise conv, of a pool's options."""
    w = inputs[1] if len(inputs) > 1 and inputs[1] is not None else None
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and w is not None and w.shape is not None and len(w.shape) == 4:
        return int(w.shape[1] * w.shape[2])
    opts = getattr(op, "builtinOptions", None)
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D") and opts is not None:
        return int(getattr(opts, "filterHeight", 0) * getattr(opts, "filterWidth", 0))
    return 0


def _macs(name: str, inputs: list, out) -> int:
    if out is None or out.shape is None:
        return 0
    out_elems = int(np.prod(out.shape))
    w = inputs[1] if len(inputs) > 1 and inputs[1] is not None else None
    if name == "CONV_2D" and w is not None:  # filter [Cout, kh, kw, Cin]
        return out_elems * int(np.prod(w.shape[1:]))
    if name == "DEPTHWISE_CONV_2D" and w is not None:  # filter [1, kh, kw, Cout]
        return out_elems * int(w.shape[1] * w.shape[2])
    if name == "FULLY_CONNECTED" and w is not None:  # weights [out, in]
        return out_elems * int(w.shape[1])
    if name in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM") and w is not None:
        x = inputs[0]
        steps = int(np.prod(x.shape[:-1]))  # batch x time
        units, n_in = int(w.shape[0]), int(w.shape[1])
        return steps * 4 * units * (n_in + units)
    return 0
