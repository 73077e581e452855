"""The technique registry, technique ids, the cascade, and the cached :func:`convert`.

Step modules (:mod:`~tinyhil.models.compression.converters`, :mod:`~tinyhil.models.compression.keras_steps`,
:mod:`~tinyhil.models.compression.lut`) import this module and register their steps here; the
package's ``__init__`` imports them all, so importing :mod:`tinyhil.models.compression` is enough.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyhil.models.cache import cached_dir, content_key
from tinyhil.models.cstderr import capture_c_stderr
from tinyhil.models.errors import UnknownNameError
from tinyhil.models.registry import Registry

REPRESENTATIVE_WINDOWS = 300
COMPRESSION_CODE_VERSION = 3
KINDS = ("transform", "convert", "post")
# Named sets for --techniques: the reference study's three, and everything beyond it.
PAPER_SET = ["lite", "dynamic", "full_int"]
EXTENDED_SET = [
    "float16",
    "int16x8",
    "int4",
    "prune50",
    "prune50+full_int",
    "qat",
    "distill_t4+full_int",
    "filter_prune50+full_int",
    "full_int+lut4",
    "distill_t4+filter_prune50+full_int",
]


@dataclass(frozen=True)
class ConversionContext:
    """What a step may use besides the model.

    Attributes:
        input_shape: ``(timesteps, channels)`` of one window.
        representative: Standardised training windows for calibration.
        x_train, y_train: The training split (fine-tuning, distillation).
        spec: The network being compressed (structured pruning rebuilds it).
        profile: Training profile settings (epochs, fine-tune epochs, batch size).
        seed: Seeds every step that trains.
        teacher: Returns the teacher model for distillation.
        key_extras: Anything else the result depends on (the teacher's weights key).
    """

    input_shape: tuple[int, int]
    representative: np.ndarray
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    spec: Any = None
    profile: dict = field(default_factory=dict)
    seed: int = 0
    teacher: Callable[[], Any] | None = None
    key_extras: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Technique:
    """One registered step.

    Attributes:
        name: Step name (``prune``).
        kind: ``transform``, ``convert`` or ``post``.
        description: One line for ``--help`` and the README.
        fn: ``transform(model, ctx, value)``, ``convert(model, ctx, value)``, ``post(tflite, ctx, value)``.
        param: ``(name, default, prefix)`` of the hyper-parameter in the id, or None.
        param_range: ``(low, high)``: the values the step accepts, checked when an id is parsed.
    """

    name: str
    kind: str
    description: str
    fn: Callable
    param: tuple[str, int, str] | None = None
    param_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class Step:
    technique: Technique
    value: int | None

    @property
    def label(self) -> str:
        p = self.technique.param
        return f"{self.technique.name}({p[0]}={self.value})" if p else self.technique.name


@dataclass
class Conversion:
    """The outcome of one pipeline.

    Attributes:
        technique: The technique id.
        tflite: The flatbuffer, or None when a step failed.
        error: The failing step's message.
        seconds: Wall time of the pipeline (in the process that ran it).
        from_cache: True when the result came from the cache.
        steps: The steps, as ``name(param=value)``.
        meta: What the steps reported (sparsity reached, filters kept, teacher, ...).
    """

    technique: str
    tflite: bytes | None
    error: str | None
    seconds: float
    from_cache: bool = False
    steps: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.tflite is not None


TECHNIQUES: Registry[Technique] = Registry("technique")


def register_technique(
    name: str,
    description: str,
    kind: str = "convert",
    param: tuple[str, int, str] | None = None,
    param_range: tuple[int, int] | None = None,
) -> Callable[[Callable], Callable]:
    """Registers a step; ``param`` is ``(name, default, prefix)`` as in ``prune50`` or ``distill_t4``,
    ``param_range`` the ``(low, high)`` values it accepts."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def deco(fn: Callable) -> Callable:
        TECHNIQUES.add(name, Technique(name, kind, description, fn, param, param_range))
        return fn

    return deco


def _step_forms() -> list[str]:
    forms = []
    for name in TECHNIQUES.names():
        t = TECHNIQUES.get(name)
        forms.append(f"{name}{t.param[2]}<{t.param[0]}>" if t.param else name)
    return forms


def parse_step(token: str) -> Step:
    """One step of a technique id; a hyper-parameter is written in the id and checked here.

    Raises:
        UnknownNameError: listing the step forms that exist.
        ValueError: for a step whose hyper-parameter is missing or out of its range.
    """
    for name in sorted(TECHNIQUES.names(), key=len, reverse=True):
        t = TECHNIQUES.get(name)
        if token == name:
            if t.param:
                p_name, default, prefix = t.param
                raise ValueError(f"{token}: write the {p_name} in the id, as in {name}{prefix}{default}")
            return Step(t, None)
        if t.param:
            m = re.fullmatch(re.escape(name + t.param[2]) + r"(\d+)", token)
            if m:
                value = int(m.group(1))
                if t.param_range and not t.param_range[0] <= value <= t.param_range[1]:
                    low, high = t.param_range
                    raise ValueError(f"{token}: {t.param[0]} must be from {low} to {high}, got {value}")
                return Step(t, value)
    raise UnknownNameError("technique", token, _step_forms())


def parse_technique(technique_id: str) -> list[Step]:
    """The steps of a ``+``-joined technique id, with ``lite`` appended when no step converts.

    Raises:
        UnknownNameError: for an unknown step.
        ValueError: for a Keras transform after the conversion.
    """
    tokens = technique_id.split("+")
    if technique_id and "" in tokens:
        raise ValueError(f"{technique_id}: an empty step; join steps with a single +, as in prune50+full_int")
    steps = [parse_step(tok) for tok in tokens if tok]
    if not steps:
        raise UnknownNameError("technique", technique_id, _step_forms())
    kinds = [s.technique.kind for s in steps]
    if "convert" in kinds and "transform" in kinds[kinds.index("convert") :]:
        raise ValueError(f"{technique_id}: a Keras transform cannot follow a conversion; put transforms first")
    if "convert" not in kinds:
        first_post = kinds.index("post") if "post" in kinds else len(steps)
        steps.insert(first_post, Step(TECHNIQUES.get("lite"), None))
    return steps


def flatbuffer_steps(technique_id: str) -> list[Step] | None:
    """The steps of ``technique_id`` when every one works on a flatbuffer (for a ready .tflite), else None."""
    steps = [parse_step(tok) for tok in technique_id.split("+") if tok]
    return steps if steps and all(s.technique.kind == "post" for s in steps) else None


def standalone(technique_ids: list[str]) -> list[str]:
    """Stand-alone compression: every step of every pipeline on its own, on the base model."""
    out = []
    for tid in technique_ids:
        out += [tok for tok in tid.split("+") if tok]
    return list(dict.fromkeys(out))


class CascadeError(Exception):
    pass


def run_pipeline(steps: list[Step], model: Any, ctx: ConversionContext) -> tuple[bytes, dict]:
    """Applies the steps in cascade; returns the flatbuffer and what the steps reported."""
    current: Any = model
    meta: dict = {}
    for step in steps:
        kind = step.technique.kind
        if kind == "transform":
            current = step.technique.fn(current, ctx, step.value)
            meta.update(getattr(current, "_tinyhil_meta", {}))
        elif kind == "convert":
            if isinstance(current, bytes | bytearray):
                raise CascadeError(
                    f"cascading {step.label} onto an already converted model: the TFLite converter takes a Keras "
                    "model or SavedModel, not a .tflite flatbuffer"
                )
            current = step.technique.fn(current, ctx, step.value)
        else:
            current = step.technique.fn(bytes(current), ctx, step.value)
    return bytes(current), meta


def tflite_converter(model: Any, ctx: ConversionContext) -> Any:
    """A TFLite converter over a batch-1 concrete function.

    A fixed batch of 1 is what a microcontroller runs; it also lets the LSTM's tensor
    lists have static shapes, so that tf_keras's LSTM becomes the fused op.
    """
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec((1, *ctx.input_shape), tf.float32))
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)


