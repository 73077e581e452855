"""The networks of the reference study (Table 1), registered by id.

The hyper-parameters live in ``models/data/table1.json``; this module only knows how to
turn a family's spec into a Keras model. A new family plugs in with
:func:`register_family`.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyhil import resources
from tinyhil.models.errors import TinyhilError
from tinyhil.models.registry import Registry


class NetworkFileError(TinyhilError):
    """A user's builders file that is missing, fails to import or adds nothing."""


TABLE1_PATH = resources.data("table1.json")


@dataclass(frozen=True)
class NetworkSpec:
    """One row of Table 1.

    Attributes:
        id: The paper's id (``C_3``, ``CL_3``).
        family: The network type (``1D_CNN``, ``1D_CNN_LSTM``).
        params: Hyper-parameters of the row (filters, kernel, lstm_units, dense).
        family_params: Hyper-parameters shared by the family (dropout, pool size).
    """

    id: str
    family: str
    params: dict[str, Any]
    family_params: dict[str, Any] = field(default_factory=dict)

    @property
    def size_rank(self) -> int:
        """Position of the network within its family, smallest first (for plots); 0 when the id has none."""
        tail = self.id.split("_")[-1]
        return int(tail) if tail.isdigit() else 0

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "family": self.family, **self.params, **self.family_params}


FamilyBuilder = Callable[[NetworkSpec, tuple[int, int], int], Any]
FAMILIES: Registry[FamilyBuilder] = Registry("network family")
NETWORKS: Registry[NetworkSpec] = Registry("network")


def register_family(name: str) -> Callable[[FamilyBuilder], FamilyBuilder]:
    """Registers a builder ``(spec, input_shape, n_classes) -> keras.Model`` for a family."""
    return FAMILIES.register(name)


def add_network(net_id: str, family: str, **params: Any) -> NetworkSpec:
    """Registers a network of a registered family, as a user's builders file does.

    Example, in ``my_nets.py`` (run with ``--networks-from=my_nets.py``)::

        from tinyhil.models.networks import add_network, register_family

        @register_family("mlp")
        def build_mlp(spec, input_shape, n_classes): ...

        add_network("mlp_16", "mlp", units=16)

    Raises:
        UnknownNameError: for an unknown family.
        ValueError: for an id that is taken.
    """
    FAMILIES.get(family)
    spec = NetworkSpec(id=net_id, family=family, params=dict(params), family_params=dict(_loading_extras))
    NETWORKS.add(net_id, spec)
    return spec


# What every network registered while a builders file loads carries (the file's sha256),
# so a changed builder is a new cache key.
_loading_extras: dict[str, Any] = {}
_loaded_builders: dict[Path, str] = {}


# How long a builders file may take to import: it only defines functions and calls
# add_network, so anything longer is a file that hangs (a loop, a wait on the network).
IMPORT_TIMEOUT_S = 30


class _ImportTimeout(BaseException):
    """Raised in the main thread by the alarm; a BaseException so that the user's own
    ``except Exception`` cannot swallow it."""


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Raises :class:`_ImportTimeout` after ``seconds`` (SIGALRM: main thread on POSIX only;
    elsewhere no limit). The alarm interrupts Python code between bytecodes and blocking
    system calls such as sleep, in this process: no child process, so the file's
    registrations land in this interpreter."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise _ImportTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def load_builders(path: Path, timeout_s: int = IMPORT_TIMEOUT_S) -> list[str]:
    """Imports a user's builders file once; returns the ids of the networks it added.

    Args:
        path: The builders file.
        timeout_s: Longest the import may take.

    Raises:
        NetworkFileError: for a missing file, one that fails to import (with its error)
            or that does not finish importing within ``timeout_s``.
    """
    import hashlib
    import importlib.util
    import traceback

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise NetworkFileError(f"--networks-from: {path} does not exist; give a Python file that calls add_network")
    if path in _loaded_builders:
        return [n for n in NETWORKS.names() if NETWORKS.get(n).family_params.get("builders") == str(path)]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    before = set(NETWORKS.names())
    _loading_extras.update(builders=str(path), builders_sha256=digest)
    try:
        spec = importlib.util.spec_from_file_location(f"tinyhil_user_builders_{digest[:12]}", path)
        module = importlib.util.module_from_spec(spec)
        with _time_limit(timeout_s):
            spec.loader.exec_module(module)
    except _ImportTimeout:
        raise NetworkFileError(
            f"--networks-from: {path} did not finish importing within {timeout_s} s (a loop, or a wait at import?); "
            "a builders file should only define builders and call add_network"
        ) from None
    except Exception as e:  # a user's file can raise anything while it loads
        where = traceback.extract_tb(e.__traceback__)[-1]
        raise NetworkFileError(
            f"--networks-from: {path} failed to load: {type(e).__name__}: {e} (line {where.lineno})"
        ) from None
    finally:
        _loading_extras.clear()
    _loaded_builders[path] = digest
    added = [n for n in NETWORKS.names() if n not in before]
    if not added:
        raise NetworkFileError(f"--networks-from: {path} adds no network; call add_network(id, family, **params)")
    return added


