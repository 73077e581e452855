"""Windows, splits, standardisation and the dataset registry.

Loader modules (:mod:`~tinyhil.models.datasets.synthetic_har`, :mod:`~tinyhil.models.datasets.uci_har`)
import this module and register here; the package's ``__init__`` imports them all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyhil.models.errors import DatasetError
from tinyhil.models.registry import Registry
from tinyhil.splits import SPLITS

HAR_ACTIVITIES = (
    "WALKING",
    "WALKING_UPSTAIRS",
    "WALKING_DOWNSTAIRS",
    "SITTING",
    "STANDING",
    "LAYING",
)
HAR_CHANNELS = (
    "body_acc_x",
    "body_acc_y",
    "body_acc_z",
    "body_gyro_x",
    "body_gyro_y",
    "body_gyro_z",
    "total_acc_x",
    "total_acc_y",
    "total_acc_z",
)


@dataclass
class Windows:
    """Every window of a dataset before splitting.

    Attributes:
        x: ``(n, timesteps, channels)`` float32.
        y: ``(n,)`` int labels in ``0..n_classes-1``.
        subjects: ``(n,)`` subject ids.
        official_train: ``(n,)`` bool, the dataset's own train/test split by subject.
        meta: Name, provenance and generator parameters; part of the fingerprint.
    """

    x: np.ndarray
    y: np.ndarray
    subjects: np.ndarray
    official_train: np.ndarray
    meta: dict


@dataclass(frozen=True)
class Standardizer:
    """Per-channel standardisation fitted on the training split.

    It travels with the trained model (cache metadata, exported C header) so that the
    host runtime, the virtual board and the ESP32 all see the same inputs.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        """Mean and standard deviation of each channel (the last axis) over everything else."""
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axis=axes)
        std = x.std(axis=axes)
        std = np.where(std < 1e-8, 1.0, std)
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std))

    @classmethod
    def identity(cls, channels: int) -> Standardizer:
        """Leaves the inputs as they are (a user's data, for a model that expects it so)."""
        return cls((0.0,) * channels, (1.0,) * channels)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return ((x - np.asarray(self.mean)) / np.asarray(self.std)).astype(np.float32)

    def as_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}


@dataclass
class Dataset:
    """A split, standardised dataset ready for training and evaluation.

    Attributes:
        name: Registry name, or the file a user's dataset came from.
        split: ``paper`` (pooled 75/25 stratified), ``subjects`` (official) or ``file``
            (a dataset file's own split).
        x_train, y_train, x_test, y_test: Standardised float32 windows and labels.
        standardizer: Fitted on ``x_train`` before standardisation.
        class_names, channel_names: Label and channel names.
        sample_rate_hz: Sampling rate of the windows.
        generated: True when the windows were generated, not recorded.
        fingerprint: sha256 over the arrays and metadata; part of every cache key.
    """

    name: str
    split: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    standardizer: Standardizer
    class_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    sample_rate_hz: float
    generated: bool
    fingerprint: str
    meta: dict

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One input without the batch axis: ``(timesteps, channels)`` for the HAR windows."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


DatasetLoader = Callable[[Path | None, int], Windows]
DATASETS: Registry[DatasetLoader] = Registry("dataset")


