"""Small models and data for the unit tests (no cache, seconds to build)."""

import numpy as np
import pytest

from models.compression import ConversionContext, convert
from models.networks import build_model, get_network


@pytest.fixture(scope="session")
def tiny_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 128, 9)).astype(np.float32)
    y = rng.integers(0, 6, 96)
    return x, y


def _trained(net_id, tiny_data):
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = build_model(get_network(net_id), (128, 9), 6)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*tiny_data, epochs=1, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def cnn(tiny_data):
    return _trained("C_2", tiny_data)


@pytest.fixture(scope="session")
def cnn_lstm(tiny_data):
    return _trained("CL_1", tiny_data)


@pytest.fixture(scope="session")
def converted(cnn, cnn_lstm, tiny_data, tmp_path_factory):
    """``{(net, technique): Conversion}`` for C_2 and CL_1 x the paper's techniques."""
    cache = tmp_path_factory.mktemp("cache")
    ctx = ConversionContext((128, 9), tiny_data[0][:32])
    return {
        (net, tech): convert(tech, model, f"key-{net}", ctx, cache, label=net)
        for net, model in (("C_2", cnn), ("CL_1", cnn_lstm))
        for tech in ("lite", "dynamic", "full_int")
    }
