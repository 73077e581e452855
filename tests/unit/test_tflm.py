import os

import numpy as np
import pytest

from tinyhil.models.cstderr import capture_c_stderr
from tinyhil.models.errors import ModelFileError
from tinyhil.models.tflm import classify_failure, load, minimum_arena, predict, predict_litert


def test_c_level_stderr_is_captured():
    with capture_c_stderr() as cap:
        os.write(2, b"from C: Node FOO failed to prepare\n")
    assert "Node FOO failed to prepare" in cap.text


@pytest.mark.parametrize("net", ["C_2", "CL_1"])
def test_minimum_arena_is_exact(converted, net):
    model = converted[(net, "full_int")].tflite
    res = minimum_arena(model)
    assert res.status == "ok"
    assert load(model, res.min_arena_bytes).ok
    assert not load(model, res.min_arena_bytes - 1).ok


def test_dynamic_range_model_is_refused_in_tflms_words(converted):
    res = minimum_arena(converted[("C_2", "dynamic")].tflite)
    assert res.status == "unsupported_op" and res.min_arena_bytes is None
    assert "Input type: FLOAT32 with filter type: INT8 not supported" in res.reason
    assert "FULLY_CONNECTED" in res.reason


def test_failure_classification():
    assert classify_failure("Failed to resize buffer. Requested: 16128, available 9136") == "arena_overflow"
    assert classify_failure("Didn't find op for builtin opcode 'WHILE'") == "unsupported_op"


def test_tflm_and_litert_agree_on_float_and_int8(converted, tiny_data):
    x = tiny_data[0][:20]
    for tech in ("lite", "full_int"):
        model = converted[("CL_1", tech)].tflite
        a = predict(model, x, minimum_arena(model).min_arena_bytes)
        b = predict_litert(model, x)
        assert a.shape == (20, 6)
        assert np.mean(np.argmax(a, 1) == np.argmax(b, 1)) >= 0.9


def test_corrupt_model_is_named():
    with pytest.raises(ModelFileError, match="not a TFLite flatbuffer"):
        load(b"\x00" * 64, 1000)


def test_each_window_starts_from_zero_lstm_state(cnn_lstm, tiny_data):
    """The fused LSTM keeps its state in variable tensors; without a reset, windows leak into each other."""
    import tf_keras

    from tinyhil.models.compression import ConversionContext
    from tinyhil.models.compression.converters import lite

    model = tf_keras.models.clone_model(cnn_lstm)
    model.set_weights(cnn_lstm.get_weights())
    kernel, recurrent, bias = model.get_layer("lstm").get_weights()
    units = bias.shape[0] // 4
    bias[units : 2 * units] = 6.0  # forget gate nearly open: state carried over would dominate
    model.get_layer("lstm").set_weights([kernel, recurrent, bias])
    x = tiny_data[0][:40]
    flat = lite(model, ConversionContext((128, 9), x))
    expected = model(x, training=False).numpy()
    for scores in (predict(flat, x, minimum_arena(flat).min_arena_bytes), predict_litert(flat, x)):
        assert np.abs(scores - expected).max() < 1e-3
