"""TFLM's own weight compression (``tflite_micro``'s ``compression`` module): LUT + DECODE.

The weights of every conv and fully-connected op are clustered per output channel to
``2**bits`` values (1-D k-means on the stored values), then ``compress`` rewrites each
tensor as ``bits``-wide indices into a per-channel table and inserts DECODE operators
that expand them at run time. The flatbuffer shrinks; the decoded weights live in the
arena, so the arena grows: tinyhil measures both. This keeps the storage saving of
weight-only quantization in a form TFLM runs (it runs no hybrid or float16-weight model).
"""

from __future__ import annotations

import numpy as np

from tinyhil.models.compression.base import ConversionContext, register_technique

LUT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
KMEANS_ITERATIONS = 25


def cluster_channel(values: np.ndarray, levels: int) -> np.ndarray:
    """1-D k-means of one channel's weights to at most ``levels`` distinct values (same dtype)."""
    v = values.astype(np.float64)
    if len(np.unique(v)) <= levels:
        return values
    centres = np.quantile(v, np.linspace(0, 1, levels))
    for _ in range(KMEANS_ITERATIONS):
        nearest = np.argmin(np.abs(v[:, None] - centres[None, :]), axis=1)
        for j in range(levels):
            if np.any(nearest == j):
                centres[j] = v[nearest == j].mean()
    out = centres[np.argmin(np.abs(v[:, None] - centres[None, :]), axis=1)]
    if np.issubdtype(values.dtype, np.integer):
        info = np.iinfo(values.dtype)
        out = np.clip(np.round(out), info.min, info.max)
    return out.astype(values.dtype)


_DTYPES = {"INT8": np.int8, "INT16": np.int16, "FLOAT32": np.float32}


@register_technique(
    "lut",
    "TFLM weight compression: per-channel look-up tables of 2**bits values with DECODE ops; lut4 = 4-bit indices",
    kind="post",
    param=("bits", 4, ""),
    param_range=(1, 7),
)
def lut(tflite: bytes, ctx: ConversionContext, value: int) -> bytes:
    import flatbuffers
    from tflite_micro.python.tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import spec

    fb = runtime.schema_fb
    op_names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(tflite), 0))
    sg = model.subgraphs[0]
    targets = []
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode)) not in LUT_OPS:
            continue
        index = int(op.inputs[1])
        tensor = sg.tensors[index]
        buf = model.buffers[tensor.buffer]
        dtype = _DTYPES.get(type_names[tensor.type])
        if buf.data is None or dtype is None or index in targets:
            continue
        w = np.frombuffer(bytes(buf.data), dtype=dtype).reshape(tuple(tensor.shape))
        clustered = np.stack(
            [cluster_channel(w[c].reshape(-1), 2**value).reshape(w.shape[1:]) for c in range(w.shape[0])]
        )
        buf.data = np.frombuffer(clustered.astype(dtype).tobytes(), dtype=np.uint8)
        targets.append(index)
    if not targets:
        raise ValueError("lut: the model has no constant conv or fully-connected weights to compress")
    builder = flatbuffers.Builder(len(tflite) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    specs = compression.SpecBuilder()
    for index in targets:
        specs.add_tensor(0, index).with_lut(value, spec.PerChannel(axis=0))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the compressor warns about alignment it then fixes
        return bytes(compression.compress(bytes(builder.Output()), specs.build()))
