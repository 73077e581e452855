"""Each technique beyond the paper, on small data: it ran, and it changed the model as it claims."""

import numpy as np
import pytest

from models.compression import (
    ConversionContext,
    convert,
    full_int,
    parse_technique,
    run_pipeline,
    standalone,
)
from models.errors import UnknownNameError
from models.inspection import inspect_tflite
from models.networks import build_model, get_network
from models.tflm import minimum_arena
from models.transforms import sparsity


@pytest.fixture(scope="module")
def c4(tiny_data):
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = build_model(get_network("C_4"), (128, 9), 6)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*tiny_data, epochs=1, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def ctx(tiny_data, cnn):
    x, y = tiny_data
    return ConversionContext(
        (128, 9),
        x[:32],
        x_train=x,
        y_train=y,
        spec=get_network("C_4"),
        profile={"epochs": 1, "finetune_epochs": 1, "batch_size": 32, "learning_rate": 1e-3},
        seed=0,
        teacher=lambda: cnn,
    )


def run(tid, model, ctx):
    return run_pipeline(parse_technique(tid), model, ctx)


def test_ids_carry_hyper_parameters():
    assert [s.label for s in parse_technique("prune70+full_int")] == ["prune(sparsity_pct=70)", "full_int"]
    assert [s.label for s in parse_technique("distill_t2")] == ["distill(temperature=2)", "lite"]
    assert [s.label for s in parse_technique("full_int+lut3")] == ["full_int", "lut(bits=3)"]
    with pytest.raises(UnknownNameError, match="prune<sparsity_pct>"):
        parse_technique("prunes")
    with pytest.raises(ValueError, match="cannot follow a conversion"):
        parse_technique("full_int+prune50")
    assert standalone(["distill_t4+filter_prune50+full_int", "full_int"]) == [
        "distill_t4",
        "filter_prune50",
        "full_int",
    ]


def test_magnitude_pruning_reaches_its_sparsity(c4, ctx):
    flat, meta = run("prune60", c4, ctx)
    assert meta["sparsity_target"] == 0.6 and meta["sparsity_reached"] >= 0.58
    assert sparsity(c4) < 0.01  # the base model is untouched
    info = inspect_tflite(flat)
    assert info.weight_dtypes == "float32" and info.params == c4.count_params()


def test_filter_pruning_removes_filters(c4, ctx):
    flat, meta = run("filter_prune50+full_int", c4, ctx)
    assert meta == {"filters_kept": 4, "filters_before": 8}
    conv = next(o for o in inspect_tflite(flat).ops if o.op == "CONV_2D")
    assert conv.macs == 126 * 4 * 27  # 4 filters left
    assert len(flat) < len(full_int(c4, ctx))


def test_distillation_trains_a_new_student(c4, ctx):
    _, meta = run("distill_t3", c4, ctx)
    assert meta["temperature"] == 3.0 and meta["teacher"] == "C_2"


def test_float16_weights_are_refused_by_tflm_in_its_words(c4, ctx):
    flat, _ = run("float16", c4, ctx)
    assert "DEQUANTIZE(float16)" in inspect_tflite(flat).op_summary
    res = minimum_arena(flat)
    assert res.status == "unsupported_op" and "dequantize" in res.reason.lower()


def test_int16x8_has_int16_activations(c4, ctx):
    info = inspect_tflite(run("int16x8", c4, ctx)[0])
    assert info.input_dtype == "int16" and "CONV_2D(int16/int8)" in info.op_summary


def test_qat_gives_an_int8_model(c4, ctx):
    info = inspect_tflite(run("qat", c4, ctx)[0])
    assert info.input_dtype == "int8" and "FULLY_CONNECTED(int8/int8)" in info.op_summary


def test_int4_stores_dense_weights_in_four_bits_and_tflm_runs_it(c4, ctx):
    flat, _ = run("int4", c4, ctx)
    info = inspect_tflite(flat)
    assert "FULLY_CONNECTED(int8/int4)" in info.op_summary
    assert len(flat) < 0.7 * len(full_int(c4, ctx))
    assert minimum_arena(flat).status == "ok"


def test_tflm_lut_compression_shrinks_the_model_and_runs(c4, ctx):
    base = full_int(c4, ctx)
    flat, _ = run("full_int+lut4", c4, ctx)
    info = inspect_tflite(flat)
    assert any(o.op.startswith("CUSTOM:") for o in info.ops)  # TFLM's DECODE
    assert len(flat) < 0.75 * len(base)
    assert minimum_arena(flat).status == "ok"


def test_cascading_a_converter_onto_a_tflite_is_a_convert_error(c4, ctx, tmp_path):
    conv = convert("lite+dynamic", c4, "k", ctx, tmp_path)
    assert not conv.ok and "cascading dynamic onto an already converted model" in conv.error
    assert conv.steps == ["lite", "dynamic"]


def test_lut_keeps_at_most_two_to_the_bits_values_per_channel():
    from models.tflm_compression import cluster_channel

    rng = np.random.default_rng(0)
    w = rng.integers(-128, 127, 500).astype(np.int8)
    out = cluster_channel(w, 16)
    assert out.dtype == np.int8 and len(np.unique(out)) <= 16
    assert np.abs(out.astype(int) - w.astype(int)).mean() < 6