def register_dataset(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Registers ``loader(data_dir, seed) -> Windows`` under ``name``."""
    return DATASETS.register(name)


# Datasets named by a file path instead of a registered name: (accepts(name), load(path)).
FILE_LOADERS: list[tuple[Callable[[str], bool], Callable[[Path], Windows]]] = []


def register_file_loader(accepts: Callable[[str], bool]) -> Callable[[Callable[[Path], Windows]], Callable]:
    """Registers ``load(path) -> Windows`` for ``--dataset`` values ``accepts`` recognises (``*.npz``)."""

    def deco(load: Callable[[Path], Windows]) -> Callable[[Path], Windows]:
        FILE_LOADERS.append((accepts, load))
        return load

    return deco


def load_windows(name: str, data_dir: Path | None = None, seed: int = 0) -> Windows:
    """The windows of a registered dataset or of a dataset file.

    Raises:
        UnknownNameError: for an unknown name that no file loader accepts.
        DatasetError: for a missing or malformed dataset.
    """
    for accepts, load in FILE_LOADERS:
        if accepts(name):
            return load(Path(name))
    return DATASETS.get(name)(data_dir, seed)


def split_indices(windows: Windows, split: str, seed: int, test_fraction: float = 0.25):
    """Returns ``(train_idx, test_idx)`` for a split.

    ``paper`` pools every window and draws a stratified, seeded ``test_fraction`` per
    class, as the reference study's 75 % / 25 % split. ``subjects`` uses the dataset's
    own subject-wise split.

    Raises:
        DatasetError: for an unknown split.
    """
    if split == "subjects":
        train = np.flatnonzero(windows.official_train)
        test = np.flatnonzero(~windows.official_train)
    elif split == "paper":
        rng = np.random.default_rng(seed)
        train_parts, test_parts = [], []
        for label in np.unique(windows.y):
            idx = rng.permutation(np.flatnonzero(windows.y == label))
            n_test = int(round(len(idx) * test_fraction))
            test_parts.append(idx[:n_test])
            train_parts.append(idx[n_test:])
        train, test = np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(test_parts))
    else:
        raise DatasetError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    if len(train) == 0 or len(test) == 0:
        raise DatasetError(f"split {split!r} leaves an empty train or test part")
    return train, test


def fingerprint(windows: Windows, split: str, seed: int) -> str:
    """sha256 over the windows, labels, subjects, metadata and split choice."""
    h = hashlib.sha256()
    for arr in (windows.x, windows.y, windows.subjects, windows.official_train):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps({"meta": windows.meta, "split": split, "seed": seed}, sort_keys=True).encode())
    return h.hexdigest()


def load_dataset(name: str, split: str = "paper", data_dir: Path | None = None, seed: int = 0) -> Dataset:
    """Loads, splits and standardises a registered dataset.

    Args:
        name: Registered dataset name (``synthetic-har``, ``uci-har``).
        split: ``paper`` or ``subjects``.
        data_dir: Where a recorded dataset lives (ignored by generated ones).
        seed: Seeds generation and the ``paper`` split.

    Raises:
        UnknownNameError: for an unknown dataset.
        DatasetError: for a missing or malformed dataset, or an unknown split.
    """
    windows = load_windows(name, data_dir, seed)
    validate_windows(windows, source=name)
    if windows.meta.get("fixed_split"):
        split = "file"  # a dataset file brings its own split
    train, test = split_indices(windows, "subjects" if split == "file" else split, seed)
    standardizer = (
        Standardizer.fit(windows.x[train])
        if windows.meta.get("standardize", True)
        else Standardizer.identity(windows.x.shape[-1])
    )
    return Dataset(
        name=name,
        split=split,
        x_train=standardizer.apply(windows.x[train]),
        y_train=windows.y[train].astype(np.int64),
        x_test=standardizer.apply(windows.x[test]),
        y_test=windows.y[test].astype(np.int64),
        standardizer=standardizer,
        class_names=tuple(windows.meta.get("class_names", HAR_ACTIVITIES)),
        channel_names=tuple(windows.meta.get("channel_names", HAR_CHANNELS)),
        sample_rate_hz=float(windows.meta.get("sample_rate_hz", 50.0)),
        generated=bool(windows.meta.get("generated", False)),
        fingerprint=fingerprint(windows, split, seed),
        meta=windows.meta,
    )


def validate_windows(windows: Windows, source: str) -> None:
    """Checks shapes and labels; raises :class:`DatasetError` naming what was expected."""
    x, y = windows.x, windows.y
    if x.ndim < 2:
        raise DatasetError(f"{source}: inputs must be (n, ...) with at least one axis per input, got shape {x.shape}")
    n = len(x)
    for name, arr in (("labels", y), ("subjects", windows.subjects), ("official split", windows.official_train)):
        if len(arr) != n:
            raise DatasetError(f"{source}: {n} windows but {len(arr)} {name}")
    n_classes = len(windows.meta.get("class_names", HAR_ACTIVITIES))
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise DatasetError(f"{source}: labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    if not np.isfinite(x).all():
        raise DatasetError(f"{source}: windows contain NaN or infinite values")
