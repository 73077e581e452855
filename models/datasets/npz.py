"""A user's dataset in one ``.npz`` file: ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Optional: ``class_names`` (one string per class). Inputs may have any shape after the
batch axis; labels are integer classes ``0..k-1``. The file's own train/test split is
used as it is, and the inputs are not standardised: a model brought with the data
expects them as they are.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from tinyhil.models.datasets.base import Windows, register_file_loader
from tinyhil.models.errors import DatasetError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
LAYOUT = "x_train (n, ...), y_train (n,), x_test (m, ...), y_test (m,), optional class_names (k,)"


def is_npz(name: str) -> bool:
    """True when a ``--dataset`` value names a .npz file rather than a registered dataset."""
    return name.endswith(".npz")


@register_file_loader(is_npz)
def load_windows(path: Path) -> Windows:
    """Reads and checks the file.

    Raises:
        DatasetError: naming the file and the missing key or the wrong shape.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"dataset {path} does not exist; give a .npz with {LAYOUT}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"dataset {path} is not a readable .npz ({e}); it must hold {LAYOUT}") from None
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise DatasetError(f"dataset {path}: missing key {missing[0]!r}; it must hold {LAYOUT}")
    x_tr, y_tr, x_te, y_te = (arrays[k] for k in REQUIRED)
    for name, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise DatasetError(
                f"dataset {path}: x_{name} {x.shape} and y_{name} {y.shape} do not match; it must hold {LAYOUT}"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(f"dataset {path}: y_{name} must hold integer classes, got {y.dtype}")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DatasetError(f"dataset {path}: x_train windows {x_tr.shape[1:]} differ from x_test's {x_te.shape[1:]}")
    n_classes = int(max(y_tr.max(), y_te.max())) + 1
    names = [str(c) for c in arrays["class_names"]] if "class_names" in arrays else [str(i) for i in range(n_classes)]
    if len(names) < n_classes:
        raise DatasetError(f"dataset {path}: {len(names)} class_names for labels up to {n_classes - 1}")
    n_tr, n_te = len(x_tr), len(x_te)
    return Windows(
        x=np.concatenate([x_tr, x_te]).astype(np.float32),
        y=np.concatenate([y_tr, y_te]).astype(np.int64),
        subjects=np.zeros(n_tr + n_te, np.int64),
        official_train=np.concatenate([np.ones(n_tr, bool), np.zeros(n_te, bool)]),
        meta={
            "name": path.stem,
            "provenance": f"user file {path.name}",
            "class_names": names,
            "channel_names": [],
            "standardize": False,
            "fixed_split": True,
            "generated": False,
        },
    )
