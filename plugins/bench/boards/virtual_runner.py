"""The virtual board's model runner: the twin of the firmware's ``model_runner.cc`` on host TFLM.

:func:`load_model` makes the checks the firmware makes when it loads a model, in its order
and with its words, and gives a :class:`LoadedModel` or a :class:`LoadRefused`. Its cycle
counts come from the timing model of the board's chip and kernel library
(:mod:`tinyhil.models.timing`, ``models/data/timing/<chip>.json``), not from the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyhil.models.host_eval import evaluate_isolated
from tinyhil.models.inspection import ModelInfo, inspect_tflite, tflite_schema
from tinyhil.models.tflm import QuantParams, io_quantization, load
from tinyhil.models.timing import cycles_of, load_timing, table_for
from tinyhil.plugins.firmware_tools.model_check import check_model
from tinyhil.plugins.firmware_tools.ops import missing_ops, registration_message, wrong_kernel

ALLOCATE_FAILED = "tflm: AllocateTensors failed"
NOT_A_MODEL = "tflm: not a valid TFLite flatbuffer"


class LoadRefused(Exception):
    """The firmware refuses the model.

    Args:
        error: The text of its ``e-[…]`` line.
        log: What TFLM prints before it (MicroPrintf lines, without their line end).
    """

    def __init__(self, error: str, log: list[str] | None = None):
        super().__init__(error)
        self.error = error
        self.log = log or []


@dataclass
class LoadedModel:
    """A model the board holds, ready to run.

    Attributes:
        interpreter: The host TFLM interpreter.
        qin: The input's quantization.
        qout: The output's quantization (EEMBC's results are dequantised with it).
        arena_used_bytes: The smallest arena the model loads in (None when unknown).
        op_cycles: ``(op, cycles)`` of one inference per op, from the timing model.
    """

    interpreter: object
    qin: QuantParams
    qout: QuantParams
    arena_used_bytes: int | None
    op_cycles: list[tuple[str, int]]

    @property
    def input_bytes(self) -> int:
        det = self.interpreter.get_input_details(0)
        return int(np.prod(det["shape"])) * np.dtype(det["dtype"]).itemsize

    @property
    def output_count(self) -> int:
        return int(np.prod(self.interpreter.get_output_details(0)["shape"]))

    @property
    def cycles_per_inference(self) -> int:
        return sum(c for _, c in self.op_cycles)

    def invoke(self, data: bytes) -> np.ndarray:
        """Runs one inference on the raw input bytes; returns the output, flat."""
        det = self.interpreter.get_input_details(0)
        x = np.frombuffer(data, dtype=det["dtype"]).reshape(det["shape"])
        self.interpreter.reset()
        self.interpreter.set_input(x, 0)
        self.interpreter.invoke()
        return self.output()

    def output(self) -> np.ndarray:
        """The last inference's output, flat."""
        return np.array(self.interpreter.get_output(0)).reshape(-1)


def load_model(
    data: bytes, arena_bytes: int, simulation: dict, kernels: str = "esp-nn", chip: str = "esp32"
) -> LoadedModel:
    """Loads ``data`` in an arena of ``arena_bytes`` as the firmware would.

    tflite-micro's Python runtime crashes on some inputs the firmware refuses (bytes that are
    not a flatbuffer; for some models, arenas just below the minimum): those are judged in a
    child process first, so that no command can kill the board.

    Args:
        data: The model's bytes.
        arena_bytes: The arena the firmware allocated.
        simulation: The board profile's ``simulation`` block (a legacy ``cycles_per_mac`` there wins).
        kernels: The kernel library whose refusals and costs it gives (the board profile's).
        chip: The board's chip: its timing file gives the cycles.

    Raises:
        LoadRefused: with the firmware's words, when it would refuse the model.
    """
    info = _parsed(data)
    if info is None:  # the firmware runs the flatbuffers verifier here
        raise LoadRefused(NOT_A_MODEL)
    if isinstance(info, str):  # the firmware's structure check (model_check.cc) refused it
        raise LoadRefused(info)
    _check_ops(info, kernels)
    used = _minimum_arena(data, arena_bytes)
    res = load(data, arena_bytes)
    if not res.ok:
        raise LoadRefused(ALLOCATE_FAILED, (res.tflm_message or "").splitlines())
    qin, qout = io_quantization(res.interpreter)
    return LoadedModel(res.interpreter, qin, qout, used, op_cycles(info, simulation, kernels, chip))


