import dataclasses

import numpy as np
import pytest

from tinyhil.models.compression import TECHNIQUES, ConversionContext, convert, register_technique, summarize_error
from tinyhil.models.errors import UnknownNameError
from tinyhil.models.inspection import inspect_tflite


def test_paper_techniques_are_registered():
    assert {"lite", "dynamic", "full_int"} <= set(TECHNIQUES.names())


@pytest.mark.parametrize("net", ["C_2", "CL_1"])
def test_each_technique_changes_the_dtypes_it_should(converted, net):
    lite, dyn, full = (inspect_tflite(converted[(net, t)].tflite) for t in ("lite", "dynamic", "full_int"))
    assert lite.input_dtype == "float32" and lite.weight_dtypes == "float32"
    assert dyn.input_dtype == "float32" and "int8" in dyn.weight_dtypes
    assert full.input_dtype == "int8" and full.output_dtype == "int8"
    assert {o.input_dtype for o in full.ops} == {"int8"}
    assert dyn.model_bytes < lite.model_bytes and full.model_bytes < lite.model_bytes


def test_lstm_converts_to_the_fused_op(converted):
    for tech in ("lite", "full_int"):
        ops = [o.op for o in inspect_tflite(converted[("CL_1", tech)].tflite).ops]
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and "WHILE" not in ops


def test_a_failing_conversion_becomes_an_error_not_a_crash(cnn, tiny_data, tmp_path):
    name = "test_always_fails"
    if name not in TECHNIQUES:

        @register_technique(name, "raises like a converter would")
        def _fails(model, ctx, value=None):
            raise ValueError("converter says: op FOO is not supported")

    conv = convert(name, cnn, "k", ConversionContext((128, 9), tiny_data[0][:4]), tmp_path)
    assert not conv.ok and "op FOO is not supported" in conv.error
    assert "FOO" in summarize_error(conv.error)
    again = convert(name, cnn, "k", ConversionContext((128, 9), tiny_data[0][:4]), tmp_path)
    assert again.from_cache and again.error == conv.error


def test_conversion_is_cached(cnn, tiny_data, tmp_path, monkeypatch):
    real = TECHNIQUES.get("lite")
    calls = []

    def counting_lite(model, ctx, value=None):
        calls.append(model)
        return real.fn(model, ctx, value)

    # convert() looks the step up in the registry, so the spy stands in for the real converter there
    monkeypatch.setitem(TECHNIQUES._items, "lite", dataclasses.replace(real, fn=counting_lite))
    first = convert("lite", cnn, "key-C_2", ConversionContext((128, 9), tiny_data[0][:32]), tmp_path, label="C_2")
    assert first.ok and not first.from_cache and len(calls) == 1
    # an equal context (a new object with the same windows) and the same cache dir: a hit, no conversion
    again = convert(
        "lite", cnn, "key-C_2", ConversionContext((128, 9), tiny_data[0][:32].copy()), tmp_path, label="C_2"
    )
    assert again.from_cache
    assert len(calls) == 1, "the converter ran again instead of the cache answering"
    assert again.tflite == first.tflite and again.steps == first.steps == ["lite"]


def test_unknown_technique_is_a_user_error(cnn, tiny_data, tmp_path):
    with pytest.raises(UnknownNameError, match="unknown technique 'int3'"):
        convert("int3", cnn, "k", ConversionContext((128, 9), tiny_data[0][:4]), tmp_path)


def test_duplicate_technique_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_technique("lite", "again")(lambda m, c: b"")


def test_full_int_calibration_uses_given_windows(converted):
    from tinyhil.models.tflm import io_quantization, load

    res = load(converted[("C_2", "full_int")].tflite, 1 << 20)
    qin, _ = io_quantization(res.interpreter)
    assert qin.dtype == "int8" and qin.scale > 0
    # calibration windows are standard normal: the int8 range must cover a few sigma
    assert 2.0 < qin.scale * 255 < 20.0
    assert np.isfinite(qin.scale)
