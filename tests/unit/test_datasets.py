import numpy as np
import pytest

from tinyhil.models.datasets import DatasetError, Windows, load_dataset, split_indices, validate_windows
from tinyhil.models.datasets.synthetic_har import SAMPLE_RATE_HZ, generate
from tinyhil.models.errors import UnknownNameError


@pytest.fixture(scope="module")
def windows():
    return generate(seed=0, windows_per_subject_class=4)


def test_generated_dataset_is_shaped_like_uci_har(windows):
    assert windows.x.shape == (30 * 6 * 4, 128, 9)
    assert windows.x.dtype == np.float32
    assert sorted(np.unique(windows.y)) == list(range(6))
    assert windows.meta["generated"] and "not UCI-HAR" in windows.meta["provenance"]


def test_generation_is_deterministic_per_seed(windows):
    again = generate(seed=0, windows_per_subject_class=4)
    other = generate(seed=1, windows_per_subject_class=4)
    assert np.array_equal(windows.x, again.x)
    assert not np.array_equal(windows.x, other.x)


def test_static_postures_read_one_g_and_differ_by_orientation(windows):
    total = windows.x[..., 6:9].mean(axis=1)  # gravity estimate per window
    norm = np.linalg.norm(total, axis=1)
    static = windows.y >= 3
    assert np.allclose(norm[static], 1.0, atol=0.05)
    vertical = total[:, 0]
    standing, laying = vertical[windows.y == 4].mean(), vertical[windows.y == 5].mean()
    assert standing > 0.9 and laying < 0.5


def test_walking_classes_oscillate_at_their_cadence(windows):
    body_vertical = windows.x[..., 0]
    spectrum = np.abs(np.fft.rfft(body_vertical - body_vertical.mean(axis=1, keepdims=True), n=1024, axis=1))
    freqs = np.fft.rfftfreq(1024, 1 / SAMPLE_RATE_HZ)
    # dominant frequency of the body acceleration: ~step frequency for walking, near-flat for static
    peak = {label: np.median(freqs[np.argmax(spectrum[windows.y == label], axis=1)]) for label in range(3)}
    assert peak[1] < peak[0] < peak[2]  # upstairs slower, downstairs faster than walking
    assert 1.3 < peak[1] and peak[2] < 2.6
    energy = (body_vertical**2).mean(axis=1)
    assert energy[windows.y < 3].mean() > 20 * energy[windows.y >= 3].mean()


def test_paper_split_is_stratified_75_25(windows):
    train, test = split_indices(windows, "paper", seed=0)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == len(windows.y)
    for label in range(6):
        n = (windows.y == label).sum()
        assert (windows.y[test] == label).sum() == round(n * 0.25)


def test_subject_split_keeps_subjects_apart(windows):
    train, test = split_indices(windows, "subjects", seed=0)
    assert not set(windows.subjects[train]) & set(windows.subjects[test])


def test_unknown_split_and_dataset_are_clear(windows):
    with pytest.raises(DatasetError, match="unknown split 'random'.*paper, subjects"):
        split_indices(windows, "random", 0)
    with pytest.raises(UnknownNameError, match="unknown dataset 'har'.*synthetic-har"):
        load_dataset("har")


def test_standardisation_is_fitted_on_train_only():
    ds = load_dataset("synthetic-har", "paper", seed=0)
    assert np.allclose(ds.x_train.mean(axis=(0, 1)), 0, atol=1e-3)
    assert np.allclose(ds.x_train.std(axis=(0, 1)), 1, atol=1e-3)
    assert not np.allclose(ds.x_test.mean(axis=(0, 1)), 0, atol=1e-4)
    assert ds.generated and ds.input_shape == (128, 9) and ds.n_classes == 6


def test_bad_windows_are_named(windows):
    bad = Windows(windows.x[:, 0, 0], windows.y, windows.subjects, windows.official_train, windows.meta)
    with pytest.raises(DatasetError, match="inputs must be \\(n, ...\\) with at least one axis per input"):
        validate_windows(bad, "mine")
    bad = Windows(windows.x, windows.y[:-1], windows.subjects, windows.official_train, windows.meta)
    with pytest.raises(DatasetError, match="720 windows but 719 labels"):
        validate_windows(bad, "mine")


def _npz(path, **arrays):
    rng = np.random.default_rng(0)
    base = {
        "x_train": rng.normal(size=(60, 8, 8, 1)).astype(np.float32),
        "y_train": rng.integers(0, 3, 60),
        "x_test": rng.normal(size=(20, 8, 8, 1)).astype(np.float32),
        "y_test": rng.integers(0, 3, 20),
    }
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return str(path)


def test_a_npz_dataset_keeps_its_shape_split_and_values(tmp_path):
    path = _npz(tmp_path / "images.npz", class_names=np.array(["cat", "dog", "owl"]))
    ds = load_dataset(path, split="paper")
    assert ds.input_shape == (8, 8, 1) and ds.class_names == ("cat", "dog", "owl") and ds.split == "file"
    assert len(ds.x_train) == 60 and len(ds.x_test) == 20
    raw = np.load(path)
    np.testing.assert_array_equal(ds.x_test, raw["x_test"])  # the file's split, not standardised


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"y_test": None}, "missing key 'y_test'"),
        ({"y_train": np.zeros(59, np.int64)}, r"x_train \(60, 8, 8, 1\) and y_train \(59,\) do not match"),
        ({"y_train": np.zeros(60)}, "y_train must hold integer classes, got float64"),
        ({"x_test": np.zeros((20, 4, 4, 1), np.float32)}, r"x_train windows \(8, 8, 1\) differ from x_test's"),
    ],
)
def test_a_bad_npz_names_the_file_and_the_problem(tmp_path, arrays, message):
    path = _npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DatasetError, match=f"dataset {path}: {message}"):
        load_dataset(path)


def test_a_file_that_is_not_a_npz_is_named(tmp_path):
    path = tmp_path / "d.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="is not a readable .npz"):
        load_dataset(str(path))
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "none.npz"))
