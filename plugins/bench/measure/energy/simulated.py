"""A power model for the virtual board; its figures are simulated."""

from __future__ import annotations

import numpy as np

from tinyhil.plugins.bench.measure.energy.meter import Meter
from tinyhil.plugins.bench.measure.energy.settings import MeterSettings
from tinyhil.plugins.bench.measure.energy.trace import Trace


class SimulatedMeter(Meter):
    """A power model for the virtual board: idle and active current, white noise.

    The marker window lasts what the board reported (the simulated cycle counts); the
    current is ``active_current_ma`` inside it and ``idle_current_ma`` outside.
    """

    source = "simulated"

    def __init__(self, settings: MeterSettings, model: dict, seed: int = 0):
        self.s = settings
        self.idle_a = model.get("idle_current_ma", 40.0) / 1e3
        self.active_a = model.get("active_current_ma", 60.0) / 1e3
        self.rng = np.random.default_rng(seed)

    def start(self, expected_s: float, label: str) -> None:
        self.label = label

    def finish(self, window_hint_s: float) -> Trace:
        s = self.s
        rate = s.sample_rate_hz
        if window_hint_s <= 0:  # an idle capture: no marker window
            n = max(2, int(round((s.pre_roll_s + s.post_roll_s) * rate)))
            return self._trace(np.full(n, self.idle_a), np.zeros(n, bool))
        n_pre, n_win, n_post = (max(1, int(round(v * rate))) for v in (s.pre_roll_s, window_hint_s, s.post_roll_s))
        marker = np.concatenate([np.zeros(n_pre, bool), np.ones(n_win, bool), np.zeros(n_post, bool)])
        return self._trace(np.where(marker, self.active_a, self.idle_a), marker)

    def _trace(self, current: np.ndarray, marker: np.ndarray) -> Trace:
        """Shunt and DUT voltages for a current, with 0.1 mV and 1 mV of white noise."""
        s = self.s
        v_shunt = current * s.shunt_ohms + self.rng.normal(0, 1e-4, len(current))
        v_dut = s.supply_volts - current * s.shunt_ohms + self.rng.normal(0, 1e-3, len(current))
        return Trace(s.sample_rate_hz, v_shunt, v_dut, marker, {"source": "simulated", "shunt_ohms": s.shunt_ohms})
