"""``as_is``: the flatbuffer as it is, for a ready .tflite that a user brings."""

from __future__ import annotations

from tinyhil.models.compression.base import ConversionContext, register_technique


@register_technique(
    "as_is", "the flatbuffer as it is (a ready .tflite; on a Keras model the same as lite)", kind="post"
)
def as_is(tflite: bytes, ctx: ConversionContext, value=None) -> bytes:
    return tflite
