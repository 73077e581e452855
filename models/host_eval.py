"""Host evaluation of a .tflite (LiteRT accuracy, TFLM minimum arena, TFLM outputs) in a child process.

TFLM is native code: a model can crash it (seen here: a full-integer CNN-LSTM whose conv
layer has one filter segfaults ``tflite-micro``'s interpreter at load). Running the
evaluation in a child turns such a crash into a verdict for that case instead of the end
of the run, as a panicking board is for the bench target.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyhil import resources
from tinyhil.models.cache import cached_dir, content_key, entry_dir, is_cached
from tinyhil.models.lifeline import child_env, die_with_parent_from_env
from tinyhil.models.tflm import ArenaResult, InvokeError, minimum_arena, predict, predict_litert

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
    model: bytes,
    x: np.ndarray | None,
    crashed: frozenset[int] = frozenset(),
    journal: Path | None = None,
    litert: bool = True,
) -> HostEvaluation:
    """In this process; with ``x`` None (data the model does not take) only the arena is found.

    ``crashed`` and ``journal`` go to :func:`tinyhil.models.tflm.minimum_arena`; ``litert`` False
    leaves LiteRT out (the caller has its scores).
    """
    scores = None
    if x is not None and litert:
        try:
            scores = predict_litert(model, x)
        except (ValueError, RuntimeError):
            pass  # LiteRT cannot load TFLM-only models (DECODE, LUT-compressed tensors)
    arena = minimum_arena(model, crashed=crashed, journal=journal)
    result = HostEvaluation(scores, arena)
    if arena.status == "ok" and x is not None:
        try:
            result.tflm_scores = predict(model, x, arena.min_arena_bytes)
        except InvokeError as e:
            result.invoke_error = str(e)
    return result


class _Runtime:
    """A child process that evaluates models one after another (``python -m tinyhil.models.host_eval``).

    Starting Python and the runtimes once per process instead of once per case is most of
    a warm re-judge's time. The child reads a request folder per line on stdin and
    answers ``ok`` or ``error`` per line on stdout; its stderr goes to a log whose tail
    names a crash. After a crash the next request starts a new child.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-rt-"))
        self.log = self.folder / "stderr.log"
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        with open(self.log, "ab") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "tinyhil.models.host_eval", "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=child_env(resources.import_root()),
                text=True,
                bufsize=1,
            )

    def request(self, folder: Path, timeout_s: float) -> tuple[str, str]:
        """Evaluates the request in ``folder``: ``("ok", "")``, ``("error", tail)`` for a
        Python error, ``("crash", how)`` when the child died or hung (it is replaced)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        offset = self.log.stat().st_size if self.log.exists() else 0
        proc = self.proc
        try:
            proc.stdin.write(f"{folder}\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died: readline below sees the end
        ready = select.select([proc.stdout], [], [], timeout_s)[0]
        reply = proc.stdout.readline().strip() if ready else None
        if reply == "ok":
            return "ok", ""
        tail = self._tail(offset)
        if reply == "error":
            return "error", tail
        if reply is None:
            proc.kill()
            self._discard()
            return "timeout", f"the host runtime did not finish within {timeout_s:g} s"
        code = self._discard()
        how = f"{signal.Signals(-code).name} (signal {-code})" if code < 0 else f"exit code {code}"
        return "crash", how + (f": {tail}" if tail else "")

    def _discard(self) -> int:
        """Waits for the dead (or killed) child, closes its pipes; returns its exit code."""
        proc, self.proc = self.proc, None
        code = proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass  # a pipe to a dead child may refuse the flush
        return code

    def _tail(self, offset: int) -> str:
        text = self.log.read_bytes()[offset:].decode(errors="replace") if self.log.exists() else ""
        lines = [ln for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("INFO:")]
        return " | ".join(lines[-3:])

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()  # the child's loop ends at the end of its input
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
            self._discard()
        shutil.rmtree(self.folder, ignore_errors=True)


_RUNTIME: _Runtime | None = None


def _runtime() -> _Runtime:
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = _Runtime()
        atexit.register(_RUNTIME.close)
    return _RUNTIME


def _litert_key(model: bytes, x: np.ndarray) -> str:
    from importlib.metadata import version

    return content_key(
        {
            "model": hashlib.sha256(model).hexdigest(),
            "x": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest(),
            "shape": list(x.shape),
            "litert": version("ai-edge-litert"),
        }
    )


def _cached_litert(cache_dir: Path, key: str) -> tuple[bool, np.ndarray | None]:
    """``(hit, scores)``: scores None on a hit means LiteRT cannot load the model."""
    if not is_cached(cache_dir, "litert", "scores", key):
        return False, None
    entry = entry_dir(cache_dir, "litert", "scores", key)
    return True, (np.load(entry / "scores.npy") if (entry / "scores.npy").exists() else None)


def _store_litert(cache_dir: Path, key: str, scores: np.ndarray | None) -> None:
    def build(tmp: Path) -> None:
        if scores is None:
            (tmp / "not-loadable").write_text("LiteRT could not load this model\n")
        else:
            np.save(tmp / "scores.npy", scores)

    cached_dir(cache_dir, "litert", "scores", key, build)


def evaluate_isolated(
    model: bytes,
    x: np.ndarray | None,
    timeout_s: float = 1800,
    max_crashed_probes: int = 32,
    cache_dir: Path | None = None,
) -> HostEvaluation:
    """In a child process (one per process, reused from case to case); a crash or hang of
    the native runtimes becomes ``crash``.

    A crash while the arena search probes an intermediate size (tflite-micro segfaults at
    some sizes for some models) is not the model's verdict: that size counts as refused and
    the search runs again in a new child, up to ``max_crashed_probes`` sizes.

    With ``cache_dir``, LiteRT's scores are cached by model, inputs and LiteRT version:
    they do not depend on TFLM, so a re-judge after a TFLM upgrade runs only TFLM.
    """
    crashed: set[int] = set()
    runtime = _runtime()
    litert_key = _litert_key(model, x) if cache_dir is not None and x is not None else None
    litert_hit, litert_scores = _cached_litert(cache_dir, litert_key) if litert_key else (False, None)
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        d = Path(tmp)
        (d / "model.tflite").write_bytes(model)
        if x is not None:
            np.save(d / "x.npy", x)
        if litert_hit:
            (d / "no-litert").touch()
        while True:
            (d / "crashed.json").write_text(json.dumps(sorted(crashed)))
            (d / "journal.txt").unlink(missing_ok=True)
            outcome, detail = runtime.request(d, timeout_s)
            if outcome == "ok":
                break
            if outcome == "timeout":
                return HostEvaluation(None, None, crash=detail)
            if outcome == "error":
                return HostEvaluation(None, None, crash=f"the host runtime raised: {detail}")
            size = _crashed_probe(d / "journal.txt")
            if detail.startswith("SIG") and size is not None and len(crashed) < max_crashed_probes:
                crashed.add(size)
                continue
            return HostEvaluation(None, None, crash=detail)
        r = json.loads((d / "result.json").read_text())
        if not litert_hit:
            litert_scores = np.load(d / "litert.npy") if (d / "litert.npy").exists() else None
            if litert_key:
                _store_litert(cache_dir, litert_key, litert_scores)
        return HostEvaluation(
            litert_scores,
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


def _child(folder: Path) -> int:
    x = np.load(folder / "x.npy") if (folder / "x.npy").exists() else None
    crashed = frozenset(json.loads((folder / "crashed.json").read_text()))
    result = evaluate(
        (folder / "model.tflite").read_bytes(),
        x,
        crashed,
        journal=folder / "journal.txt",
        litert=not (folder / "no-litert").exists(),
    )
    if result.litert_scores is not None:
        np.save(folder / "litert.npy", result.litert_scores)
    if result.tflm_scores is not None:
        np.save(folder / "tflm.npy", result.tflm_scores)
    a = result.arena
    arena = {"min_arena_bytes": a.min_arena_bytes, "status": a.status, "reason": a.reason, "probes": a.probes}
    (folder / "result.json").write_text(json.dumps({"arena": arena, "invoke_error": result.invoke_error}))
    return 0


def _serve() -> int:
    """The child's loop: one request folder per line in, ``ok`` or ``error`` per line out."""
    # Replies get a descriptor of their own; anything the runtimes print goes to stderr.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for line in sys.stdin:
        try:
            _child(Path(line.strip()))
            reply = "ok"
        except Exception:  # noqa: BLE001 - the parent reports it with the traceback's tail
            traceback.print_exc()
            sys.stderr.flush()
            reply = "error"
        replies.write(reply + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    die_with_parent_from_env()
    sys.exit(_serve())
