"""Training, deterministic from a seed, cached by a hash of everything that affects the weights.

A profile (``models/data/profiles.json``) is the training recipe; its ``families`` entry
overrides the recipe per network family (:func:`training_recipe`). The recipe keys:

- ``epochs``, ``batch_size``, ``learning_rate``: Adam, sparse categorical cross-entropy;
- ``lr_schedule``: ``cosine`` (decays to zero over ``epochs``), ``plateau`` (halves the
  rate after 3 epochs without a better ``monitor``) or ``constant``;
- ``validation_fraction``: a class-stratified, seeded share of the training split held out
  for validation (0: none);
- ``monitor``: ``val_loss`` or ``val_accuracy``, what early stopping, ``keep_best`` and
  ``plateau`` watch;
- ``early_stopping_patience``: epochs without a better ``monitor`` before training stops
  (0: never);
- ``keep_best``: restore the weights of the epoch with the best ``monitor``;
- ``dropout_epochs``: epochs, from the start, with the network's dropout active; the rest
  train with dropout off, as the deployed (inference-mode) network runs (null: all);
- ``finetune_epochs``: not used here: the compression transforms
  (``models/compression/keras_steps.py``) fine-tune for that many epochs with the recipe's
  batch size, half its learning rate and its dropout setting; distillation trains the
  student for ``epochs``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinyhil import resources
from tinyhil.models.cache import DEFAULT_CACHE_DIR, cached_dir, content_key, is_cached
from tinyhil.models.datasets import Dataset
from tinyhil.models.networks import NetworkSpec, build_model, dropout_off
from tinyhil.models.registry import Registry

PROFILES_PATH = resources.data("profiles.json")
# Bump when this module changes how weights come out. 2: own stratified validation split,
# LR schedules, dropout phase, best weights by validation loss, per-family recipes.
TRAINING_CODE_VERSION = 2
PROFILES: Registry[dict] = Registry("training profile")
for _name, _profile in json.loads(PROFILES_PATH.read_text()).items():
    PROFILES.add(_name, _profile)

# Recipe keys that do not change the trained weights, left out of the cache key.
_NOT_IN_KEY = ("description", "finetune_epochs")
LR_SCHEDULES = ("constant", "cosine", "plateau")
MONITORS = ("val_loss", "val_accuracy")


class TrainedModel:
    """A trained Keras model and what is known about it.

    Attributes:
        model: The ``tf_keras.Model``, built on first use: a case whose conversion is
            cached never imports TensorFlow for it.
        key: Cache key of the weights.
        path: Cache entry holding ``weights.h5`` and ``meta.json``.
        meta: Training record: base (Keras) test accuracy, history, seconds, versions.
        from_cache: True when no training happened in this process.
    """

    def __init__(
        self,
        model: Any = None,
        key: str = "",
        path: Path | None = None,
        meta: dict | None = None,
        from_cache: bool = False,
        load: Callable[[], Any] | None = None,
    ):
        if model is None and load is None:
            raise ValueError("TrainedModel needs a model or a function that loads it")
        self._model, self._load = model, load
        self.key, self.path, self.meta, self.from_cache = key, path, meta or {}, from_cache

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self._load()
        return self._model


def library_versions() -> dict[str, str]:
    """Installed TensorFlow, tf_keras and numpy versions, read without importing TensorFlow
    (so a process that only checks the cache does not pay for the import)."""
    from importlib.metadata import version

    return {name: version(name) for name in ("tensorflow", "tf_keras", "numpy")}


def training_recipe(profile: str, spec: NetworkSpec) -> dict:
    """The settings of ``profile`` for ``spec``: the profile's keys, overridden by its family's.

    Args:
        profile: Training profile name.
        spec: The network; its family selects the overrides under ``families``.

    Raises:
        UnknownNameError: for an unknown profile.
        ValueError: for an unknown ``lr_schedule``.
    """
    prof = dict(PROFILES.get(profile))
    families = prof.pop("families", {})
    recipe = {
        "lr_schedule": "constant",
        "validation_fraction": 0.0,
        "early_stopping_patience": 0,
        "monitor": "val_loss",
        "keep_best": False,
        "dropout_epochs": None,
        **prof,
        **families.get(spec.family, {}),
    }
    if recipe["lr_schedule"] not in LR_SCHEDULES:
        raise ValueError(f"profile {profile!r}: lr_schedule must be one of {', '.join(LR_SCHEDULES)}")
    if recipe["monitor"] not in MONITORS:
        raise ValueError(f"profile {profile!r}: monitor must be one of {', '.join(MONITORS)}")
    return recipe


def training_key(spec: NetworkSpec, dataset: Dataset, profile: str, seed: int) -> str:
    """Hash of architecture, dataset (content and split), seed, recipe, code and library versions."""
    recipe = {k: v for k, v in training_recipe(profile, spec).items() if k not in _NOT_IN_KEY}
    return content_key(
        {
            "network": spec.as_dict(),
            "input_shape": dataset.input_shape,
            "n_classes": dataset.n_classes,
            "dataset": dataset.fingerprint,
            "seed": seed,
            "profile": profile,
            "recipe": recipe,
            "versions": library_versions(),
            "code": TRAINING_CODE_VERSION,
        }
    )


def is_trained(spec: NetworkSpec, dataset: Dataset, profile: str, seed: int, cache_dir: Path) -> bool:
    """True when :func:`train` would load ``spec`` from the cache instead of training it."""
    return is_cached(cache_dir, "models", spec.id, training_key(spec, dataset, profile, seed))


def validation_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(train_idx, val_idx)``: a seeded ``fraction`` of every class held out.

    Keras' ``validation_split`` takes the last rows instead; the training split is ordered
    by subject, so that was a few subjects with unbalanced classes, a biased and noisy
    signal for early stopping.

    Args:
        y: Training labels.
        fraction: Share of each class to hold out (0 holds out nothing).
        seed: Seeds the draw.
    """
    if fraction <= 0:
        return np.arange(len(y)), np.arange(0)
    rng = np.random.default_rng([seed, 16])  # a stream of its own, apart from the dataset split's
    val = []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        val.append(idx[: max(1, int(round(len(idx) * fraction)))])
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(y)), val_idx), val_idx


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