def _parsed(data: bytes) -> ModelInfo | str | None:
    """``data``'s inspection when it reads as a TFLite model (identifier, then the schema's
    tables), else None: this board's stand-in for the firmware's flatbuffers verifier. A model
    that reads but has an index out of range, or data shorter than its tensor, is the firmware's
    refusal of it (``model: …``), checked before the inspection reads those indices."""
    if data[4:8] != b"TFL3" or not _root_table_sound(data):
        return None
    try:
        fb = tflite_schema()
        tables = fb.ModelT.InitFromObj(fb.Model.GetRootAs(bytearray(data), 0))
    except Exception:  # noqa: BLE001 - garbage fails in many ways; all of them mean "not a model"
        return None
    problem = check_model(tables)
    if problem is not None:
        return problem
    try:
        return inspect_tflite(data)
    except Exception:  # noqa: BLE001
        return None


def _root_table_sound(data: bytes) -> bool:
    """The start of the flatbuffers verifier's walk: the root table and its vtable lie inside the
    buffer, aligned, the vtable at least its own 4-byte header (the Python flatbuffers reader checks
    none of it: a root offset of 0 reads the identifier as a table)."""
    n = len(data)
    if n < 12:
        return False
    root = int.from_bytes(data[0:4], "little")
    if root % 4 or root < 8 or root + 4 > n:
        return False
    vtable = root - int.from_bytes(data[root : root + 4], "little", signed=True)
    if vtable % 2 or vtable < 0 or vtable + 4 > n:
        return False
    vsize, tsize = (
        int.from_bytes(data[vtable : vtable + 2], "little"),
        int.from_bytes(data[vtable + 2 : vtable + 4], "little"),
    )
    return vsize >= 4 and vsize % 2 == 0 and vtable + vsize <= n and tsize >= 4 and root + tsize <= n


def _check_ops(info: ModelInfo, kernels: str) -> None:
    """Refuses what the firmware's op resolver lacks, or a kernel known to compute something else.

    Raises:
        LoadRefused: for the first such op.
    """
    missing = missing_ops([o.op for o in info.ops])
    if missing:  # host TFLM would load it; the firmware's resolver lacks the op
        raise LoadRefused(ALLOCATE_FAILED, [registration_message(missing[0])])
    wrong = wrong_kernel(info.ops, kernels)
    if wrong:
        raise LoadRefused(f"tflm: {wrong}")


def _minimum_arena(data: bytes, arena_bytes: int) -> int | None:
    """The model's smallest arena, measured in a child process (None when unknown).

    Raises:
        LoadRefused: the child crashed, or ``arena_bytes`` is below the minimum (the firmware's words).
    """
    ev = evaluate_isolated(data, None)
    if ev.crash:
        raise LoadRefused(NOT_A_MODEL)
    used = ev.arena.min_arena_bytes
    if used is not None and arena_bytes < used:  # an explicit arena (auto takes the largest block)
        raise LoadRefused(arena_below(arena_bytes, used))
    return used


def arena_below(arena_bytes: int, used: int) -> str:
    """The firmware's refusal of an explicit arena below what the model takes (``model_runner.cc``:
    it never hands TFLM such an arena, which TFLM could write past)."""
    return (
        f"arena: {arena_bytes} bytes is below the {used} bytes this model needs (the smallest arena in which "
        "TFLM allocates its tensors, measured on this board; a smaller arena is not handed to TFLM)"
    )


def op_cycles(info: ModelInfo, simulation: dict, kernels: str = "esp-nn", chip: str = "esp32") -> list[tuple[str, int]]:
    """``(op, cycles)`` per op: the chip's timing model for the board's kernel library; a profile
    whose ``simulation`` still gives ``cycles_per_mac`` (tinyhil 0.2's flat model: a fixed cost per
    op and one per MAC by dtype) keeps that, and so does a chip without a timing file."""
    timing = None if "cycles_per_mac" in simulation else load_timing(chip)
    if timing is not None:
        table = table_for(timing, kernels)
        return [(op.op, int(round(cycles_of(op, table)))) for op in info.ops]
    per_mac = simulation.get("cycles_per_mac", {})
    return [
        (
            op.op,
            int(simulation.get("cycles_per_op", 0) + op.macs * per_mac.get(op.weight_dtype or op.input_dtype, 8.0)),
        )
        for op in info.ops
    ]
