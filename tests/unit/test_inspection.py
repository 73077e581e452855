import pytest

from tinyhil.models.errors import ModelFileError
from tinyhil.models.inspection import inspect_tflite


def test_params_and_macs_match_hand_counts(converted, cnn):
    info = inspect_tflite(converted[("C_2", "lite")].tflite)
    assert info.params == cnn.count_params()
    # conv: 126 outputs x 2 filters x (3 x 9); dense: 63*2 -> 100; output: 100 -> 6
    assert info.macs == 126 * 2 * 27 + 126 * 100 + 100 * 6
    assert [o.op for o in info.ops if o.weight_dtype] == ["CONV_2D", "FULLY_CONNECTED", "FULLY_CONNECTED"]


def test_lstm_macs_count_the_gates(converted):
    info = inspect_tflite(converted[("CL_1", "lite")].tflite)
    lstm = next(o for o in info.ops if o.op == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    assert lstm.macs == 126 * 4 * 16 * (2 + 16)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM(float32/float32)" in info.op_summary


def test_truncated_model_is_named(converted):
    data = converted[("C_2", "lite")].tflite
    with pytest.raises(ModelFileError):
        inspect_tflite(data[:12], "cut.tflite")
    with pytest.raises(ModelFileError, match="cut.tflite"):
        inspect_tflite(b"junk" * 10, "cut.tflite")


def test_io_quantization_read_from_the_flatbuffer_matches_tflm(converted):
    from tinyhil.models.tflm import io_quantization, load

    for tech in ("lite", "full_int"):
        model = converted[("CL_1", tech)].tflite
        info = inspect_tflite(model)
        qin, qout = io_quantization(load(model, 1 << 20).interpreter)
        assert info.input_quant == pytest.approx((qin.scale, qin.zero_point))
        assert info.output_quant == pytest.approx((qout.scale, qout.zero_point))
