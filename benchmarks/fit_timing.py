"""Fits the timing model to published figures and prints published vs model for every point.

    python benchmarks/fit_timing.py            # fit, print the table (the README's), check the files
    python benchmarks/fit_timing.py --write    # and write models/data/timing/<chip>.json

Sources (numbers only, with their citations in the data files):

- esp-tflite-micro README.md, "Performance Comparison" (github.com/espressif/esp-tflite-micro,
  commit 99f49e1498b0984f4db54d9bf3938aceb99ad422): person detection, int8, time of ``invoke()``,
  without and with ESP-NN, on the ESP32, ESP32-S3 and ESP32-C3.
- esp-nn README.md, "Kernelwise performance for s8 versions" (github.com/espressif/esp-nn,
  commit 0798b58ff527a3a552018e9392907f490a775c81): ticks of 11 kernels on the ESP32-S3 at 240 MHz,
  esp-nn's ANSI C version and its optimised one; padding, stride and channel multiplier of the
  shapes as esp-nn's tests/src/convolution_test.c and pooling_test.c set them.

Method:

1. ESP32-S3 with ESP-NN: a shared cost per op (per kernel call), an extra cost per call of the two
   classes with two figures each (conv_1x1, depthwise_conv) and one cost per unit of work per class,
   fit by least squares on log(model / published) over the 11 optimised kernel figures (13
   parameters, 11 figures: the kernel points check little; they say "fit").
   The person-detection figure of the S3 with ESP-NN is held out: it checks the kernel fit.
2. The same fit over esp-nn's 11 ANSI C figures gives the *generic C shape*: the relative cost of
   the classes in plain C loops.
3. Every other chip and library (ESP32 and ESP32-C3 with ESP-NN, whose kernels there are C;
   TFLM's reference kernels everywhere) has no kernel-level figures: its table is the generic C
   shape times one scale, fit to that chip's person-detection figure (so those points are fit
   exactly and check nothing; they say so).
4. Not fit (no published figure): int16 costs are the reference int8 costs (ESP-NN runs
   reference kernels for int16); float32 costs are the reference int8 costs times 1.0 on the
   chips with a single-precision FPU (ESP32, ESP32-S3) and 2.0 on the ESP32-C3 (soft float);
   ESP-NN has no float kernels, so esp-nn's float32 row is the reference one. ESP-NN has no LSTM
   kernel: lstm costs are the reference fully-connected ones. ``other`` (reshape, softmax, ...)
   costs the library's activation cost per output element.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinyhil.models.timing import CLASSES, DTYPES, TIMING_DIR, point_model_value, workload_of  # noqa: E402

TFLITE_MICRO = (
    "espressif/esp-tflite-micro README.md, 'Performance Comparison', commit 99f49e1498b0984f4db54d9bf3938aceb99ad422"
)
ESP_NN = (
    "espressif/esp-nn README.md, 'Kernelwise performance for s8 versions' (ESP32-S3, 240 MHz), "
    "commit 0798b58ff527a3a552018e9392907f490a775c81"
)
# chip -> (cpu MHz, without ESP-NN ms, with ESP-NN ms), person detection, invoke()
PERSON = {"esp32": (240, 4084, 380), "esp32s3": (240, 2300, 54), "esp32c3": (160, 3355, 426)}
FPU = {"esp32": True, "esp32s3": True, "esp32c3": False}
# esp-nn's kernel table: (kernel, shape as esp-nn states it, memory, workload, ANSI C ticks, optimised ticks)
KERNELS = [
    ("elementwise_add", "size 1615", "external", {"add": 1615}, 312327, 71644),
    ("elementwise_mul", "size 1615", "external", {"mul": 1615}, 122046, 30950),
    ("convolution", "input 10x10, filter 64x1x1x64, pad 0, stride 1", "external", {"conv_1x1": 10 * 10 * 64 * 64}, 4642259, 461398),
    ("convolution", "input 8x8, filter 16x1x1x16, pad 0, stride 1", "external", {"conv_1x1": 8 * 8 * 16 * 16}, 300032, 43578),
    ("convolution", "input 10x10, filter 64x3x3x3, pad 0, stride 1 (8x8x64 out)", "external", {"conv": 8 * 8 * 64 * 27}, 2106801, 643689),
    ("depthwise conv", "input 18x18x16, 3x3, pad 0, stride 1 (16x16x16 out)", "external", {"depthwise_conv": 16 * 16 * 16 * 9}, 1192832, 191931),
    ("depthwise conv", "input 12x12x4, 5x5, ch_mult 8, pad 1, stride 1 (12x12x32 out, as the test sizes it)", "external", {"depthwise_conv": 12 * 12 * 32 * 25}, 1679406, 366102),
    ("max pool", "input 16x16x16, 3x3, pad 1, stride 1 (16x16x16 out)", "internal", {"max_pool": 16 * 16 * 16 * 9}, 485714, 76747),
    ("avg pool", "input 16x16x16, 3x3, pad 1, stride 1 (16x16x16 out)", "internal", {"avg_pool": 16 * 16 * 16 * 9}, 541462, 160580),
    ("fully connected", "len 265, 3 channels", "internal", {"fully_connected": 265 * 3}, 12290, 4439),
    ("prelu (relu6)", "size 1615", "internal", {"activation": 1615}, 18315, 1856),
]  # fmt: skip
PER_CALL = ["conv_1x1", "depthwise_conv"]  # the classes with two kernel figures
FITTED = ["conv_1x1", "conv", "depthwise_conv", "fully_connected", "max_pool", "avg_pool", "add", "mul", "activation"]
GOAL = 0.30


def person_workload(path: Path) -> dict:
    if path.is_file():
        from tinyhil.models.inspection import inspect_tflite

        return workload_of(inspect_tflite(path.read_bytes()).ops)
    doc = json.loads((TIMING_DIR / "esp32.json").read_text())  # the last fit's, read from its points
    return next(p["workload"] for p in doc["points"] if p["level"] == "model")


def fit_kernels(column: int) -> tuple[float, dict[str, float], dict[str, float]]:
    """Cost per op, per call of :data:`PER_CALL` and per unit of work of each class from one column
    of esp-nn's table (every parameter positive: fit in logs)."""
    n = len(PER_CALL)

    def split(theta):
        v = np.exp(theta)
        return float(v[0]), dict(zip(PER_CALL, v[1 : 1 + n], strict=True)), dict(zip(FITTED, v[1 + n :], strict=True))

    def model(theta):
        k, call, costs = split(theta)
        return [k + sum(call.get(c, 0.0) + w * costs[c] for c, w in row[3].items()) for row in KERNELS]

    published = np.array([row[column] for row in KERNELS], float)
    theta0 = np.log([1000.0] + [10000.0] * n + [5.0] * len(FITTED))
    res = least_squares(lambda t: np.log(model(t)) - np.log(published), theta0)
    return split(res.x)


