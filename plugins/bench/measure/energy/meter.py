"""What every meter does: capture one trace around a device action."""

from __future__ import annotations

from tinyhil.plugins.bench.measure.energy.trace import Trace


class Meter:
    """Captures one trace around a device action: ``start(expected_s)``, act, ``finish(window_hint_s)``."""

    source = "measured"

    def start(self, expected_s: float, label: str) -> None:
        raise NotImplementedError

    def finish(self, window_hint_s: float) -> Trace:
        raise NotImplementedError

    def close(self) -> None:
        """Releases the instrument; a meter that holds none has nothing to do."""

    def abort(self) -> None:
        """Drops a capture that was started and will not be finished (the device failed in between)."""
