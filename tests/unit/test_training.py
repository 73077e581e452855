import dataclasses

import numpy as np
import pytest

from tinyhil.models.datasets import Dataset, Standardizer
from tinyhil.models.errors import UnknownNameError
from tinyhil.models.networks import get_network
from tinyhil.models.training import PROFILES, train, training_key, training_recipe, validation_split

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


def test_pretraining_reports_a_failing_network_and_goes_on(tmp_path):
    from tinyhil.models.parallel_training import train_networks
    from tinyhil.models.pipeline import StudyConfig

    # the children load the dataset themselves: a missing UCI-HAR folder fails there
    config = StudyConfig(dataset="uci-har", data_dir=tmp_path / "missing", cache_dir=tmp_path / "cache")
    lines, done = [], []
    results = train_networks(config, ["C_1", "C_2"], 2, lambda n, line: lines.append(line), done.append)
    assert [r.network for r in results] == [r.network for r in done]
    assert sorted(r.network for r in results) == ["C_1", "C_2"]
    for r in results:
        assert r.accuracy is None and "uci-har" in r.error.lower(), r.error
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())


def _board(tty):
    from tinyhil.models.parallel_training import TrainingResult
    from tinyhil.plugins.report.training_progress import TrainingBoard

    out, now = [], [0.0]
    board = TrainingBoard(out.append, tty, total=2, jobs=2, profile="quick", clock=lambda: now[0])
    for t, net, line in [
        (0.5, "C_1", "[train C_1 quick] loading the dataset"),  # a phase: shown, and no epoch line waits for it
        (1, "C_1", "[train C_1 quick] epoch 1/20 loss=1.0"),
        (2, "CL_1", "[train CL_1 quick] epoch 1/20 loss=2.0"),
        (6, "C_1", "[train C_1 quick] epoch 2/20 loss=0.7"),  # in a log: 5 s after epoch 1, left out
        (12, "C_1", "[train C_1 quick] epoch 3/20 loss=0.5"),  # 11 s after: printed
        (13, "C_1", "[train C_1 quick] done: 2 epochs, kept epoch 2, test acc=0.700 (3.0 s)"),
    ]:
        now[0] = t
        board.line(net, line)
    now[0] = 30
    board.result(TrainingResult("C_1", None, 0.7, 2, 2, 3.0))
    now[0] = 35
    board.result(TrainingResult("CL_1", "it broke"))
    return "".join(out)


def test_training_board_prints_every_line_in_a_log():
    text = _board(tty=False)
    assert "\x1b" not in text
    assert text.splitlines() == [
        "[train] 2 networks to train (quick profile), 2 at a time: starting 2 processes (importing TensorFlow)",
        "[train C_1 quick] loading the dataset",
        "[train C_1 quick] epoch 1/20 loss=1.0",
        "[train CL_1 quick] epoch 1/20 loss=2.0",
        "[train C_1 quick] epoch 3/20 loss=0.5",
        "[train C_1 quick] done: 2 epochs, kept epoch 2, test acc=0.700 (3.0 s; 1/2 networks, 30 s elapsed)",
        "[train CL_1 quick] not trained: it broke; its cases will try again (2/2 networks, 35 s elapsed)",
    ]


def _screen(text: str) -> list[str]:
    """What a terminal shows after ``text``: handles CSI n F (up n, column 0) and 2K (clear)."""
    import re

    rows, row = [""], 0
    for token in re.findall(r"\x1b\[(\d+)F|\x1b\[2K|(\n)|([^\x1b\n]+)", text):
        up, newline, chars = token
        if up:
            row -= int(up)
        elif newline:
            row += 1
            rows += [""] * (row + 1 - len(rows))
        elif chars:
            rows[row] = chars
        else:
            rows[row] = ""
    return rows


def test_training_board_keeps_one_updating_line_per_network_on_a_terminal():
    text = _board(tty=True)
    screen = [r for r in _screen(text) if r]
    assert screen == [
        "[train] 2 networks to train (quick profile), 2 at a time: starting 2 processes (importing TensorFlow)",
        "[train C_1 quick] done: 2 epochs, kept epoch 2, test acc=0.700 (3.0 s; 1/2 networks, 30 s elapsed)",
        "[train CL_1 quick] not trained: it broke; its cases will try again (2/2 networks, 35 s elapsed)",
    ]
    # while both trained, the screen held one line per network, the latest epoch's
    partial = _board_until(3)
    assert [r for r in _screen(partial) if r][1:] == [
        "[train C_1 quick] epoch 2/20 loss=0.5",
        "[train CL_1 quick] epoch 1/20 loss=2.0",
    ]


def _board_until(n_lines):
    from tinyhil.plugins.report.training_progress import TrainingBoard

    out = []
    board = TrainingBoard(out.append, True, total=2, jobs=2, profile="quick", clock=lambda: 0)
    for net, line in [
        ("C_1", "[train C_1 quick] epoch 1/20 loss=1.0"),
        ("CL_1", "[train CL_1 quick] epoch 1/20 loss=2.0"),
        ("C_1", "[train C_1 quick] epoch 2/20 loss=0.5"),
    ][:n_lines]:
        board.line(net, line)
    return "".join(out)
