"""The model cache: entries are checked against their manifest and rebuilt when damaged."""

import numpy as np

from tinyhil.models.cache import MANIFEST, cached_dir
from tinyhil.models.compression import ConversionContext, convert
from tinyhil.models.tflm import predict


def _builder(calls):
    def build(tmp):
        calls.append(tmp)
        (tmp / "a.bin").write_bytes(bytes(range(256)) * 40)
        (tmp / "meta.json").write_text('{"ok": true}')

    return build


def test_a_verified_entry_is_a_hit(tmp_path):
    calls = []
    path, hit = cached_dir(tmp_path, "k", "net", "f" * 64, _builder(calls))
    assert not hit and (path / MANIFEST).exists()
    again, hit = cached_dir(tmp_path, "k", "net", "f" * 64, _builder(calls))
    assert hit and again == path and len(calls) == 1


def test_flipped_truncated_or_missing_files_are_rebuilt(tmp_path, capfd):
    calls = []
    path, _ = cached_dir(tmp_path, "k", "net", "e" * 64, _builder(calls))
    clean = (path / "a.bin").read_bytes()
    for damage, words in (
        (lambda: (path / "a.bin").write_bytes(clean[:1000] + b"\xff" * 50 + clean[1050:]), "a.bin does not match"),
        (lambda: (path / "a.bin").write_bytes(clean[:5000]), "a.bin does not match"),
        (lambda: (path / "a.bin").unlink(), "a.bin is missing"),
        (lambda: (path / MANIFEST).unlink(), "no manifest"),
    ):
        damage()
        path2, hit = cached_dir(tmp_path, "k", "net", "e" * 64, _builder(calls))
        assert not hit and path2 == path and (path / "a.bin").read_bytes() == clean
        err = capfd.readouterr().err
        assert f"cache entry {path} is damaged ({words}" in err and "rebuilding it" in err
    assert len(calls) == 5


def test_a_killed_build_leaves_nothing_behind(tmp_path):
    key = "d" * 64
    stale = tmp_path / "k" / f".net-{key[:16]}-abandoned"
    stale.mkdir(parents=True)
    (stale / "half.bin").write_bytes(b"x")
    cached_dir(tmp_path, "k", "net", key, _builder([]))
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == [f"net-{key[:16]}", f"net-{key[:16]}.lock"]


def test_a_damaged_cached_model_is_rebuilt_and_judged_as_the_clean_one(cnn, tiny_data, tmp_path):
    """The issue's attack: bytes overwritten inside the largest weight buffer of a cached model."""
    x = tiny_data[0][:16]
    ctx = ConversionContext((128, 9), tiny_data[0][:32])
    first = convert("full_int", cnn, "key-C_2", ctx, tmp_path, label="C_2")
    clean_scores = predict(first.tflite, x, 1 << 20)
    entry = next((tmp_path / "tflite").glob("C_2-full_int-*[!k]"))
    model = bytearray((entry / "model.tflite").read_bytes())
    start = len(model) // 3
    model[start : start + 3150] = bytes(3150)  # same size, weights zeroed
    (entry / "model.tflite").write_bytes(bytes(model))
    assert not np.array_equal(predict(bytes(model), x, 1 << 20), clean_scores)  # the damage matters

    again = convert("full_int", cnn, "key-C_2", ctx, tmp_path, label="C_2")
    assert not again.from_cache and again.tflite == first.tflite
    np.testing.assert_array_equal(predict(again.tflite, x, 1 << 20), clean_scores)
