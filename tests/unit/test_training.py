import dataclasses

import numpy as np
import pytest

from models.datasets import Dataset, Standardizer
from models.errors import UnknownNameError
from models.networks import get_network
from models.training import PROFILES, train, training_key, training_recipe, validation_split

TINY = {
    "description": "unit tests: two epochs, dropout on for the first",
    "epochs": 2,
    "batch_size": 32,
    "learning_rate": 0.003,
    "lr_schedule": "cosine",
    "validation_fraction": 0.25,
    "keep_best": True,
    "dropout_epochs": 1,
    "families": {"1D_CNN_LSTM": {"batch_size": 16}},
}


@pytest.fixture(scope="module")
def tiny_profile():
    if "unit-tiny" not in PROFILES:
        PROFILES.add("unit-tiny", TINY)
    return "unit-tiny"


@pytest.fixture(scope="module")
def tiny_dataset(tiny_data):
    x, y = tiny_data
    return Dataset(
        name="tiny",
        split="paper",
        x_train=x[:64],
        y_train=y[:64],
        x_test=x[64:],
        y_test=y[64:],
        standardizer=Standardizer((0.0,) * 9, (1.0,) * 9),
        class_names=tuple(f"c{i}" for i in range(6)),
        channel_names=tuple(f"ch{i}" for i in range(9)),
        sample_rate_hz=50.0,
        generated=True,
        fingerprint="tiny",
        meta={},
    )


def test_validation_split_is_stratified_disjoint_and_seeded():
    y = np.repeat(np.arange(6), 50)[np.random.default_rng(1).permutation(300)]
    train_idx, val_idx = validation_split(y, 0.1, seed=0)
    assert len(np.intersect1d(train_idx, val_idx)) == 0 and len(train_idx) + len(val_idx) == 300
    assert np.bincount(y[val_idx]).tolist() == [5] * 6  # every class, not the last rows
    assert np.array_equal(val_idx, validation_split(y, 0.1, seed=0)[1])
    assert not np.array_equal(val_idx, validation_split(y, 0.1, seed=1)[1])
    assert len(validation_split(y, 0.0, seed=0)[1]) == 0


def test_recipe_takes_the_family_overrides(tiny_profile):
    cnn, cnn_lstm = (
        training_recipe(tiny_profile, get_network("C_1")),
        training_recipe(tiny_profile, get_network("CL_1")),
    )
    assert cnn["batch_size"] == 32 and cnn_lstm["batch_size"] == 16
    assert cnn_lstm["epochs"] == 2 and "families" not in cnn_lstm
    for name in PROFILES.names():  # the shipped profiles resolve for both families
        for net in ("C_1", "CL_1"):
            recipe = training_recipe(name, get_network(net))
            assert recipe["epochs"] > 0 and recipe["batch_size"] > 0
    with pytest.raises(UnknownNameError):
        training_recipe("nope", get_network("C_1"))


def test_cache_key_follows_the_recipe_only(tiny_profile, tiny_dataset, monkeypatch):
    spec = get_network("CL_1")
    key = training_key(spec, tiny_dataset, tiny_profile, 0)
    monkeypatch.setitem(PROFILES._items, tiny_profile, {**TINY, "description": "reworded"})
    assert training_key(spec, tiny_dataset, tiny_profile, 0) == key
    monkeypatch.setitem(PROFILES._items, tiny_profile, {**TINY, "families": {"1D_CNN_LSTM": {"batch_size": 8}}})
    assert training_key(spec, tiny_dataset, tiny_profile, 0) != key
    assert training_key(get_network("C_1"), tiny_dataset, tiny_profile, 0) == training_key(
        get_network("C_1"), dataclasses.replace(tiny_dataset), tiny_profile, 0
    )


def test_training_reports_epochs_and_switches_dropout_off(tiny_profile, tiny_dataset, tmp_path):
    lines = []
    tm = train(get_network("C_1"), tiny_dataset, tiny_profile, seed=0, cache_dir=tmp_path, progress=lines.append)
    assert not tm.from_cache
    assert [line.split(" loss=")[0] for line in lines[:2]] == [
        "[train C_1 unit-tiny] epoch 1/2",
        "[train C_1 unit-tiny] epoch 2/2",
    ]
    assert all(f" {k}=" in lines[0] for k in ("loss", "acc", "val_loss", "val_acc", "lr")) and lines[0].endswith(" s)")
    assert lines[2].startswith("[train C_1 unit-tiny] done: 2 epochs, kept epoch ")
    assert tm.meta["validation_windows"] == 16 and tm.meta["train_windows"] == 48
    assert tm.meta["recipe"]["dropout_epochs"] == 1
    # the model from the cache is the one that was trained
    again = train(get_network("C_1"), tiny_dataset, tiny_profile, seed=0, cache_dir=tmp_path, progress=lines.append)
    assert again.from_cache and len(lines) == 3
    np.testing.assert_array_equal(
        again.model.predict(tiny_dataset.x_test, verbose=0), tm.model.predict(tiny_dataset.x_test, verbose=0)
    )


def test_keep_best_needs_a_validation_split(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(PROFILES._items, "unit-noval", {**TINY, "validation_fraction": 0.0})
    with pytest.raises(ValueError, match="need a validation_fraction"):
        train(get_network("C_1"), tiny_dataset, "unit-noval", cache_dir=tmp_path, progress=lambda line: None)
