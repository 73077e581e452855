"""A recorded trace (``--save-traces`` writes them) analysed again."""

from __future__ import annotations

from pathlib import Path

from tinyhil.plugins.bench.measure.energy.meter import Meter
from tinyhil.plugins.bench.measure.energy.settings import MeterSettings
from tinyhil.plugins.bench.measure.energy.trace import EnergyError, Trace


class ReplayMeter(Meter):
    """Reads ``<replay-dir>/<label>.npz`` (or ``.csv``) instead of acquiring."""

    source = "replayed"

    def __init__(self, settings: MeterSettings):
        self.dir = Path(settings.replay_dir)
        if not self.dir.is_dir():
            raise EnergyError(f"--replay-dir {self.dir} is not a folder of traces (written by --save-traces)")
        self._label = ""

    def start(self, expected_s: float, label: str) -> None:
        self._label = label

    def finish(self, window_hint_s: float) -> Trace:
        for suffix in (".npz", ".csv"):
            path = self.dir / f"{self._label}{suffix}"
            if path.exists():
                trace = Trace.load(path)
                trace.meta["original_source"] = trace.meta.get("source", "unknown")
                trace.meta["source"] = "replayed"
                return trace
        raise EnergyError(f"no trace {self._label}.npz or .csv in {self.dir}")
