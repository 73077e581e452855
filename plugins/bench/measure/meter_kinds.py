"""The names the energy options take (light: read by the option table)."""

ENERGY_KINDS = ("none", "nidaqmx", "joulescope", "replay", "simulated")
TIMING_RULES = ("paper", "mlperf")  # N consecutive inferences | >= 10 s windows, median of 5
TRIGGERS = ("software", "marker")  # start with pre-roll | reference trigger on the marker
