"""Host evaluation of a .tflite (LiteRT accuracy, TFLM minimum arena, TFLM outputs) in a child process.

TFLM is native code: a model can crash it (seen here: a full-integer CNN-LSTM whose conv
layer has one filter segfaults ``tflite-micro``'s interpreter at load). Running the
evaluation in a child turns such a crash into a verdict for that case instead of the end
of the run, as a panicking board is for the bench target.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.lifeline import child_env, die_with_parent_from_env
from models.tflm import ArenaResult, InvokeError, minimum_arena, predict, predict_litert

ROOT = Path(__file__).resolve().parent.parent
TEMP_PREFIX = "tinyhil-host-"  # + pid, so a later run can sweep what a killed one left


@dataclass
class HostEvaluation:
    """What the host runtimes made of a model.

    Attributes:
        litert_scores: LiteRT outputs, or None when LiteRT cannot load the model.
        arena: TFLM's verdict on loading and the exact minimum arena.
        tflm_scores: TFLM outputs at the minimum arena, or None.
        invoke_error: TFLM's message when an invoke failed.
        crash: How the runtime process died (``SIGSEGV ...``), or None.
    """

    litert_scores: np.ndarray | None
    arena: ArenaResult | None
    tflm_scores: np.ndarray | None = None
    invoke_error: str | None = None
    crash: str | None = None


def evaluate(
    model: bytes, x: np.ndarray | None, crashed: frozenset[int] = frozenset(), journal: Path | None = None
) -> HostEvaluation:
    """In this process; with ``x`` None (data the model does not take) only the arena is found.

    ``crashed`` and ``journal`` go to :func:`models.tflm.minimum_arena`.
    """
    litert = None
    if x is not None:
        try:
            litert = predict_litert(model, x)
        except (ValueError, RuntimeError):
            pass  # LiteRT cannot load TFLM-only models (DECODE, LUT-compressed tensors)
    arena = minimum_arena(model, crashed=crashed, journal=journal)
    result = HostEvaluation(litert, arena)
    if arena.status == "ok" and x is not None:
        try:
            result.tflm_scores = predict(model, x, arena.min_arena_bytes)
        except InvokeError as e:
            result.invoke_error = str(e)
    return result


def evaluate_isolated(
    model: bytes, x: np.ndarray | None, timeout_s: float = 1800, max_crashed_probes: int = 32
) -> HostEvaluation:
    """In a child process; a crash or hang of the native runtimes becomes ``crash``.

    A crash while the arena search probes an intermediate size (tflite-micro segfaults at
    some sizes for some models) is not the model's verdict: that size counts as refused and
    the search runs again in a new child, up to ``max_crashed_probes`` sizes.
    """
    crashed: set[int] = set()
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        d = Path(tmp)
        (d / "model.tflite").write_bytes(model)
        if x is not None:
            np.save(d / "x.npy", x)
        while True:
            (d / "crashed.json").write_text(json.dumps(sorted(crashed)))
            (d / "journal.txt").unlink(missing_ok=True)
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "models.host_eval", str(d)],
                    capture_output=True,
                    text=True,
                    timeout=timeout_s,
                    env=child_env(ROOT),
                )
            except subprocess.TimeoutExpired:
                return HostEvaluation(None, None, crash=f"the host runtime did not finish within {timeout_s:g} s")
            if proc.returncode == 0:
                break
            size = _crashed_probe(d / "journal.txt")
            if proc.returncode < 0 and size is not None and len(crashed) < max_crashed_probes:
                crashed.add(size)
                continue
            return HostEvaluation(None, None, crash=_how(proc))
        r = json.loads((d / "result.json").read_text())
        return HostEvaluation(
            np.load(d / "litert.npy") if (d / "litert.npy").exists() else None,
            ArenaResult(**r["arena"]),
            np.load(d / "tflm.npy") if (d / "tflm.npy").exists() else None,
            r["invoke_error"],
        )


def _crashed_probe(journal: Path) -> int | None:
    """The intermediate size the arena search was probing when the child died, if it was."""
    lines = journal.read_text().splitlines() if journal.exists() else []
    if lines and lines[-1].startswith("probe "):
        return int(lines[-1].split()[1])
    return None


def _how(proc: subprocess.CompletedProcess) -> str:
    how = (
        f"{signal.Signals(-proc.returncode).name} (signal {-proc.returncode})"
        if proc.returncode < 0
        else f"exit code {proc.returncode}"
    )
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip() and not ln.startswith("INFO:")]
    tail = " | ".join(lines[-3:])
    return how + (f": {tail}" if tail else "")


def _child(folder: Path) -> int:
    x = np.load(folder / "x.npy") if (folder / "x.npy").exists() else None
    crashed = frozenset(json.loads((folder / "crashed.json").read_text()))
    result = evaluate((folder / "model.tflite").read_bytes(), x, crashed, journal=folder / "journal.txt")
    if result.litert_scores is not None:
        np.save(folder / "litert.npy", result.litert_scores)
    if result.tflm_scores is not None:
        np.save(folder / "tflm.npy", result.tflm_scores)
    a = result.arena
    arena = {"min_arena_bytes": a.min_arena_bytes, "status": a.status, "reason": a.reason, "probes": a.probes}
    (folder / "result.json").write_text(json.dumps({"arena": arena, "invoke_error": result.invoke_error}))
    return 0


if __name__ == "__main__":
    die_with_parent_from_env()
    sys.exit(_child(Path(sys.argv[1])))