def representative_dataset(ctx: ConversionContext) -> Callable:
    """The calibration windows as the converter's ``representative_dataset`` generator."""
    rep = ctx.representative

    def gen():
        for i in range(len(rep)):
            yield [rep[i : i + 1]]

    return gen


def representative_windows(x_train: np.ndarray, seed: int, n: int = REPRESENTATIVE_WINDOWS) -> np.ndarray:
    """A seeded sample of training windows for calibration."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x_train), size=min(n, len(x_train)), replace=False)
    return x_train[np.sort(idx)].astype(np.float32)


def convert(
    technique: str,
    model: Any,
    model_key: str,
    ctx: ConversionContext,
    cache_dir: Path,
    label: str = "model",
    steps: list[Step] | None = None,
) -> Conversion:
    """Runs the pipeline ``technique`` on ``model``; never raises for a step's failure.

    Args:
        technique: A technique id (``full_int``, ``prune50+full_int``).
        model: Trained Keras model, or a :class:`tinyhil.models.training.TrainedModel` whose model
            is built only on a cache miss.
        model_key: Cache key of the trained weights.
        ctx: Conversion context.
        cache_dir: Cache root; results (and failures) are cached under ``tflite/``.
        label: Readable prefix of the cache entry (network id).
        steps: ``technique`` already parsed by :func:`parse_technique`, so a caller that
            parsed it does not parse it again.

    Raises:
        UnknownNameError: for an unknown step (a user error, not a verdict).
    """
    from importlib.metadata import version

    steps = parse_technique(technique) if steps is None else steps
    key = content_key(
        {
            "model": model_key,
            "technique": [s.label for s in steps],
            "representative": hashlib.sha256(np.ascontiguousarray(ctx.representative).tobytes()).hexdigest(),
            "profile": ctx.profile if any(s.technique.kind == "transform" for s in steps) else None,
            "seed": ctx.seed,
            "extras": ctx.key_extras if any(s.technique.name == "distill" for s in steps) else None,
            "tensorflow": version("tensorflow"),
            "code": COMPRESSION_CODE_VERSION,
        }
    )

    def build(tmp: Path) -> None:
        t0 = time.monotonic()
        meta: dict = {}
        try:
            with capture_c_stderr() as cap:
                keras_model = model.model if hasattr(model, "from_cache") else model
                flatbuffer, meta = run_pipeline(steps, keras_model, ctx)
            (tmp / "model.tflite").write_bytes(flatbuffer)
            error = None
        except Exception as e:  # converters and trainers raise many types; all become a verdict
            error = f"{type(e).__name__}: {e}".strip()
            if cap.text.strip() and cap.text.strip() not in error:
                error += "\n" + cap.text.strip()
        record = {"seconds": round(time.monotonic() - t0, 3), "error": error, "meta": meta}
        (tmp / "meta.json").write_text(json.dumps(record, default=str))

    path, hit = cached_dir(cache_dir, "tflite", f"{label}-{technique}", key, build)
    record = json.loads((path / "meta.json").read_text())
    flatbuffer = (path / "model.tflite").read_bytes() if (path / "model.tflite").exists() else None
    return Conversion(
        technique,
        flatbuffer,
        record["error"],
        record["seconds"],
        from_cache=hit,
        steps=[s.label for s in steps],
        meta=record.get("meta", {}),
    )


def summarize_error(error: str, limit: int = 300) -> str:
    """The first meaningful line(s) of a converter error, for a one-line verdict reason."""
    lines = [
        ln.strip() for ln in error.splitlines() if "error:" in ln or ln.startswith(("ConverterError", "ValueError"))
    ]
    text = " | ".join(dict.fromkeys(lines)) or error.strip().splitlines()[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."
