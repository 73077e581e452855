"""The meter options (light: no numpy, read by the settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MeterSettings:
    """Options of the energy meters (see ``pytest --help``, group tinyhil)."""

    kind: str = "none"
    shunt_ohms: float = 9.8
    supply_volts: float = 3.3
    sample_rate_hz: float = 100_000.0
    device: str = "Dev1"
    shunt_channel: str = "ai0"
    supply_channel: str = "ai1"
    marker_channel: str = "port0/line0"
    trigger: str = "software"  # software (pre-roll) | marker (reference trigger on trigger_source)
    trigger_source: str = "/Dev1/PFI0"
    pre_roll_s: float = 0.02
    post_roll_s: float = 0.02
    shunt_range_v: float = 1.0  # the shunt drops about 0.4-0.6 V: +-1 V keeps its resolution
    supply_range_v: float = 5.0  # the 3V3 rail
    replay_dir: str = ""
    timing_rule: str = "paper"
    tolerance: float = 0.10
    idle_ms: int = 200
    joulescope_serial: str = ""  # empty: the one Joulescope connected
    joulescope_gpi: int = 0  # the general-purpose input the marker is wired to (IN0 or IN1)