def table(
    per_op: float, call: dict, int8: dict[str, float], ref_int8: dict[str, float], fpu: bool, esp_nn: bool
) -> dict:
    """A library's full cost table from its fitted int8 costs (see the module's method, step 4)."""
    int8 = dict(int8, other=int8["activation"])
    ref = dict(ref_int8, other=ref_int8["activation"])
    int8["lstm"] = ref["fully_connected"]
    ref["lstm"] = ref["fully_connected"]
    per_unit = {
        c: {"int8": int8[c], "int16": ref[c], "float32": ref[c] * (1.0 if fpu else 2.0)}
        for c in CLASSES  # esp-nn: no int16 or float kernels: the reference costs
    }
    return {
        "cycles_per_op": round(per_op, 1),
        "cycles_per_call": {c: round(v, 1) for c, v in call.items()},
        "cycles_per_unit": {c: {d: round(v[d], 3) for d in DTYPES} for c, v in per_unit.items()},
    }


def build(person: dict) -> dict[str, dict]:
    s3_per_op, s3_call, s3_opt = fit_kernels(5)
    c_per_op, c_call, c_shape = fit_kernels(4)
    shape_table = table(c_per_op, c_call, c_shape, c_shape, True, False)
    shape_cycles = point_model_value({"kernels": {}, "shapes": {"c": shape_table}}, {"library": "c", "workload": person, "dtype": "int8"}, 1.0)  # fmt: skip
    docs = {}
    for chip, (mhz, ref_ms, nn_ms) in PERSON.items():
        scale_ref = ref_ms * mhz * 1e3 / shape_cycles
        ref_int8 = {c: v * scale_ref for c, v in c_shape.items()}
        ref_call = {c: v * scale_ref for c, v in c_call.items()}
        ref = table(c_per_op * scale_ref, ref_call, ref_int8, ref_int8, FPU[chip], False)
        ref["fit"] = f"generic C shape x {scale_ref:.3f}, the scale fit to person detection without ESP-NN"
        if chip == "esp32s3":
            nn = table(s3_per_op, s3_call, s3_opt, ref_int8, True, True)
            nn["fit"] = "int8: least squares on log(model/published) over esp-nn's 11 optimised kernel figures"
        else:
            scale_nn = nn_ms * mhz * 1e3 / shape_cycles
            nn = table(
                c_per_op * scale_nn,
                {c: v * scale_nn for c, v in c_call.items()},
                {c: v * scale_nn for c, v in c_shape.items()},
                ref_int8,
                FPU[chip],
                True,
            )
            nn["fit"] = f"int8: generic C shape x {scale_nn:.3f}, the scale fit to person detection with ESP-NN"
        for t in (ref, nn):
            t["not_fit"] = (
                "int16: the reference int8 costs; float32: the reference int8 costs x "
                f"{1.0 if FPU[chip] else 2.0} ({'single-precision FPU' if FPU[chip] else 'no FPU: soft float'}); "
                "lstm: the reference fully_connected cost; other: the activation cost"
                + ("; ESP-NN has no int16, float or LSTM kernels: those rows are the reference ones" if t is nn else "")
            )
        points = [
            _point(f"{chip}-person-detection-reference", "model", "reference", "person detection (int8) invoke()",
                   ref_ms, "ms", person, TFLITE_MICRO + f": {chip} without ESP-NN at {mhz} MHz", "fit"),
            _point(f"{chip}-person-detection-esp-nn", "model", "esp-nn", "person detection (int8) invoke()",
                   nn_ms, "ms", person, TFLITE_MICRO + f": {chip} with ESP-NN at {mhz} MHz",
                   "held-out" if chip == "esp32s3" else "fit"),
        ]  # fmt: skip
        doc = {
            "chip": chip,
            "cpu_mhz": mhz,
            "note": "estimates: the virtual board reports these figures as simulated, the host target as estimated",
            "units": CLASSES,
            "method": (__doc__ or "").split("Method:", 1)[1].strip(),
            "kernels": {"esp-nn": nn, "reference": ref},
            "points": points,
        }
        if chip == "esp32s3":
            doc["shapes"] = {"esp-nn ANSI C": shape_table}
            shape_table["fit"] = "int8: least squares on log(model/published) over esp-nn's 11 ANSI C kernel figures"
            for name, shape, memory, work, ansi, opt in KERNELS:
                for lib, value in (("esp-nn ANSI C", ansi), ("esp-nn", opt)):
                    doc["points"].append(
                        _point(f"esp32s3-{lib.replace(' ', '-')}-{name.replace(' ', '_')}-{shape.split(',')[0]}",
                               "kernel", lib, f"{name}: {shape}; {memory} memory", value, "cycles",
                               {"calls": {c: 1 for c in work}, "work": work}, ESP_NN, "fit")
                    )  # fmt: skip
        docs[chip] = doc
    return docs


