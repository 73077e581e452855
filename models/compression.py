"""Compression techniques: each a named, registered function ``(model, context) -> .tflite bytes``.

A new technique plugs in with ``@register_technique("name")``; callers only use
:func:`convert`, which turns any converter failure into a ``convert_error`` verdict that
carries the converter's own message, and caches the result by content hash.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.cache import cached_dir, content_key
from models.cstderr import capture_c_stderr
from models.registry import Registry

REPRESENTATIVE_WINDOWS = 300
COMPRESSION_CODE_VERSION = 1


@dataclass(frozen=True)
class ConversionContext:
    """What a technique may use besides the model.

    Attributes:
        input_shape: ``(timesteps, channels)`` of one window.
        representative: Standardised training windows for calibration (full-integer).
    """

    input_shape: tuple[int, int]
    representative: np.ndarray


@dataclass(frozen=True)
class Technique:
    name: str
    description: str
    convert: Callable[[Any, ConversionContext], bytes]


@dataclass
class Conversion:
    """The outcome of one conversion.

    Attributes:
        technique: Technique name.
        tflite: The flatbuffer, or None when conversion failed.
        error: The converter's message when it failed.
        seconds: Conversion wall time (of the process that converted).
        from_cache: True when the result came from the cache.
    """

    technique: str
    tflite: bytes | None
    error: str | None
    seconds: float
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return self.tflite is not None


TECHNIQUES: Registry[Technique] = Registry("technique")


def register_technique(name: str, description: str) -> Callable[[Callable], Callable]:
    """Registers ``fn(model, ctx) -> bytes`` as technique ``name``."""

    def deco(fn: Callable[[Any, ConversionContext], bytes]) -> Callable:
        TECHNIQUES.add(name, Technique(name, description, fn))
        return fn

    return deco


def _converter(model: Any, ctx: ConversionContext) -> Any:
    """A TFLite converter over a batch-1 concrete function.

    A fixed batch of 1 is what a microcontroller runs; it also lets the LSTM's tensor
    lists have static shapes, so that tf_keras's LSTM becomes the fused op.
    """
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec((1, *ctx.input_shape), tf.float32))
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)


@register_technique("lite", "float32 TFLite conversion, no quantization (the paper's 'lite')")
def lite(model: Any, ctx: ConversionContext) -> bytes:
    return _converter(model, ctx).convert()


@register_technique("dynamic", "post-training dynamic-range quantization: int8 weights, float activations")
def dynamic(model: Any, ctx: ConversionContext) -> bytes:
    import tensorflow as tf

    conv = _converter(model, ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()


@register_technique("full_int", "post-training full-integer quantization: int8 weights, activations, input, output")
def full_int(model: Any, ctx: ConversionContext) -> bytes:
    import tensorflow as tf

    conv = _converter(model, ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rep = ctx.representative

    def representative():
        for i in range(len(rep)):
            yield [rep[i : i + 1]]

    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def representative_windows(x_train: np.ndarray, seed: int, n: int = REPRESENTATIVE_WINDOWS) -> np.ndarray:
    """A seeded sample of training windows for calibration."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x_train), size=min(n, len(x_train)), replace=False)
    return x_train[np.sort(idx)].astype(np.float32)


def convert(
    technique: str, model: Any, model_key: str, ctx: ConversionContext, cache_dir: Path, label: str = "model"
) -> Conversion:
    """Applies ``technique`` to ``model``; never raises for a converter failure.

    Args:
        technique: Registered technique name.
        model: Trained Keras model.
        model_key: Cache key of the trained weights.
        ctx: Conversion context.
        cache_dir: Cache root; results (and failures) are cached under ``tflite/``.
        label: Readable prefix of the cache entry (network id).

    Raises:
        UnknownNameError: for an unknown technique (a user error, not a verdict).
    """
    import tensorflow as tf

    tech = TECHNIQUES.get(technique)
    key = content_key(
        {
            "model": model_key,
            "technique": technique,
            "representative": hashlib.sha256(np.ascontiguousarray(ctx.representative).tobytes()).hexdigest(),
            "tensorflow": tf.__version__,
            "code": COMPRESSION_CODE_VERSION,
        }
    )

    def build(tmp: Path) -> None:
        t0 = time.monotonic()
        try:
            with capture_c_stderr() as cap:
                flatbuffer = tech.convert(model, ctx)
            (tmp / "model.tflite").write_bytes(flatbuffer)
            error = None
        except Exception as e:  # the converter raises many types; all become a verdict
            error = f"{type(e).__name__}: {e}".strip()
            if cap.text.strip() and cap.text.strip() not in error:
                error += "\n" + cap.text.strip()
            (tmp / "error.txt").write_text(error)
        (tmp / "meta.json").write_text(json.dumps({"seconds": round(time.monotonic() - t0, 3), "error": error}))

    path, hit = cached_dir(cache_dir, "tflite", f"{label}-{technique}", key, build)
    meta = json.loads((path / "meta.json").read_text())
    flatbuffer = (path / "model.tflite").read_bytes() if (path / "model.tflite").exists() else None
    return Conversion(technique, flatbuffer, meta["error"], meta["seconds"], from_cache=hit)


def summarize_error(error: str, limit: int = 300) -> str:
    """The first meaningful line(s) of a converter error, for a one-line verdict reason."""
    lines = [
        ln.strip() for ln in error.splitlines() if "error:" in ln or ln.startswith(("ConverterError", "ValueError"))
    ]
    text = " | ".join(dict.fromkeys(lines)) or error.strip().splitlines()[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."
