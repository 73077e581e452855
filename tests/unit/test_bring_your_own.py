"""A user's own files through the whole path: a ready .tflite, a Keras model, a .npz, a board JSON."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.unit.subrun import ROOT, read_csv, run


def _images(rng, y):
    x = rng.normal(size=(len(y), 8, 8, 1)).astype(np.float32) * 0.5
    for i, c in enumerate(y):
        x[i, c * 2 : c * 2 + 3, :, 0] += 2.0  # a bright band whose row tells the class
    return x


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    """Outside the repository: the tflite-micro wheel's sine model, a 2-D CNN, images, a board."""
    import tf_keras
    import tflite_micro

    folder = tmp_path_factory.mktemp("user")
    shipped = Path(tflite_micro.__path__[0]) / "python" / "tflite_micro" / "sine_float.tflite"
    (folder / "sine_float.tflite").write_bytes(shipped.read_bytes())
    rng = np.random.default_rng(0)
    y_tr, y_te = rng.integers(0, 3, 240), rng.integers(0, 3, 60)
    x_tr, x_te = _images(rng, y_tr), _images(rng, y_te)
    np.savez(folder / "images.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    tf_keras.utils.set_random_seed(0)
    k = tf_keras
    model = k.Sequential(
        [
            k.Input((8, 8, 1)),
            k.layers.Conv2D(4, 3, activation="relu"),
            k.layers.MaxPooling2D(),
            k.layers.Flatten(),
            k.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_tr, y_tr, epochs=15, verbose=0)
    model.save(folder / "tiny_cnn2d.keras")
    board = json.loads((ROOT / "models" / "data" / "boards" / "esp32-wroom-32.json").read_text())
    (folder / "my-board.json").write_text(json.dumps({**board, "name": "my-esp32"}))
    return folder


def test_user_files_run_on_host_and_virtual_board(project, user_folder):
    u = user_folder
    nets = f"--networks={u / 'sine_float.tflite'},{u / 'tiny_cnn2d.keras'}"
    common = (
        nets,
        f"--dataset={u / 'images.npz'}",
        f"--board={u / 'my-board.json'}",
        "--techniques",
        "lite,full_int,lut4",
    )
    res = run(project, "-m", "offline", *common)
    # sine: as_is and lut4 (a flatbuffer takes no converter); the CNN: lite, full_int, lut4 (after lite)
    res.assert_outcomes(passed=5)
    rows = {r["case_id"]: r for r in read_csv(project)}
    assert sorted(rows) == [
        "sine_float-as_is-host",
        "sine_float-lut4-host",
        "tiny_cnn2d-full_int-host",
        "tiny_cnn2d-lite-host",
        "tiny_cnn2d-lut4-host",
    ]
    sine = rows["sine_float-as_is-host"]
    assert sine["status"] == "ok" and int(sine["arena_bytes"]) > 0 and sine["acc_tflm"] == ""  # it takes no images
    assert sine["model_bytes"] == str((u / "sine_float.tflite").stat().st_size)
    cnn = rows["tiny_cnn2d-full_int-host"]
    assert cnn["family"] == "keras-file" and cnn["board"] == "my-esp32" and cnn["split"] == "file"
    assert float(cnn["acc_keras"]) > 0.9 and float(cnn["acc_tflm"]) > 0.9 and cnn["train_seconds"] in ("", "0", "0.0")

    res = run(project, "-m", "hil", "--virtual-board", "--device-windows", "20", *common, "--report-dir=vb")
    res.assert_outcomes(passed=5)
    vb = {r["case_id"]: r for r in read_csv(project, "vb")}
    assert vb["tiny_cnn2d-full_int-virtual-esp32"]["device_agreement"] == "1"
    assert vb["sine_float-as_is-virtual-esp32"]["latency_source"] == "simulated"


def test_a_file_that_is_not_a_flatbuffer_stops_the_run(project, tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x00" * 64)
    res = run(project, f"--networks={bad}", "--co")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines([f"*{bad}: not a TFLite flatbuffer*"])
    res = run(project, f"--networks={tmp_path / 'none.tflite'}", "--co")
    res.stderr.fnmatch_lines([f"*--networks: model file {tmp_path / 'none.tflite'} does not exist*"])