def check_builders(network_ids: list[str], input_shape: tuple[int, ...], n_classes: int) -> None:
    """Builds each network of a user's builders file once, so that a builder that raises or
    returns no usable model stops the run before any case, naming the builder.

    Networks of tinyhil's own families are skipped. Building imports tf_keras (a few
    seconds); a run that selects a user's network builds it anyway to train or load it.

    Raises:
        NetworkFileError: naming the builder, its file and what it gave.
    """
    for net_id in network_ids:
        spec = NETWORKS.get(net_id)
        source = spec.family_params.get("builders")
        if source is None:
            continue
        builder = FAMILIES.get(spec.family)
        where = f"--networks-from: {source}: {builder.__name__} (family {spec.family!r}, network {net_id})"
        try:
            model = builder(spec, tuple(input_shape), n_classes)
        except Exception as e:  # a user's builder can raise anything
            raise NetworkFileError(f"{where} raised {type(e).__name__}: {e}") from None
        problem = _model_problem(model)
        if problem:
            raise NetworkFileError(
                f"{where} {problem}; a builder returns a tf_keras Model with one input and one output "
                f"(input shape {tuple(input_shape)}, {n_classes} classes)"
            )


def _model_problem(model: Any) -> str | None:
    """What keeps ``model`` from being trained and converted (None: nothing)."""
    keras = _keras()
    if not isinstance(model, keras.Model):
        return f"returned {model!r}" if model is None else f"returned a {type(model).__name__}, not a tf_keras Model"
    if len(model.outputs) != 1:
        return f"returned a model with {len(model.outputs)} outputs"
    if len(model.inputs) != 1:
        return f"returned a model with {len(model.inputs)} inputs"
    return None


def load_table(path: Path = TABLE1_PATH) -> list[NetworkSpec]:
    """Reads a Table 1 style JSON file into specs."""
    table = json.loads(path.read_text())
    families = table["families"]
    return [
        NetworkSpec(
            id=net_id,
            family=row["family"],
            params={k: v for k, v in row.items() if k != "family"},
            family_params=families[row["family"]],
        )
        for net_id, row in table["networks"].items()
    ]


def get_network(net_id: str) -> NetworkSpec:
    """Returns the spec registered as ``net_id``.

    Raises:
        UnknownNameError: listing the known ids.
    """
    return NETWORKS.get(net_id)


def build_model(spec: NetworkSpec, input_shape: tuple[int, int], n_classes: int) -> Any:
    """Builds the (untrained) Keras model of ``spec`` for windows of ``input_shape``.

    Args:
        spec: The network.
        input_shape: ``(timesteps, channels)`` of one window, from the dataset.
        n_classes: Number of activities, from the dataset.

    Returns:
        A ``tf_keras.Model`` named after the network id.
    """
    return FAMILIES.get(spec.family)(spec, input_shape, n_classes)


def dropout_off(model: Any) -> None:
    """Sets every dropout layer of ``model`` (wrapped ones included) to rate 0: the network
    then trains as it is deployed, in inference mode."""
    k = _keras()
    for layer in model.submodules:
        if isinstance(layer, k.layers.Dropout):
            layer.rate = 0.0


def _keras() -> Any:
    import tf_keras

    return tf_keras


@register_family("1D_CNN")
def _build_cnn(spec: NetworkSpec, input_shape: tuple[int, int], n_classes: int) -> Any:
    k = _keras()
    p, f = spec.params, spec.family_params
    inputs = k.Input(shape=input_shape, name="window")
    h = k.layers.Conv1D(p["filters"], p["kernel"], activation="relu", name="conv")(inputs)
    h = k.layers.Dropout(f["dropout"], name="dropout")(h)
    h = k.layers.MaxPooling1D(f["pool_size"], name="pool")(h)
    h = k.layers.Flatten(name="flatten")(h)
    h = k.layers.Dense(p["dense"], activation="relu", name="dense")(h)
    outputs = k.layers.Dense(n_classes, activation="softmax", name="output")(h)
    return k.Model(inputs, outputs, name=spec.id)


@register_family("1D_CNN_LSTM")
def _build_cnn_lstm(spec: NetworkSpec, input_shape: tuple[int, int], n_classes: int) -> Any:
    k = _keras()
    p, f = spec.params, spec.family_params
    inputs = k.Input(shape=input_shape, name="window")
    h = k.layers.Conv1D(p["filters"], p["kernel"], name="conv")(inputs)
    h = k.layers.BatchNormalization(name="batch_norm")(h)
    h = k.layers.ReLU(name="relu")(h)
    h = k.layers.LSTM(p["lstm_units"], name="lstm")(h)
    h = k.layers.Dropout(f["dropout"], name="dropout")(h)
    h = k.layers.Dense(p["dense"], activation="relu", name="dense")(h)
    outputs = k.layers.Dense(n_classes, activation="softmax", name="output")(h)
    return k.Model(inputs, outputs, name=spec.id)


for _spec in load_table():
    NETWORKS.add(_spec.id, _spec)
