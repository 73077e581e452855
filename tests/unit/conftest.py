"""Small models and data for the unit tests (no cache, seconds to build)."""

import shutil

import numpy as np
import pytest

from tinyhil.models.compression import ConversionContext, convert
from tinyhil.models.networks import build_model, get_network


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


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One model cache for every sub-run, so each network trains once per test session."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture
def project(pytester, shared_cache):
    """A copy of the study's layout in a temp dir, using this checkout's plugins and models."""
    from tests.unit.subrun import ROOT

    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    (pytester.path / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "test_matrix.py", pytester.path / "tests" / "test_matrix.py")
    ini = (ROOT / "pytest.ini").read_text()
    ini = ini.replace("tinyhil_model_cache = .tinyhil-cache", f"tinyhil_model_cache = {shared_cache}")
    (pytester.path / "pytest.ini").write_text(ini)
    # no PYTHONPATH for the sub-runs: tinyhil is installed (editable), and the processes they
    # start get tinyhil.resources.import_root() from tinyhil itself
    return pytester