def _current_lr(optimizer: Any) -> float:
    lr = optimizer.learning_rate
    if callable(lr):  # a schedule: its value at the current step
        lr = lr(optimizer.iterations)
    return float(np.asarray(lr))


def _progress_callback(label: str, epochs: int, report: Callable[[str], None], t0: float):
    """A Keras callback that reports one line per epoch: loss, accuracy, validation, LR, time."""
    import tf_keras

    class Progress(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            val = "".join(
                f" {name}={logs[key]:.3f}"
                for key, name in (("val_loss", "val_loss"), ("val_accuracy", "val_acc"))
                if key in logs
            )
            report(
                f"[train {label}] epoch {epoch + 1}/{epochs} loss={logs.get('loss', 0):.3f} "
                f"acc={logs.get('accuracy', 0):.3f}{val} lr={_current_lr(self.model.optimizer):.2g} "
                f"({time.monotonic() - t0:.1f} s)"
            )

    return Progress()


def _learning_rate(recipe: dict, steps_per_epoch: int) -> Any:
    import tf_keras

    if recipe["lr_schedule"] == "cosine":
        # Decays to zero at the last epoch: the final epochs take small steps, so the weights
        # that come out no longer depend on where the last large step happened to land.
        return tf_keras.optimizers.schedules.CosineDecay(
            recipe["learning_rate"], decay_steps=steps_per_epoch * recipe["epochs"], alpha=0.0
        )
    return recipe["learning_rate"]


def _phases(recipe: dict) -> list[tuple[int, int, bool]]:
    """``(first_epoch, end_epoch, dropout_on)`` of each training phase, empty ones left out."""
    epochs = recipe["epochs"]
    split = epochs if recipe["dropout_epochs"] is None else max(0, min(recipe["dropout_epochs"], epochs))
    return [(a, b, on) for a, b, on in ((0, split, True), (split, epochs, False)) if b > a]


def _disable_dropout(model: Any) -> None:
    """Switches the dropout layers off and retraces the training step so that it sees it."""
    dropout_off(model)
    model.make_train_function(force=True)


def _fit(model: Any, recipe: dict, dataset: Dataset, seed: int, label: str, report: Callable[[str], None]) -> dict:
    """Trains ``model`` (compiled here) by ``recipe``; returns the merged history and the kept epoch."""
    import tf_keras

    train_idx, val_idx = validation_split(dataset.y_train, recipe["validation_fraction"], seed)
    x, y = dataset.x_train[train_idx], dataset.y_train[train_idx]
    val = (dataset.x_train[val_idx], dataset.y_train[val_idx]) if len(val_idx) else None
    if val is None and (recipe["keep_best"] or recipe["early_stopping_patience"]):
        raise ValueError(f"[{label}] keep_best and early stopping need a validation_fraction above 0")
    batch_size = recipe["batch_size"]
    model.compile(
        optimizer=tf_keras.optimizers.Adam(_learning_rate(recipe, -(-len(x) // batch_size))),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    t0 = time.monotonic()
    callbacks = [_progress_callback(label, recipe["epochs"], report, t0)]
    if recipe["lr_schedule"] == "plateau":
        callbacks.append(
            tf_keras.callbacks.ReduceLROnPlateau(monitor=recipe["monitor"] if val else "loss", factor=0.5, patience=3)
        )
    history: dict[str, list[float]] = {}
    stopper = None
    phases = _phases(recipe)
    for first, end, dropout_on in phases:
        if not dropout_on:
            _disable_dropout(model)
        phase_callbacks = list(callbacks)
        if (first, end, dropout_on) == phases[-1] and (recipe["keep_best"] or recipe["early_stopping_patience"]):
            # Only in the last phase: with dropout on, the inference-mode validation loss is not
            # what the phase optimises, and weights from before the dropout-free phase are not final.
            stopper = tf_keras.callbacks.EarlyStopping(
                monitor=recipe["monitor"],
                patience=recipe["early_stopping_patience"] or recipe["epochs"],
                restore_best_weights=recipe["keep_best"],
            )
            phase_callbacks.append(stopper)
        hist = model.fit(
            x,
            y,
            initial_epoch=first,
            epochs=end,
            batch_size=batch_size,
            validation_data=val,
            shuffle=True,
            callbacks=phase_callbacks,
            verbose=0,
        )
        for k, vs in hist.history.items():
            history.setdefault(k, []).extend(float(v) for v in vs)
    epochs_run = len(history["loss"])
    kept = stopper.best_epoch + 1 if stopper is not None and recipe["keep_best"] else epochs_run
    return {
        "history": history,
        "epochs_run": epochs_run,
        "kept_epoch": kept,
        "train_windows": len(x),
        "validation_windows": len(val_idx),
        "seconds": time.monotonic() - t0,
    }


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
        seed: Seeds weight initialisation, the validation split, shuffling and dropout.
        cache_dir: Cache root.
        progress: Receives one line per epoch, then one summary line (stderr by default;
            the pytest plugin sends them to the terminal, past pytest's output capture).
            Every line starts with ``[train <network> <profile>]``.

    Raises:
        UnknownNameError: for an unknown profile.
    """
    recipe = training_recipe(profile, spec)
    key = training_key(spec, dataset, profile, seed)
    label = f"{spec.id} {profile}"

    def build(tmp: Path) -> None:
        _seed_everything(seed)
        model = build_model(spec, dataset.input_shape, dataset.n_classes)
        run = _fit(model, recipe, dataset, seed, label, progress)
        _, base_acc = model.evaluate(dataset.x_test, dataset.y_test, batch_size=256, verbose=0)
        progress(
            f"[train {label}] done: {run['epochs_run']} epochs, kept epoch {run['kept_epoch']}, "
            f"test acc={base_acc:.3f} ({run['seconds']:.1f} s)"
        )
        model.save_weights(tmp / "weights.h5")
        meta = {
            "network": spec.id,
            "profile": profile,
            "recipe": recipe,
            "seed": seed,
            "dataset": dataset.name,
            "split": dataset.split,
            "dataset_fingerprint": dataset.fingerprint,
            "keras_accuracy": float(base_acc),
            "epochs_run": run["epochs_run"],
            "kept_epoch": run["kept_epoch"],
            "train_windows": run["train_windows"],
            "validation_windows": run["validation_windows"],
            "train_seconds": round(run["seconds"], 2),
            "history": run["history"],
            "standardizer": dataset.standardizer.as_dict(),
            "params": int(model.count_params()),
            "versions": library_versions(),
            "code": TRAINING_CODE_VERSION,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))

    path, hit = cached_dir(cache_dir, "models", spec.id, key, build)

    def load() -> Any:
        model = build_model(spec, dataset.input_shape, dataset.n_classes)
        model.load_weights(path / "weights.h5")
        return model

    return TrainedModel(
        key=key, path=path, meta=json.loads((path / "meta.json").read_text()), from_cache=hit, load=load
    )
