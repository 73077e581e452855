"""How often the study's cases share their input bytes: the test windows each case would send.

Usage::

    python benchmarks/window_sharing.py                      # the whole matrix: 14 networks x 13 techniques
    python benchmarks/window_sharing.py --networks C_1,CL_1 --techniques paper

Every case classifies the same test split; what travels is each window in the model's input
type, so two cases share their bytes when their input tensors have the same type, scale and
zero point. The script builds (or takes from the model cache) every case's .tflite, reads its
input tensor, and prints the distinct input encodings with the cases of each, and how many bytes
the test windows of the matrix come to with and without sharing. A case whose conversion failed
has no input tensor and is left out (said so).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--networks", default="all", help="networks (default: all of Table 1)")
    p.add_argument("--techniques", default="all", help="techniques or a set: paper, extended, all (default: all)")
    p.add_argument("--model-cache", default=str(ROOT / ".tinyhil-cache"), help="model cache (default: the project's)")
    return p.parse_args(argv)


def input_encoding(tflite: bytes) -> tuple[str, float, int, int]:
    """``(dtype, scale, zero_point, elements)`` of a model's first input, read from the flatbuffer
    (also for a model TFLM refuses at prepare: its windows would have been sent all the same)."""
    from tinyhil.models.inspection import inspect_tflite

    info = inspect_tflite(tflite)
    elements = 1
    for d in info.input_shape:
        elements *= int(d)
    return info.input_dtype, info.input_quant[0], info.input_quant[1], elements


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tinyhil.models.pipeline import Study, StudyConfig
    from tinyhil.plugins.settings.resolve import expand_networks, expand_techniques

    networks, techniques = expand_networks(args.networks), expand_techniques(args.techniques, "cascading")
    study = Study(StudyConfig(cache_dir=Path(args.model_cache)), progress=lambda line: None)
    n_test = len(study.dataset.x_test)
    groups: dict[tuple, list[str]] = defaultdict(list)
    left_out: list[str] = []
    for i, net in enumerate(networks):
        print(f"[{i + 1}/{len(networks)}] {net}: {len(techniques)} techniques", file=sys.stderr, flush=True)
        for tech in techniques:
            art = study.artifacts(net, tech)
            if not art.conversion.tflite:
                left_out.append(f"{net}-{tech} ({art.conversion.error or 'no model'})")
                continue
            groups[input_encoding(art.conversion.tflite)].append(f"{net}-{tech}")
    width = {"float32": 4, "int8": 1, "uint8": 1, "int16": 2}
    cases = sum(len(v) for v in groups.values())
    print(f"{cases} cases with a model, {len(groups)} distinct input encodings, {n_test} test windows each\n")
    print("| input type | scale | zero point | cases | bytes per window |")
    print("|---|---|---|---|---|")
    unshared = shared = 0
    for (dtype, scale, zp, elements), names in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        per_window = elements * width.get(dtype, 4)
        unshared += per_window * n_test * len(names)
        shared += per_window * n_test
        print(f"| {dtype} | {scale:.6g} | {zp} | {len(names)} | {per_window:,} |")
    print(
        f"\ntest windows of the matrix: {unshared / 1e6:,.1f} MB sent case by case, {shared / 1e6:,.1f} MB once per encoding"
    )
    floats = max((e for _, _, _, e in groups), default=0) * 4 * n_test
    print(f"as float32 once (the board converts each to the model's input type): {floats / 1e6:,.1f} MB")
    if left_out:
        print(f"\nleft out, no model: {', '.join(left_out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
