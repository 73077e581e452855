"""``python -m tinyhil.models.byo_example DEST``: a user's folder to try "bring your own" with.

Writes into DEST (outside the repository, as a user's files would be):

- ``sine_float.tflite``: a real model no one here wrote (it ships in the tflite-micro wheel);
- ``images.npz``: 8 x 8 one-channel images of three classes (generated: a bright band
  whose row tells the class), with the file's own train/test split;
- ``tiny_cnn2d.keras``: a small 2-D CNN trained on those images (tf_keras);
- ``my_nets.py``: a builders file with an MLP family in two sizes;
- ``my-board.json``: a board profile of one's own (the ESP32 profile with a smaller heap).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from tinyhil.models.boards import BOARDS_DIR

BUILDERS = '''"""My own networks: an MLP family in two sizes."""

import tf_keras as k

from tinyhil.models.networks import add_network, register_family


@register_family("mlp")
def build_mlp(spec, input_shape, n_classes):
    inputs = k.Input(shape=input_shape, name="window")
    h = k.layers.Flatten()(inputs)
    h = k.layers.Dense(spec.params["units"], activation="relu")(h)
    outputs = k.layers.Dense(n_classes, activation="softmax")(h)
    return k.Model(inputs, outputs, name=spec.id)


add_network("mlp_8", "mlp", units=8)
add_network("mlp_32", "mlp", units=32)
'''


def _images(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    x = rng.normal(size=(len(y), 8, 8, 1)).astype(np.float32) * 0.5
    for i, c in enumerate(y):
        x[i, c * 2 : c * 2 + 3, :, 0] += 2.0
    return x


def make_example(dest: Path, seed: int = 0) -> Path:
    """Writes the five files into ``dest`` (created if missing) and returns it."""
    import tf_keras
    import tflite_micro

    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    shipped = Path(tflite_micro.__path__[0]) / "python" / "tflite_micro" / "sine_float.tflite"
    (dest / "sine_float.tflite").write_bytes(shipped.read_bytes())
    rng = np.random.default_rng(seed)
    y_tr, y_te = rng.integers(0, 3, 240), rng.integers(0, 3, 60)
    x_tr, x_te = _images(rng, y_tr), _images(rng, y_te)
    classes = np.array(["top", "middle", "bottom"])
    np.savez(dest / "images.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te, class_names=classes)
    k = tf_keras
    k.utils.set_random_seed(seed)
    model = k.Sequential(
        [
            k.Input((8, 8, 1)),
            k.layers.Conv2D(4, 3, activation="relu"),
            k.layers.MaxPooling2D(),
            k.layers.Flatten(),
            k.layers.Dense(3, activation="softmax"),
        ],
        name="tiny_cnn2d",
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_tr, y_tr, epochs=15, verbose=0)
    model.save(dest / "tiny_cnn2d.keras")
    (dest / "my_nets.py").write_text(BUILDERS)
    board = json.loads((BOARDS_DIR / "esp32-wroom-32.json").read_text())
    board.update(name="my-esp32", largest_heap_block_bytes=120_000)
    (dest / "my-board.json").write_text(json.dumps(board, indent=1) + "\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyhil.models.byo_example", description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="folder to write the example files into")
    args = parser.parse_args(argv)
    print(make_example(args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
