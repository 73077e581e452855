"""Keras-level compression steps: magnitude pruning, quantization-aware training,
knowledge distillation and structured filter pruning (tensorflow-model-optimization
where it applies). Each fine-tunes on the training split, seeded, for the profile's
``finetune_epochs`` (distillation trains the student for ``epochs``), and attaches what
it did to the model as ``_tinyhil_meta`` (sparsity reached, filters kept, teacher).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyhil.models.compression.base import (
    ConversionContext,
    register_technique,
    representative_dataset,
    tflite_converter,
)
from tinyhil.models.networks import NetworkSpec, build_model, dropout_off

DISTILL_ALPHA = 0.7  # weight of the teacher's soft targets against the true labels


def _keras():
    import tf_keras

    return tf_keras


def _tfmot():
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError:
        raise RuntimeError(
            "tensorflow-model-optimization is missing: pip install tensorflow-model-optimization"
        ) from None
    return tfmot


def _fit(model: Any, ctx: ConversionContext, epochs: int, loss="sparse_categorical_crossentropy", y=None, callbacks=()):
    """Fine-tunes ``model`` on the training split by the network's recipe (``ctx.profile``,
    :func:`tinyhil.models.training.training_recipe`): its batch size, half its learning rate held
    constant, and dropout off when the recipe trains without it (``dropout_epochs`` 0), so
    that the network fine-tuned is the one deployed."""
    k = _keras()
    k.utils.set_random_seed(ctx.seed)
    prof = ctx.profile
    if prof.get("dropout_epochs", None) == 0:
        dropout_off(model)
    model.compile(optimizer=k.optimizers.Adam(prof.get("learning_rate", 1e-3) / 2), loss=loss, metrics=None)
    model.fit(
        ctx.x_train,
        ctx.y_train if y is None else y,
        epochs=epochs,
        batch_size=prof.get("batch_size", 64),
        shuffle=True,
        verbose=0,
        callbacks=list(callbacks),
    )
    return model


def _with_meta(model: Any, **meta) -> Any:
    model._tinyhil_meta = {**getattr(model, "_tinyhil_meta", {}), **meta}
    return model


def sparsity(model: Any) -> float:
    """Share of zero weights in the kernels of conv, dense and LSTM layers."""
    zeros = total = 0
    for layer in model.layers:
        for w in layer.weights:
            if "kernel" in w.name:
                v = w.numpy()
                zeros += int(np.sum(v == 0))
                total += v.size
    return zeros / total if total else 0.0


@register_technique(
    "prune",
    "magnitude pruning to a constant sparsity (tensorflow-model-optimization), fine-tuned; prune50 = 50 %",
    kind="transform",
    param=("sparsity_pct", 50, ""),
    param_range=(0, 99),
)
def prune(model: Any, ctx: ConversionContext, value: int) -> Any:
    tfmot = _tfmot()
    k = _keras()
    clone = k.models.clone_model(model)
    clone.set_weights(model.get_weights())
    # masks updated every step: short fine-tunes (quick profile, small data) still prune
    schedule = tfmot.sparsity.keras.ConstantSparsity(value / 100.0, begin_step=0, frequency=1)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(clone, pruning_schedule=schedule)
    _fit(pruned, ctx, ctx.profile.get("finetune_epochs", 3), callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    out = tfmot.sparsity.keras.strip_pruning(pruned)
    return _with_meta(out, sparsity_target=value / 100.0, sparsity_reached=round(sparsity(out), 4))


def _qat_convert(
    model: Any, ctx: ConversionContext, annotate, scope: dict | None = None, low_bit: bool = False
) -> bytes:
    """Annotates layers for quantization-aware training, fine-tunes, converts with int8 input and output."""
    import tensorflow as tf

    k = _keras()
    qk = _tfmot().quantization.keras
    annotated = k.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    with qk.quantize_scope(scope or {}):
        q = qk.quantize_apply(annotated)
    _fit(q, ctx, ctx.profile.get("finetune_epochs", 3))
    conv = tflite_converter(q, ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if low_bit:
        conv._experimental_low_bit_qat = True  # keep sub-8-bit fake-quant as INT4 tensors
    else:
        conv.representative_dataset = representative_dataset(ctx)
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


@register_technique(
    "qat",
    "quantization-aware training to int8 (tensorflow-model-optimization) of the layers it supports (Dense; it has "
    "no Conv1D or LSTM support), fine-tuned, then full-integer conversion calibrating the rest",
)
def qat(model: Any, ctx: ConversionContext, value=None) -> bytes:
    k, qk = _keras(), _tfmot().quantization.keras
    return _qat_convert(
        model, ctx, lambda layer: qk.quantize_annotate_layer(layer) if isinstance(layer, k.layers.Dense) else layer
    )


@register_technique(
    "distill",
    "knowledge distillation: the network trained on a teacher's soft targets (--teacher); distill_t4 = temperature 4",
    kind="transform",
    param=("temperature", 4, "_t"),
    param_range=(1, 100),
)
def distill(model: Any, ctx: ConversionContext, value: int) -> Any:
    import tensorflow as tf

    if ctx.teacher is None:
        raise RuntimeError("distillation needs a teacher model; the study passes the largest network of the family")
    k = _keras()
    teacher = ctx.teacher()
    t = float(value)
    n = int(model.output_shape[-1])
    p_teacher = teacher.predict(ctx.x_train, batch_size=256, verbose=0)
    logits = np.log(np.clip(p_teacher, 1e-9, 1.0)) / t
    soft = np.exp(logits - logits.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    targets = np.concatenate([np.eye(n)[ctx.y_train], soft], axis=1).astype(np.float32)

    def loss(y_true, y_pred):
        onehot, soft_t = y_true[:, :n], y_true[:, n:]
        log_p = tf.math.log(tf.clip_by_value(y_pred, 1e-9, 1.0))
        ce = -tf.reduce_sum(onehot * log_p, axis=-1)
        soft_s = tf.nn.softmax(log_p / t)
        kl = tf.reduce_sum(soft_t * (tf.math.log(soft_t + 1e-9) - tf.math.log(soft_s + 1e-9)), axis=-1)
        return DISTILL_ALPHA * t * t * kl + (1 - DISTILL_ALPHA) * ce

    k.utils.set_random_seed(ctx.seed + 1)
    student = k.models.clone_model(model)  # same architecture, fresh initialisation
    _fit(student, ctx, ctx.profile.get("epochs", 10), loss=loss, y=targets)
    return _with_meta(student, teacher=teacher.name, temperature=t)


def _keep_filters(kernel: np.ndarray, pct: int) -> np.ndarray:
    """Indices of the filters with the largest L1 norms; ``pct`` % are removed (at least one stays)."""
    n = kernel.shape[-1]
    keep = max(1, int(round(n * (1 - pct / 100.0))))
    norms = np.abs(kernel).reshape(-1, n).sum(axis=0)
    return np.sort(np.argsort(-norms, kind="stable")[:keep])


@register_technique(
    "filter_prune",
    "structured pruning: removes the conv filters with the smallest L1 norm, rebuilds the network, fine-tunes; "
    "filter_prune50 = half the filters",
    kind="transform",
    param=("prune_pct", 50, ""),
    param_range=(1, 99),
)
def filter_prune(model: Any, ctx: ConversionContext, value: int) -> Any:
    spec: NetworkSpec = ctx.spec
    conv_k, conv_b = model.get_layer("conv").get_weights()
    idx = _keep_filters(conv_k, value)
    smaller = NetworkSpec(spec.id, spec.family, {**spec.params, "filters": len(idx)}, spec.family_params)
    new = build_model(smaller, ctx.input_shape, int(model.output_shape[-1]))
    new.get_layer("conv").set_weights([conv_k[:, :, idx], conv_b[idx]])
    if spec.family == "1D_CNN":
        dk, db = model.get_layer("dense").get_weights()
        steps = dk.shape[0] // conv_k.shape[-1]  # flatten order: (time step, filter)
        rows = (np.arange(steps)[:, None] * conv_k.shape[-1] + idx[None, :]).reshape(-1)
        new.get_layer("dense").set_weights([dk[rows], db])
    else:
        new.get_layer("batch_norm").set_weights([w[idx] for w in model.get_layer("batch_norm").get_weights()])
        lk, lr, lb = model.get_layer("lstm").get_weights()
        new.get_layer("lstm").set_weights([lk[idx], lr, lb])
        new.get_layer("dense").set_weights(model.get_layer("dense").get_weights())
    new.get_layer("output").set_weights(model.get_layer("output").get_weights())
    _fit(new, ctx, ctx.profile.get("finetune_epochs", 3))
    return _with_meta(new, filters_kept=len(idx), filters_before=int(conv_k.shape[-1]))


def _int4_configs():
    """tfmot QuantizeConfigs: 4-bit Dense kernels (activation kept 8-bit), 8-bit Conv1D kernels."""
    qk = _tfmot().quantization.keras

    class Int4Dense(qk.QuantizeConfig):
        bits = 4

        def get_weights_and_quantizers(self, layer):
            quantizer = qk.quantizers.LastValueQuantizer(
                num_bits=self.bits, symmetric=True, narrow_range=False, per_axis=False
            )
            return [(layer.kernel, quantizer)]

        def get_activations_and_quantizers(self, layer):
            quantizer = qk.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            )
            return [(layer.activation, quantizer)]

        def set_quantize_weights(self, layer, quantize_weights):
            layer.kernel = quantize_weights[0]

        def set_quantize_activations(self, layer, quantize_activations):
            layer.activation = quantize_activations[0]

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    class Int8Conv(Int4Dense):
        bits = 8

    return Int4Dense, Int8Conv


@register_technique(
    "int4",
    "int4 weights for the dense layers through 4-bit quantization-aware training (tfmot fake-quant) and the "
    "converter's low-bit mode; conv weights and activations int8",
)
def int4(model: Any, ctx: ConversionContext, value=None) -> bytes:
    k, qk = _keras(), _tfmot().quantization.keras
    int4_dense, int8_conv = _int4_configs()

    def annotate(layer):
        if isinstance(layer, k.layers.Dense):
            return qk.quantize_annotate_layer(layer, int4_dense())
        if isinstance(layer, k.layers.Conv1D):
            return qk.quantize_annotate_layer(layer, int8_conv())
        return layer

    return _qat_convert(model, ctx, annotate, {"Int4Dense": int4_dense, "Int8Conv": int8_conv}, low_bit=True)
