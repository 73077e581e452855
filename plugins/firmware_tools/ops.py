"""The ops the firmware registers, read from the file the firmware is built from.

``firmware/main/ops.def`` holds one ``TINYHIL_OP(AddFunction, BUILTIN_NAME)`` line per op of
the firmware's resolver. A model with an op outside it loads on host TFLM (whose Python
runtime registers every op) but not on the board, which answers ``Failed to get
registration from op code ...``. The host verdict for a board and the virtual board read
the same list, so they say what the board would.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from tinyhil import resources
from tinyhil.plugins.firmware_tools.commands import xmacro_entries

OPS_DEF = resources.firmware("main", "ops.def")

_ENTRY = re.compile(r"TINYHIL_OP\(\s*(\w+)\s*,\s*([A-Z0-9_]+)\s*\)")


@cache
def firmware_ops(path: Path = OPS_DEF) -> frozenset[str]:
    """The schema names (``CONV_2D``) of the ops in an ``ops.def`` file.

    Raises:
        ValueError: The file holds no entry, or one this parser cannot read (the C
            preprocessor might still accept it, and the two lists would differ).
        OSError: The file cannot be read.
    """
    entries = xmacro_entries(path, "TINYHIL_OP", _ENTRY, "TINYHIL_OP(AddFunction, BUILTIN_NAME)")
    names = [e[2] for e in entries]
    return frozenset(names)


def missing_ops(op_names: list[str]) -> list[str]:
    """The ops of a model (names as :mod:`tinyhil.models.inspection` gives them, custom ones as
    ``CUSTOM:<code>``) that the firmware does not register, each once, in model order."""
    have = firmware_ops()
    return [op for op in dict.fromkeys(op_names) if op not in have]


def registration_message(op: str) -> str:
    """TFLM's line for an op its resolver lacks (custom ops print as ``CUSTOM``)."""
    return f"Failed to get registration from op code {op.split(':', 1)[0]}"


def refusal_reason(missing: list[str]) -> str:
    """The verdict reason: what the board would say, and where the list lives."""
    return (
        f"the tinyhil firmware does not register {', '.join(missing)} (firmware/main/ops.def): "
        f"on the board, TFLM: {registration_message(missing[0])}"
    )


# Kernels the firmware refuses to run because they compute something else. esp-tflite-micro
# always builds its ESP-NN kernels, and from 1.3.8 up to 1.4.0 (the newest checked) the int16
# FULLY_CONNECTED path ignores per-channel weight scales: an int16x8 model's outputs are off
# by thousands of LSB (0 of 20 outputs matched host TFLM, measured on a host build). The
# firmware (model_runner.cc, with ESP-NN) and this check refuse the same models.
ESP_NN_INT16_FC = (
    "esp-tflite-micro's ESP-NN int16 FULLY_CONNECTED ignores per-channel weight scales (1.3.8 to 1.4.0): "
    "the firmware refuses int16x8 fully-connected layers with per-channel weights rather than give wrong answers"
)


def wrong_kernel(ops, kernels: str) -> str | None:
    """Why the firmware would refuse a model's op for a known-wrong kernel, or None.

    Args:
        ops: :class:`tinyhil.models.inspection.OpInfo` of the model.
        kernels: The kernel library of the board's build (``esp-nn`` or ``reference``); TFLM's
            reference kernels compute these ops right.
    """
    if kernels != "esp-nn":
        return None
    for op in ops:
        if op.op == "FULLY_CONNECTED" and op.input_dtype == "int16" and op.per_channel:
            return ESP_NN_INT16_FC
    return None
