"""Networks a user brings as files: a ready ``.tflite`` or a trained Keras model.

Each file becomes a network of its own in :data:`tinyhil.models.networks.NETWORKS` (id from the
file name), so it enters the matrix like a Table 1 network:

- a ``.tflite`` is neither trained nor converted; only the steps that work on a
  flatbuffer apply to it (``as_is``, TFLM LUT compression ``lut<bits>``);
- a Keras model (``.keras``, or ``.h5`` through tf_keras) is not trained; every
  technique applies, calibrated on the given dataset.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tinyhil.models.cache import file_sha256
from tinyhil.models.errors import ModelFileError
from tinyhil.models.inspection import ModelInfo, check_flatbuffer, inspect_tflite
from tinyhil.models.networks import NETWORKS, NetworkSpec
from tinyhil.models.training import TrainedModel

if TYPE_CHECKING:
    from tinyhil.models.datasets import Dataset

TFLITE_FAMILY = "tflite-file"
KERAS_FAMILY = "keras-file"
SUFFIXES = {".tflite": TFLITE_FAMILY, ".keras": KERAS_FAMILY, ".h5": KERAS_FAMILY}
# A .tflite larger than this is not parsed at start-up (parsing costs many times its size
# in memory): 16 MiB is the largest flash of an ESP32 module, so such a file fits no board
# of the family whole and its cases are judged from its size (flash_overflow).
PARSE_LIMIT_BYTES = 16 << 20


def is_model_file(token: str) -> bool:
    """True when a ``--networks`` entry names a model file rather than a network id."""
    return Path(token).suffix in SUFFIXES


def register_model_file(path: str | Path) -> NetworkSpec:
    """Checks a model file and registers it as a network; returns its spec.

    The id is the file name without its suffix (characters other than letters, digits,
    ``_`` and ``.`` become ``_``).

    Raises:
        ModelFileError: for a missing or unreadable file, a .tflite that is not a
            flatbuffer, or an id already taken by another network.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelFileError(f"--networks: model file {path} does not exist")
    family = SUFFIXES[path.suffix]
    if family == TFLITE_FAMILY:
        # a broken file stops the run here; a huge one is only hashed (its cases judge it by size)
        with open(path, "rb") as f:
            _check_own_flatbuffer(f.read(16), path)  # the identifier only
        if path.stat().st_size <= PARSE_LIMIT_BYTES:
            inspect_tflite(path.read_bytes(), str(path))
    net_id = re.sub(r"[^A-Za-z0-9_.]", "_", path.stem)
    spec = NetworkSpec(
        id=net_id,
        family=family,
        params={"path": str(path.resolve()), "sha256": file_sha256(path)},
    )
    if net_id in NETWORKS:
        known = NETWORKS.get(net_id)
        if known == spec:
            return known
        raise ModelFileError(f"--networks: {path} would be network {net_id!r}, which is already taken; rename the file")
    NETWORKS.add(net_id, spec)
    return spec


def _check_own_flatbuffer(head: bytes, path: Path) -> None:
    """A user's .tflite that is not a flatbuffer: the advice is about their file, not a cache entry."""
    try:
        check_flatbuffer(head, str(path))
    except ModelFileError:
        raise ModelFileError(
            f"--networks: {path} is not a TFLite flatbuffer (identifier {head[4:8]!r}, expected b'TFL3'): "
            "give a .tflite written by the TFLite converter (a cut-short copy or download reads like this)"
        ) from None


def is_flatbuffer_network(spec: NetworkSpec) -> bool:
    return spec.family == TFLITE_FAMILY


def is_keras_file_network(spec: NetworkSpec) -> bool:
    return spec.family == KERAS_FAMILY


def data_fits(info: ModelInfo, dataset: Dataset) -> bool:
    """True when the model takes the dataset's inputs and has one output per class (accuracy is defined)."""
    return tuple(info.input_shape[1:]) == tuple(dataset.input_shape) and (
        bool(info.output_shape) and info.output_shape[-1] == dataset.n_classes
    )


def flatbuffer_model(spec: NetworkSpec) -> TrainedModel:
    """A ready .tflite as the pipeline's starting point: the flatbuffer itself, nothing trained."""
    path = Path(spec.params["path"])
    return TrainedModel(
        model=path.read_bytes(), key=spec.params["sha256"], path=path, meta={"source": str(path)}, from_cache=True
    )


def load_keras_file(spec: NetworkSpec, dataset: Dataset) -> TrainedModel:
    """A user's trained Keras model: loaded, not trained; its accuracy on the dataset when it takes its inputs.

    Raises:
        ModelFileError: when tf_keras cannot load the file.
    """
    import tf_keras

    path = Path(spec.params["path"])
    try:
        model = tf_keras.models.load_model(path, compile=False)
    except Exception as e:  # tf_keras raises many types for a bad file
        raise ModelFileError(f"{path}: tf_keras cannot load it ({type(e).__name__}: {e})") from None
    meta: dict = {"source": str(path), "params": int(model.count_params())}
    if tuple(model.input_shape[1:]) == tuple(dataset.input_shape) and model.output_shape[-1] == dataset.n_classes:
        scores = model.predict(dataset.x_test, batch_size=256, verbose=0)
        meta["keras_accuracy"] = float(np.mean(np.argmax(scores, axis=1) == dataset.y_test))
    return TrainedModel(model=model, key=spec.params["sha256"], path=path, meta=meta, from_cache=True)