def _point(pid, level, library, what, value, unit, workload, source, role) -> dict:
    return {
        "id": pid,
        "level": level,
        "library": library,
        "what": what,
        "dtype": "int8",
        "published": value,
        "unit": unit,
        "workload": workload,
        "source": source,
        "role": role,
    }


def rows(docs: dict[str, dict]) -> list[tuple]:
    out = []
    for chip, doc in docs.items():
        for p in doc["points"]:
            model = point_model_value(doc, p)
            out.append((chip, p, model, model / p["published"] - 1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="write models/data/timing/<chip>.json")
    ap.add_argument("--person-detect", type=Path, default=Path("/tmp/tflm-models/person_detect.tflite"))
    ap.add_argument("--from-files", action="store_true", help="only print the table of the files as they are")
    a = ap.parse_args()
    if a.from_files:
        docs = {c: json.loads((TIMING_DIR / f"{c}.json").read_text()) for c in PERSON}
    else:
        docs = build(person_workload(a.person_detect))
    if a.write:
        for chip, doc in docs.items():
            (TIMING_DIR / f"{chip}.json").write_text(json.dumps(doc, indent=2) + "\n")
    print("| chip | level | library | what | published | model | error | role |")
    print("|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for chip, p, model, err in rows(docs):
        fmt = (lambda v: f"{v:,.0f} ms" if v >= 10 else f"{v:.1f} ms") if p["unit"] == "ms" else (lambda v: f"{v:,.0f}")
        print(
            f"| {chip} | {p['level']} | {p['library']} | {p['what']} | {fmt(p['published'])} | {fmt(model)} "
            f"| {100 * err:+.0f} % | {p['role']} |"
        )
        worst = max(worst, abs(err))
    missed = [f"{c}:{p['id']}" for c, p, _, e in rows(docs) if abs(e) > GOAL]
    print(f"\nworst error {100 * worst:.0f} %; outside ±{100 * GOAL:.0f} %: {', '.join(missed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
