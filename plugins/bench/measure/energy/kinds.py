"""The names the energy options take, and the MLPerf timing rule's numbers (light: read by the option table)."""

ENERGY_KINDS = ("none", "nidaqmx", "joulescope", "replay", "simulated")
TIMING_RULES = ("paper", "mlperf")  # N consecutive inferences | >= 10 s windows, median of 5
TRIGGERS = ("software", "marker")  # start with pre-roll | reference trigger on the marker

MLPERF_MIN_WINDOW_S = 10.0  # --timing-rule mlperf: each timed window lasts at least this
MLPERF_REPEATS = 5  # --timing-rule mlperf: the median of this many windows
