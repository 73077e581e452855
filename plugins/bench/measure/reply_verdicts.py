"""From the board's replies and failures to verdicts."""

from __future__ import annotations

import re

from tinyhil.models.tflm import classify_failure
from tinyhil.models.verdict import MEMORY_STATUSES, Verdict
from tinyhil.plugins.bench.link.device import DeviceError, DeviceErrorResponse, DeviceGone, DeviceTimeout


def error_status(error: str, log: list[str]) -> str:
    """Maps an ``e-[…]`` answer of ``model …%`` to a verdict status."""
    if error.startswith("arena:"):
        return "arena_overflow"
    if error.startswith("ram:"):
        return "ram_overflow"
    if re.match(r"model: \d+ bytes > partition", error):
        return "flash_overflow"
    # a model the firmware's structure check refused (model_check.cc: an index out of range, an
    # op its kernel cannot run, ...) is as much the model's fault as one the verifier refused
    structure = error.startswith("model: ") and not error.startswith(_MODEL_LINK_ERRORS)
    if error.startswith("tflm:") or structure:
        return classify_failure("\n".join(log) or error)
    return "device_error"


# ``model: …`` answers about the transfer or the board, not the model: a link problem stays device_error
_MODEL_LINK_ERRORS = ("model: crc mismatch", "model: no uploaded model", "model: cannot map")


def device_reason(prefix: str, error: str, log: list[str]) -> str:
    """The reason of a device verdict: the error, then the last lines the board printed."""
    tail = " | ".join(log[-4:])
    return f"{prefix}: {error}" + (f" | {tail}" if tail else "")


def load_refused(e: DeviceErrorResponse) -> Verdict:
    """The verdict of a model the firmware refused to load."""
    status = error_status(e.error, e.log)
    fits = False if status in MEMORY_STATUSES else None
    return Verdict(status, device_reason("device", e.error, e.log), fits, False)


def link_failed(failures: list[DeviceError], lost: DeviceGone | None = None) -> Verdict:
    """The verdict after every attempt ended in a reboot, a time-out, garbage or a port that
    vanished: the first failure's words (a retry can only fail in its wake), and the last one's
    when it differs. A port that vanished makes it ``device_error`` (the board died or was
    unplugged, whatever the read saw first); ``lost`` says the board could not be reached again."""
    first, last = failures[0], failures[-1]
    gone = lost is not None or any(isinstance(f, DeviceGone) for f in failures)
    status = "timeout" if isinstance(first, DeviceTimeout) and not gone else "device_error"
    reason = device_reason(f"device ({len(failures)} attempts)", str(first), first.log)
    if str(last) != str(first):
        reason += f"; last attempt: {last}"
    if lost is not None:
        reason += f"; not reached again: {lost}"
    elif gone:
        reason += "; its port was opened again for the next case"
    return Verdict(status, reason, None, False)
