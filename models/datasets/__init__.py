"""Datasets of inertial windows, their splits and the standardisation carried with a model.

A dataset loader returns :class:`Windows` (all windows with labels and subjects, plus
the official split if the dataset has one); :func:`load_dataset` splits them and fits
the per-channel standardisation on the training part only.
"""

from tinyhil.models.datasets import npz, synthetic_har, uci_har  # noqa: F401 - each registers its dataset
from tinyhil.models.datasets.base import (
    DATASETS,
    HAR_ACTIVITIES,
    HAR_CHANNELS,
    SPLITS,
    Dataset,
    DatasetError,
    Standardizer,
    Windows,
    fingerprint,
    load_dataset,
    load_windows,
    register_dataset,
    split_indices,
    validate_windows,
)

__all__ = [
    "DATASETS",
    "HAR_ACTIVITIES",
    "HAR_CHANNELS",
    "SPLITS",
    "Dataset",
    "DatasetError",
    "Standardizer",
    "Windows",
    "fingerprint",
    "load_dataset",
    "load_windows",
    "register_dataset",
    "split_indices",
    "validate_windows",
]
