"""Converter steps: Keras model -> .tflite with the TFLite converter.

The reference study's three (``lite``, ``dynamic``, ``full_int``) and two more
post-training modes (``float16``, ``int16x8``). Quantization-aware conversions, which
train first, live in :mod:`tinyhil.models.compression.keras_steps`.
"""

from __future__ import annotations

from typing import Any

from tinyhil.models.compression.base import (
    ConversionContext,
    register_technique,
    representative_dataset,
    tflite_converter,
)


@register_technique("lite", "float32 TFLite conversion, no quantization (the paper's 'lite')")
def lite(model: Any, ctx: ConversionContext, value=None) -> bytes:
    return tflite_converter(model, ctx).convert()


@register_technique("dynamic", "post-training dynamic-range quantization: int8 weights, float activations")
def dynamic(model: Any, ctx: ConversionContext, value=None) -> bytes:
    import tensorflow as tf

    conv = tflite_converter(model, ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()


def _calibrated(model: Any, ctx: ConversionContext, ops, io_dtype) -> bytes:
    """Post-training quantization calibrated on the representative windows."""
    import tensorflow as tf

    conv = tflite_converter(model, ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative_dataset(ctx)
    conv.target_spec.supported_ops = [ops]
    conv.inference_input_type = io_dtype
    conv.inference_output_type = io_dtype
    return conv.convert()


@register_technique("full_int", "post-training full-integer quantization: int8 weights, activations, input, output")
def full_int(model: Any, ctx: ConversionContext, value=None) -> bytes:
    import tensorflow as tf

    return _calibrated(model, ctx, tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.int8)


@register_technique("float16", "post-training float16 quantization of the weights (float activations)")
def float16(model: Any, ctx: ConversionContext, value=None) -> bytes:
    import tensorflow as tf

    conv = tflite_converter(model, ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return conv.convert()


@register_technique("int16x8", "post-training quantization: int16 activations, int8 weights, int16 input and output")
def int16x8(model: Any, ctx: ConversionContext, value=None) -> bytes:
    import tensorflow as tf

    return _calibrated(model, ctx, tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8, tf.int16)
