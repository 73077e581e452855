"""Capture what native code (TFLM, the TFLite converter) prints on the C-level stderr."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
from collections.abc import Iterator


class Captured:
    """Holds the captured text once the ``with`` block has ended."""

    text: str = ""


@contextlib.contextmanager
def capture_c_stderr() -> Iterator[Captured]:
    """Redirects file descriptor 2 to a temporary file for the duration of the block.

    Python's ``sys.stderr`` is left alone; only what native libraries write to fd 2 is
    caught. Nests correctly with pytest's own fd capture because fd 2 is restored to
    whatever it was before.
    """
    out = Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            try:
                sys.stderr.flush()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            tmp.seek(0)
            out.text = tmp.read().decode("utf-8", "replace")


# What TensorFlow prints on fd 2 while it starts, before its log level applies: absl's
# notice, the CUDA probes of a machine without a GPU, the CPU-feature banner, and oneDNN's
# notice (logged by absl at INFO, whatever TF_CPP_MIN_LOG_LEVEL says, in TF 2.21).
START_UP_NOISE = (
    "absl::InitializeLog",
    "oneDNN custom operations are on",
    "cudart_stub.cc",
    "cuda_platform.cc",
    "cpu_feature_guard.cc",
    "To enable the following instructions",
)


class _QuietTensorFlowStart(importlib.abc.MetaPathFinder):
    """Runs TensorFlow's first import and its GPU probe with fd 2 captured, then writes back
    every line but :data:`START_UP_NOISE` (an import error or a real warning still shows)."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and not for the lookup below
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_quietly(module):
            cap = None
            try:
                with capture_c_stderr() as cap:
                    exec_module(module)
                    module.config.list_physical_devices("GPU")  # the CUDA probe, here rather than at the first op
            finally:
                kept = [ln for ln in (cap.text if cap else "").splitlines(keepends=True) if not _noise(ln)]
                if kept:
                    sys.stderr.write("".join(kept))

        spec.loader.exec_module = exec_quietly
        return spec


def _noise(line: str) -> bool:
    return any(n in line for n in START_UP_NOISE)


def quiet_tensorflow_start() -> None:
    """Hides TensorFlow's start-up chatter (see :data:`START_UP_NOISE`) in this process when it
    imports TensorFlow (not when TensorFlow is already imported). :mod:`tinyhil.models` calls
    it unless the user set ``TF_CPP_MIN_LOG_LEVEL``: then they asked for TensorFlow's logs."""
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlowStart) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowStart())
