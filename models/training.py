"""Training, deterministic from a seed, cached by a hash of everything that affects the weights."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.cache import DEFAULT_CACHE_DIR, cached_dir, content_key
from models.datasets import Dataset
from models.networks import NetworkSpec, build_model
from models.registry import Registry

PROFILES_PATH = Path(__file__).parent / "data" / "profiles.json"
TRAINING_CODE_VERSION = 1  # bump when this module changes how weights come out
PROFILES: Registry[dict] = Registry("training profile")
for _name, _profile in json.loads(PROFILES_PATH.read_text()).items():
    PROFILES.add(_name, _profile)


@dataclass
class TrainedModel:
    """A trained Keras model and what is known about it.

    Attributes:
        model: The ``tf_keras.Model``.
        key: Cache key of the weights.
        path: Cache entry holding ``weights.h5`` and ``meta.json``.
        meta: Training record: base (Keras) test accuracy, history, seconds, versions.
        from_cache: True when no training happened in this process.
    """

    model: Any
    key: str
    path: Path
    meta: dict
    from_cache: bool


def library_versions() -> dict[str, str]:
    import tensorflow as tf
    import tf_keras

    return {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "numpy": np.__version__}


def training_key(spec: NetworkSpec, dataset: Dataset, profile: str, seed: int) -> str:
    """Hash of architecture, dataset (content and split), seed, profile and library versions."""
    return content_key(
        {
            "network": spec.as_dict(),
            "input_shape": dataset.input_shape,
            "n_classes": dataset.n_classes,
            "dataset": dataset.fingerprint,
            "seed": seed,
            "profile": PROFILES.get(profile),
            "versions": library_versions(),
            "code": TRAINING_CODE_VERSION,
        }
    )


def _seed_everything(seed: int) -> None:
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except RuntimeError:  # already enabled after ops ran
        pass


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _progress_callback(label: str, epochs: int, report: Callable[[str], None]):
    """A Keras callback that reports one line per epoch."""
    import tf_keras

    class Progress(tf_keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t0 = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            extra = f" val_acc={logs['val_accuracy']:.3f}" if "val_accuracy" in logs else ""
            report(
                f"[train {label}] epoch {epoch + 1}/{epochs} loss={logs.get('loss', 0):.3f} "
                f"acc={logs.get('accuracy', 0):.3f}{extra} ({time.monotonic() - self.t0:.1f} s)"
            )

    return Progress()


def train(
    spec: NetworkSpec,
    dataset: Dataset,
    profile: str = "quick",
    seed: int = 0,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    progress: Callable[[str], None] = _print_progress,
) -> TrainedModel:
    """Returns the trained model of ``spec`` on ``dataset``, training only on a cache miss.

    Several processes asking for the same model wait for one to train it.

    Args:
        spec: The network.
        dataset: Standardised, split dataset.
        profile: Training profile name (``quick`` or ``paper``).
        seed: Seeds weight initialisation, shuffling and dropout.
        cache_dir: Cache root.
        progress: Receives one line per epoch (stderr by default; the pytest plugin
            sends them to the terminal, past pytest's output capture).

    Raises:
        UnknownNameError: for an unknown profile.
    """
    import tf_keras

    prof = PROFILES.get(profile)
    key = training_key(spec, dataset, profile, seed)

    def build(tmp: Path) -> None:
        _seed_everything(seed)
        model = build_model(spec, dataset.input_shape, dataset.n_classes)
        model.compile(
            optimizer=tf_keras.optimizers.Adam(prof["learning_rate"]),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        callbacks = [_progress_callback(f"{spec.id} {profile}", prof["epochs"], progress)]
        if prof["early_stopping_patience"]:
            callbacks.append(
                tf_keras.callbacks.EarlyStopping(
                    monitor="val_accuracy", patience=prof["early_stopping_patience"], restore_best_weights=True
                )
            )
        t0 = time.monotonic()
        hist = model.fit(
            dataset.x_train,
            dataset.y_train,
            epochs=prof["epochs"],
            batch_size=prof["batch_size"],
            validation_split=prof["validation_fraction"],
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
        seconds = time.monotonic() - t0
        _, base_acc = model.evaluate(dataset.x_test, dataset.y_test, batch_size=256, verbose=0)
        model.save_weights(tmp / "weights.h5")
        meta = {
            "network": spec.id,
            "profile": profile,
            "seed": seed,
            "dataset": dataset.name,
            "split": dataset.split,
            "dataset_fingerprint": dataset.fingerprint,
            "keras_accuracy": float(base_acc),
            "epochs_run": len(hist.history["loss"]),
            "train_seconds": round(seconds, 2),
            "history": {k: [float(v) for v in vs] for k, vs in hist.history.items()},
            "standardizer": dataset.standardizer.as_dict(),
            "params": int(model.count_params()),
            "versions": library_versions(),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))

    path, hit = cached_dir(cache_dir, "models", spec.id, key, build)
    model = build_model(spec, dataset.input_shape, dataset.n_classes)
    model.load_weights(path / "weights.h5")
    return TrainedModel(
        model=model, key=key, path=path, meta=json.loads((path / "meta.json").read_text()), from_cache=hit
    )
