"""A user's own files through the whole path: a ready .tflite, a Keras model, builders, a .npz, a board."""

import pytest

from tests.unit.subrun import read_csv, run
from tinyhil.models.byo_example import make_example


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    return make_example(tmp_path_factory.mktemp("user"))


def _options(u):
    return (
        f"--networks-from={u / 'my_nets.py'}",
        f"--networks=mlp_8,{u / 'sine_float.tflite'},{u / 'tiny_cnn2d.keras'}",
        f"--dataset={u / 'images.npz'}",
        f"--board={u / 'my-board.json'}",
        "--techniques=lite,full_int",
    )


def test_user_files_run_on_host_and_virtual_board(project, user_folder):
    res = run(project, "-m", "offline", *_options(user_folder))
    # sine: as_is (a flatbuffer takes no converter); mlp_8 and the CNN: lite, full_int
    res.assert_outcomes(passed=5)
    rows = {r["case_id"]: r for r in read_csv(project)}
    sine = rows["sine_float-as_is-host"]
    assert sine["status"] == "ok" and int(sine["arena_bytes"]) > 0 and sine["acc_tflm"] == ""  # it takes no images
    assert sine["model_bytes"] == str((user_folder / "sine_float.tflite").stat().st_size)
    assert "sine_float-full_int-host" not in rows
    cnn = rows["tiny_cnn2d-full_int-host"]
    assert cnn["family"] == "keras-file" and cnn["board"] == "my-esp32" and cnn["split"] == "file"
    assert float(cnn["acc_keras"]) > 0.9 and float(cnn["acc_tflm"]) > 0.9
    mlp = rows["mlp_8-full_int-host"]
    assert mlp["family"] == "mlp" and float(mlp["train_seconds"]) >= 0 and float(mlp["acc_tflm"]) > 0.9

    res = run(
        project, "-m", "hil", "--virtual-board", "--device-windows", "20", *_options(user_folder), "--report-dir=vb"
    )
    res.assert_outcomes(passed=5)
    vb = {r["case_id"]: r for r in read_csv(project, "vb")}
    assert vb["tiny_cnn2d-full_int-virtual-esp32"]["device_agreement"] == "1"
    assert vb["sine_float-as_is-virtual-esp32"]["latency_source"] == "simulated"


@pytest.mark.parametrize(
    "option, text, message",
    [
        ("--networks", b"\x00" * 64, "not a TFLite flatbuffer"),
        ("--networks-from", b"raise RuntimeError('no GPU')\n", "failed to load: RuntimeError: no GPU (line 1)"),
        ("--networks-from", b"x = 1\n", "adds no network; call add_network(id, family, **params)"),
    ],
)
def test_a_bad_user_file_stops_the_run_with_its_name(project, tmp_path, option, text, message):
    path = tmp_path / ("broken.tflite" if option == "--networks" else "nets.py")
    path.write_bytes(text)
    res = run(project, f"{option}={path}", "--co")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines([f"*{path}*{message}*"])
