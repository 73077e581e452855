"""The meter ``--energy`` names."""

from __future__ import annotations

from typing import Any

from tinyhil.plugins.bench.measure.energy.joulescope_meter import JoulescopeMeter
from tinyhil.plugins.bench.measure.energy.kinds import ENERGY_KINDS
from tinyhil.plugins.bench.measure.energy.meter import Meter
from tinyhil.plugins.bench.measure.energy.nidaqmx_meter import NiDaqMeter
from tinyhil.plugins.bench.measure.energy.replay import ReplayMeter
from tinyhil.plugins.bench.measure.energy.settings import MeterSettings
from tinyhil.plugins.bench.measure.energy.simulated import SimulatedMeter
from tinyhil.plugins.bench.measure.energy.trace import EnergyError


def make_meter(
    settings: MeterSettings,
    simulation_model: dict | None = None,
    daq: Any = None,
    seed: int = 0,
    joulescope: Any = None,
) -> Meter | None:
    """The meter ``settings.kind`` names, or None for ``none``.

    Args:
        settings: The meter options.
        simulation_model: The board profile's power model, for ``simulated``.
        daq: A stand-in for the ``nidaqmx`` module (tests); imported when None.
        seed: Seeds the simulated meter's noise.
        joulescope: A stand-in for the ``joulescope`` module (tests); imported when None.

    Raises:
        EnergyError: For an unknown kind, or a meter that cannot start.
    """
    if settings.kind == "none":
        return None
    if settings.kind == "nidaqmx":
        return NiDaqMeter(settings, daq)
    if settings.kind == "joulescope":
        return JoulescopeMeter(settings, joulescope)
    if settings.kind == "replay":
        return ReplayMeter(settings)
    if settings.kind == "simulated":
        return SimulatedMeter(settings, simulation_model or {}, seed)
    raise EnergyError(f"unknown --energy {settings.kind!r}; known: {', '.join(ENERGY_KINDS)}")
