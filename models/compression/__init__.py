"""Compression techniques and pipelines of them.

A technique is a registered step of one of three kinds:

- ``transform``: Keras model -> Keras model (pruning, quantization-aware training,
  distillation, filter pruning; :mod:`tinyhil.models.compression.keras_steps`);
- ``convert``: Keras model -> .tflite (:mod:`tinyhil.models.compression.converters`: ``lite``, ``dynamic``, ``full_int``, ``float16``,
  ``int16x8``, and ``qat`` and ``int4``, which train first);
- ``post``: .tflite -> .tflite (TFLM's LUT weight compression; :mod:`tinyhil.models.compression.lut`).

A technique id is a ``+``-joined pipeline of steps, hyper-parameters in the step names
so ``-k`` selects them and the cache keys them: ``prune50+full_int`` (50 % sparsity),
``distill_t4+filter_prune50+full_int`` (temperature 4, half the filters),
``full_int+lut4`` (4-bit LUT). A pipeline without a converter ends in ``lite``. Steps
run in cascade, each on the previous step's output; a converter after a converter gets
a .tflite, which the TFLite converter does not take, so such a case ends in
``convert_error`` (the reference study's "cascading compression" finding).

Callers use :func:`convert`, which turns any failure into a ``convert_error`` verdict
that carries the tool's own message, and caches the result by content hash.
"""

from tinyhil.models.compression import converters, keras_steps, lut, passthrough  # noqa: F401 - each registers its steps
from tinyhil.models.compression.base import (
    EXTENDED_SET,
    PAPER_SET,
    TECHNIQUES,
    CascadeError,
    Conversion,
    ConversionContext,
    Step,
    Technique,
    convert,
    flatbuffer_steps,
    parse_step,
    parse_technique,
    register_technique,
    representative_windows,
    standalone,
    summarize_error,
)

__all__ = [
    "EXTENDED_SET",
    "PAPER_SET",
    "TECHNIQUES",
    "CascadeError",
    "Conversion",
    "ConversionContext",
    "Step",
    "Technique",
    "convert",
    "flatbuffer_steps",
    "parse_step",
    "parse_technique",
    "register_technique",
    "representative_windows",
    "standalone",
    "summarize_error",
]
