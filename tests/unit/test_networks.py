import pytest

from tinyhil.models.errors import UnknownNameError
from tinyhil.models.networks import NETWORKS, build_model, get_network


def test_all_table1_networks_are_registered():
    assert NETWORKS.names() == [f"C_{i}" for i in range(1, 9)] + [f"CL_{i}" for i in range(1, 7)]


def test_unknown_network_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as e:
        get_network("C_9")
    assert "C_9" in str(e.value) and "C_1" in str(e.value) and "CL_6" in str(e.value)


def _layers(model):
    return {layer.name: layer for layer in model.layers}


def test_cnn_is_built_as_the_paper_describes():
    m = build_model(get_network("C_8"), (128, 9), 6)
    layers = _layers(m)
    assert [type(layer).__name__ for layer in m.layers] == [
        "InputLayer",
        "Conv1D",
        "Dropout",
        "MaxPooling1D",
        "Flatten",
        "Dense",
        "Dense",
    ]
    assert layers["conv"].filters == 32 and layers["conv"].kernel_size == (3,)
    assert layers["dense"].units == 100
    assert layers["output"].units == 6 and layers["output"].activation.__name__ == "softmax"
    # 32 filters x (3 x 9 + 1) + 63*32 x 100 + 100 + 100 x 6 + 6
    assert m.count_params() == 32 * 28 + 63 * 32 * 100 + 100 + 606


def test_cnn_lstm_is_built_as_the_paper_describes():
    m = build_model(get_network("CL_4"), (128, 9), 6)
    assert [type(layer).__name__ for layer in m.layers] == [
        "InputLayer",
        "Conv1D",
        "BatchNormalization",
        "ReLU",
        "LSTM",
        "Dropout",
        "Dense",
        "Dense",
    ]
    layers = _layers(m)
    assert layers["conv"].filters == 16 and layers["lstm"].units == 4 and layers["dense"].units == 256


def test_input_shape_and_classes_come_from_the_caller():
    m = build_model(get_network("C_1"), (64, 3), 4)
    assert tuple(m.input_shape) == (None, 64, 3) and tuple(m.output_shape) == (None, 4)
