"""The timing model: estimated cycles of a model on a chip, per op, from published figures.

One data file per chip (``models/data/timing/<chip>.json``, written by
``benchmarks/fit_timing.py``) holds, for each kernel library (``esp-nn``, ``reference``), a
fixed cost per op and a cost per unit of work per op class and activation dtype, the
published figures it was fit to (and those held out), their sources and the fit method.

An op's cycles are ``cycles_per_op + cycles_per_call[class] + work x cycles_per_unit[class][dtype]``
(``cycles_per_call`` is 0 for a class it does not name), where the work
is the op's MACs (conv, depthwise conv, fully connected, LSTM), its pooled elements (output
elements x window) or its output elements (everything else). Every figure this gives is an
estimate: the virtual board reports it as ``simulated``, the host target as ``estimated``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tinyhil import resources
from tinyhil.models.errors import TinyhilError

TIMING_DIR = resources.data("timing")
# op class -> unit of its work
CLASSES: dict[str, str] = {
    "conv_1x1": "MAC",  # CONV_2D with a 1x1 filter (pointwise)
    "conv": "MAC",  # CONV_2D with any other filter (Conv1D is a 1xk CONV_2D)
    "depthwise_conv": "MAC",
    "fully_connected": "MAC",
    "lstm": "MAC",
    "max_pool": "pooled element",  # output elements x filter height x width
    "avg_pool": "pooled element",
    "add": "output element",  # ADD, SUB
    "mul": "output element",
    "activation": "output element",  # RELU, RELU6, LOGISTIC, TANH, ...
    "other": "output element",  # RESHAPE, SOFTMAX, QUANTIZE, CONCATENATION, MEAN, ...
}
DTYPES = ("int8", "int16", "float32")
_BY_OP = {
    "DEPTHWISE_CONV_2D": "depthwise_conv",
    "FULLY_CONNECTED": "fully_connected",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "lstm",
    "LSTM": "lstm",
    "MAX_POOL_2D": "max_pool",
    "AVERAGE_POOL_2D": "avg_pool",
    "ADD": "add",
    "SUB": "add",
    "MUL": "mul",
    **{
        a: "activation"
        for a in ("RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "PRELU", "HARD_SWISH", "LOGISTIC", "TANH", "ELU")
    },
}


class TimingError(TinyhilError):
    """A timing file that is missing or not of the expected layout."""


def op_class(op) -> str:
    """The class of an :class:`~tinyhil.models.inspection.OpInfo` in the cost tables."""
    if op.op == "CONV_2D":
        return "conv_1x1" if op.window == 1 else "conv"
    return _BY_OP.get(op.op, "other")


def op_work(op) -> int:
    """The op's units of work (see :data:`CLASSES`)."""
    unit = CLASSES[op_class(op)]
    if unit == "MAC":
        return op.macs
    if unit == "pooled element":
        return op.out_elements * max(op.window, 1)
    return op.out_elements


def op_dtype(op) -> str:
    """The dtype whose cost applies: the activations' (int8 and uint8 as int8; a float model, or a
    dynamic-range one with float activations, as float32)."""
    d = op.input_dtype
    if d in ("int8", "uint8"):
        return "int8"
    if d == "int16":
        return "int16"
    return "float32"


def timing_path(chip: str) -> Path:
    return TIMING_DIR / f"{chip}.json"


@cache
def _load(path: str) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise TimingError(f"timing file {path} is not readable JSON ({e})") from None
    for lib, table in doc.get("kernels", {}).items():
        for key in ("cycles_per_op", "cycles_per_unit"):
            if key not in table:
                raise TimingError(f"timing file {path}: kernels.{lib} has no {key!r}")
    return doc


def load_timing(chip: str) -> dict | None:
    """The chip's timing file, or None when tinyhil has none for it."""
    path = timing_path(chip)
    return _load(str(path)) if path.is_file() else None


def table_for(timing: dict, kernels: str) -> dict:
    try:
        return timing["kernels"][kernels]
    except KeyError:
        raise TimingError(f"timing file of {timing.get('chip')}: no cost table for kernels {kernels!r}") from None


def cycles_of(op, table: dict) -> float:
    """Estimated cycles of one op with one library's cost table."""
    cls = op_class(op)
    per_unit = table["cycles_per_unit"][cls][op_dtype(op)]
    return table["cycles_per_op"] + table.get("cycles_per_call", {}).get(cls, 0.0) + op_work(op) * per_unit


def workload_cycles(workload: dict, table: dict, dtype: str = "int8") -> float:
    """Cycles of a workload given as ``{"calls": {<class>: ops}, "work": {<class>: work}}`` (the data
    files' points)."""
    per_call = table.get("cycles_per_call", {})
    total = 0.0
    for cls, n in workload["calls"].items():
        total += n * (table["cycles_per_op"] + per_call.get(cls, 0.0))
    for cls, work in workload["work"].items():
        total += work * table["cycles_per_unit"][cls][dtype]
    return total


def workload_of(ops) -> dict:
    """A model's ops as a workload: ops and work per class."""
    calls: dict[str, int] = {}
    work: dict[str, int] = {}
    for op in ops:
        cls = op_class(op)
        calls[cls] = calls.get(cls, 0) + 1
        work[cls] = work.get(cls, 0) + op_work(op)
    return {"calls": calls, "work": work}


@dataclass(frozen=True)
class Estimate:
    """The timing model's figures for one inference on one board (estimates, not measurements)."""

    cycles: int
    latency_ms: float
    energy_mj: float | None  # active current x supply voltage x latency; None without a current
    basis: str  # what it comes from: chip, kernel library, clock, file


SUPPLY_VOLTS = 3.3  # the module's supply, as the simulated meter's default (--supply-volts)


def estimate(ops, board) -> Estimate | None:
    """The model's estimated latency and energy per inference on ``board`` (None when tinyhil has
    no timing file for its chip).

    Latency is the cycles at the board's clock; energy is the profile's ``active_current_ma``
    (its ``simulation`` block) at :data:`SUPPLY_VOLTS` over that time.
    """
    timing = load_timing(board.chip)
    if timing is None:
        return None
    table = table_for(timing, board.kernels)
    cycles = int(round(sum(cycles_of(op, table) for op in ops)))
    latency_ms = cycles / (board.cpu_mhz * 1e3)
    active_ma = board.simulation.get("active_current_ma")
    energy = None if active_ma is None else active_ma / 1e3 * SUPPLY_VOLTS * latency_ms
    basis = f"timing model {board.chip}/{board.kernels} at {board.cpu_mhz} MHz (models/data/timing/{board.chip}.json)"
    return Estimate(cycles, latency_ms, energy, basis)


def point_model_value(timing: dict, point: dict, cpu_mhz: float | None = None) -> float:
    """The model's figure for one published point of a timing file, in the point's unit: the
    point's workload costed with the table of its library (``kernels``, or ``shapes`` for a
    library no board runs), in cycles or in ms at the file's clock."""
    lib = point["library"]
    table = timing.get("kernels", {}).get(lib) or timing.get("shapes", {}).get(lib)
    if table is None:
        raise TimingError(f"timing file of {timing.get('chip')}: no cost table for {lib!r}")
    cycles = workload_cycles(point["workload"], table, point.get("dtype", "int8"))
    if point.get("unit", "cycles") == "cycles":
        return cycles
    return cycles / ((cpu_mhz or timing["cpu_mhz"]) * 1e3)
