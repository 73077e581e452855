"""The host target: the ``tflite-micro`` runtime on this machine, judged against a board's budgets.

Gives op support in TFLM's own words, the exact minimum arena, the memory fit against the
board profile, and accuracy on TFLM and on the TFLite interpreter. It measures no device
latency or energy: those columns stay empty. For a case that runs it gives the timing model's
estimate for the board's chip and kernel library (:mod:`tinyhil.models.timing`) in the
``*_estimated`` columns, never as a measurement.
"""

from __future__ import annotations

import struct

import numpy as np

from tinyhil.models.boards import Board, check_fit, check_flash
from tinyhil.models.compression import summarize_error
from tinyhil.models.host_eval import evaluate_isolated
from tinyhil.models.model_files import data_fits
from tinyhil.models.pipeline import CaseArtifacts, Study
from tinyhil.models.timing import estimate
from tinyhil.models.verdict import Verdict
from tinyhil.plugins.firmware_tools.ops import missing_ops, refusal_reason, wrong_kernel
from tinyhil.plugins.targets.base import Outcome, TargetContext, register_target

# The host runtime (the tflite-micro wheel) runs in this interpreter: its pointer width.
POINTER_BITS = struct.calcsize("P") * 8


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == labels))


class HostTarget:
    """TFLM on the host: what the board will do, minus timing and energy."""

    def run(self, art: CaseArtifacts, study: Study, board: Board) -> Outcome:
        ds = study.dataset
        figures: dict = {}
        conv = art.conversion
        if not conv.ok:
            return Outcome(Verdict("convert_error", f"converter: {summarize_error(conv.error)}", None, False), figures)
        model = conv.tflite
        fits_data = data_fits(art.info, ds)  # a user's model may take other inputs: no accuracy then
        ev = evaluate_isolated(model, ds.x_test if fits_data else None, cache_dir=study.config.cache_dir)
        if ev.crash:
            return Outcome(Verdict("device_error", f"the host TFLM runtime crashed: {ev.crash}", None, False), figures)
        if ev.litert_scores is not None:
            figures["acc_tflite"] = accuracy(ev.litert_scores, ds.y_test)
        arena = ev.arena
        fit = None
        if arena.status == "ok":
            figures.update(
                arena_bytes=arena.min_arena_bytes, arena_source="measured-host", arena_pointer_bits=POINTER_BITS
            )
            fit = check_fit(board, len(model), arena.min_arena_bytes)
        if ev.tflm_scores is not None:  # None when the arena or the invoke failed
            figures["acc_tflm"] = accuracy(ev.tflm_scores, ds.y_test)
        missing, wrong = missing_ops([o.op for o in art.info.ops]), wrong_kernel(art.info.ops, board.kernels)
        if missing or wrong:
            # host TFLM registers every op; the board's firmware only those of ops.def
            reason = refusal_reason(missing) if missing else f"on the board: tflm: {wrong}"
            return Outcome(Verdict("unsupported_op", reason, fit.fits if fit else None, False), figures)
        if fit is None:
            # A refusal at prepare can still be told apart from a size problem: check flash.
            fits = False if check_flash(board, len(model)) is not None else None
            return Outcome(Verdict(arena.status, f"TFLM: {arena.reason}", fits, False), figures)
        if ev.invoke_error:
            return Outcome(Verdict("device_error", f"TFLM invoke: {ev.invoke_error}", fit.fits, False), figures)
        if not fit.fits:
            return Outcome(Verdict(fit.status, fit.reason, False, False), figures)
        crashes = arena.reason.split("; ", 1)[1] if "; " in arena.reason else ""  # probes that crashed the runtime
        reason = f"TFLM runs it; {fit.reason}" + (f"; arena search: {crashes}" if crashes else "")
        est = estimate(art.info.ops, board)
        if est is not None:
            figures.update(
                latency_ms_estimated=round(est.latency_ms, 4),
                energy_mj_estimated=None if est.energy_mj is None else round(est.energy_mj, 5),
                estimate_basis=est.basis,
            )
        return Outcome(Verdict("ok", reason, True, True), figures)


@register_target("host", "offline", "the tflite-micro runtime on this machine, judged against the board's budgets")
def host_target(ctx: TargetContext) -> HostTarget:
    return HostTarget()
