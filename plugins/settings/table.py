"""Every tinyhil option: its name, help group, type, range and ini default.

One table serves the command line (argparse ``type=`` checks numbers, ranges and
choices as the line is parsed) and the ini file (the same parse function reads
``tinyhil_<name>`` from ``pytest.ini``), so a bad value is refused the same way
wherever it was written.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tinyhil import resources
from tinyhil.plugins.bench.boards.faults import FAULTS
from tinyhil.plugins.bench.measure.energy.kinds import ENERGY_KINDS, TIMING_RULES, TRIGGERS
from tinyhil.splits import SPLITS

PROFILE_NAMES = tuple(json.loads(resources.data("profiles.json").read_text()))

GROUPS = {
    "study": "tinyhil study: what the matrix holds (networks, techniques, data, training, board)",
    "report": "tinyhil report: where results go, resume, expected verdicts",
    "regression": "tinyhil regression: compare with an earlier run",
    "bench": "tinyhil bench: the ESP32 or the virtual board",
    "energy": "tinyhil energy: meter, shunt and timing rule",
}
SEED_MAX = 2**32 - 1  # numpy's and TensorFlow's seeds are 32-bit


def text(raw: str) -> str:
    return raw.strip()


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer in ``[low, high]``; the error names the range."""

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number(low: float = 0.0, *, positive: bool = False) -> Callable[[str], float]:
    """A float ``>= low`` (``> low`` when ``positive``)."""

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")) or value < low or (positive and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if positive else '>='} {low:g}, got {raw.strip()}")
        return value

    parse.__name__ = "number"
    return parse


def jobs(raw: str) -> int:
    """``auto`` (one per usable core) or a whole number >= 1."""
    if raw.strip() == "auto":
        from tinyhil.models.parallel_training import default_jobs

        return default_jobs()
    try:
        return integer(1)(raw)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number >= 1 ({e})") from None


def windows(raw: str) -> int | str:
    """``auto`` (the sequential agreement test), ``all`` (0) or a count of at least 1."""
    word = raw.strip().lower()
    if word == "auto":
        return "auto"
    if word == "all":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, all or a whole number >= 1, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected auto, all or a whole number >= 1, got {raw!r}")
    return value


def open_share(raw: str) -> float:
    """A share strictly between 0 and 1."""
    value = number()(raw)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1 (both excluded), got {raw.strip()}")
    return value


def choice(*known: str) -> Callable[[str], str]:
    """One of ``known``; the error lists them."""

    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in known:
            raise argparse.ArgumentTypeError(f"unknown value {value!r}; known: {', '.join(known)}")
        return value

    parse.__name__ = "choice"
    parse.choices = known  # --help lists them
    return parse


@dataclass(frozen=True)
class Option:
    """One option.

    Attributes:
        name: ``--name`` on the command line.
        group: Key of :data:`GROUPS`: where ``--help`` shows it.
        help: One line; ``--help`` appends the default.
        default: The ini default as text; None for an on/off flag (default off).
        parse: Turns the text into the typed value; raises ``argparse.ArgumentTypeError``.
    """

    name: str
    group: str
    help: str
    default: str | None = None
    parse: Callable[[str], Any] = text

    @property
    def dest(self) -> str:
        """The argparse destination and the ini key: ``tinyhil_<name>``."""
        return "tinyhil_" + self.name.replace("-", "_")

    @property
    def fixture(self) -> str:
        """The fixture that hands out the resolved value: the name with underscores."""
        return self.name.replace("-", "_")

    @property
    def is_flag(self) -> bool:
        return self.default is None


OPTIONS: list[Option] = [
    Option(
        "networks",
        "study",
        "comma-separated network ids, a family (1D_CNN, 1D_CNN_LSTM), 'all', or model files "
        "(--networks=model.tflite,net.keras: a ready .tflite is not converted; a Keras file is not trained)",
        "all",
    ),
    Option(
        "networks-from",
        "study",
        "a Python file of your own network builders (register_family + add_network from tinyhil.models.networks); "
        "its networks join --networks' choices",
        "",
    ),
    Option(
        "techniques",
        "study",
        "comma-separated technique ids (steps joined by +, e.g. prune50+full_int), or the sets paper, extended, all",
        "paper",
    ),
    Option(
        "compression-mode",
        "study",
        "cascading (each step on the previous step's output) or standalone (each step alone on the base model)",
        "cascading",
        choice("cascading", "standalone"),
    ),
    Option(
        "teacher", "study", "distillation teacher: largest (the family's largest network) or a network id", "largest"
    ),
    Option(
        "dataset",
        "study",
        "synthetic-har (generated, built in), uci-har, or a .npz file (--dataset=data.npz: x_train, y_train, x_test, y_test)",
        "synthetic-har",
    ),
    Option("data-dir", "study", "where a recorded dataset lives (uci-har: its folder or zip)", ""),
    Option("split", "study", "paper (pooled 75/25, stratified) or subjects (official)", "paper", choice(*SPLITS)),
    Option("profile", "study", "training profile", "quick", choice(*PROFILE_NAMES)),
    Option(
        "train-jobs",
        "study",
        "networks trained at once, each in a process of its own, before the cases run (auto: one per core)",
        "auto",
        jobs,
    ),
    Option("seed", "study", "seed of data generation, split, training and calibration", "0", integer(0, SEED_MAX)),
    Option(
        "board",
        "study",
        "board profile: a name from models/data/boards or a JSON file (--board=path.json); several separated by "
        "commas run every case on each (on a bench: --port NAME=PORT,...)",
        "esp32-wroom-32",
    ),
    Option("model-cache", "study", "cache of trained models and conversions", ".tinyhil-cache"),
    Option("report-dir", "report", "where results.csv, summary.md and the exported models go", "reports"),
    Option("resume", "report", "keep <report-dir>/results.csv and skip the cases it holds for the same settings"),
    Option(
        "update-expectations", "report", "rewrite the expectations file of this board and TFLM version from this run"
    ),
    Option(
        "expectations-dir",
        "report",
        "folder of expectations files, one sub-folder per board, read and written (--update-expectations) instead of the ones shipped with tinyhil (empty: the shipped ones, models/data/expectations)",
        "",
    ),
    Option("baseline", "regression", "results.csv of an earlier run to compare every case with (empty: none)", ""),
    Option("tol-accuracy", "regression", "allowed absolute accuracy drop against the baseline", "0.01", number()),
    Option("tol-arena", "regression", "allowed relative arena growth", "0.05", number()),
    Option("tol-model", "regression", "allowed relative model size growth", "0.05", number()),
    Option("tol-latency", "regression", "allowed relative latency growth", "0.10", number()),
    Option("tol-energy", "regression", "allowed relative energy growth", "0.10", number()),
    Option(
        "virtual-board",
        "bench",
        "run hil cases against the virtual ESP32 on a pseudo-terminal; its figures are simulated",
    ),
    Option(
        "labgrid-places",
        "bench",
        "boards of a labgrid lab: comma-separated place names, one per xdist worker (-n as many); tinyhil "
        "acquires each through labgrid-client, talks to its board over rfc2217 and releases it at the end",
        "",
    ),
    Option(
        "labgrid-coordinator",
        "bench",
        "the labgrid coordinator, HOST[:PORT] (empty: LG_COORDINATOR, else labgrid's 127.0.0.1:20408)",
        "",
    ),
    Option(
        "tflm-source",
        "bench",
        "an esp-tflite-micro source folder: hil cases run against the firmware's own code built for Linux "
        "against it (firmware/host, built once into firmware/host/build); implies --virtual-board; figures simulated",
        "",
    ),
    Option(
        "esp-nn-source",
        "bench",
        "with --tflm-source: an esp-nn source folder, to build with ESP-NN's C kernels as a plain ESP32 build does "
        "(empty: TFLM's reference kernels)",
        "",
    ),
    Option(
        "host-build-bits",
        "bench",
        "word size of the firmware host build: 32 (a 32-bit core's arena figures; needs g++-multilib), 64, or auto",
        "auto",
        choice("auto", "32", "64"),
    ),
    Option(
        "virtual-baud",
        "bench",
        "pace the virtual board's serial link (and its model partition writes) at this many baud, 10 bits a "
        "byte, as a UART; 0 does not pace",
        "0",
        integer(0, 20_000_000),
    ),
    Option(
        "virtual-fault",
        "bench",
        "make the virtual board fail this way, to test the failure path",
        "none",
        choice(*FAULTS),
    ),
    Option(
        "device-windows",
        "bench",
        "test windows sent to the board for agreement with host TFLM and on-device accuracy, streamed in the "
        "model's input type: auto (in a seeded random order until the agreement test decides, see "
        "--max-disagreement), all (the whole test split) or a number (a seeded sample)",
        "auto",
        windows,
    ),
    Option("inferences", "bench", "N timed inferences per case (the paper's 10)", "10", integer(1)),
    Option("warmup", "bench", "W warm-up inferences before the timed ones", "1", integer(0)),
    Option("hil-retries", "bench", "extra attempts after a reboot, serial drop or time-out", "1", integer(0)),
    Option("device-timeout", "bench", "seconds allowed for one line from the board", "10", number(positive=True)),
    Option(
        "min-agreement",
        "bench",
        "with --device-windows all or a number: least share of windows whose class on the board matches host "
        "TFLM's; below it the verdict is wrong_output",
        "0.95",
        number(),
    ),
    Option(
        "max-disagreement",
        "bench",
        "with --device-windows auto: the largest share of windows whose class may differ from host TFLM's; streaming "
        "stops once the disagreement is proven below it (ok) or above it (wrong_output)",
        "0.01",
        open_share,
    ),
    Option(
        "agreement-confidence",
        "bench",
        "with --device-windows auto: confidence of the one-sided Clopper-Pearson bounds on the disagreement",
        "0.95",
        open_share,
    ),
    Option(
        "model-ids",
        "bench",
        "network=id pairs: the EEMBC model id the board reports for that network's cases (kws_ref_model=kws01)",
        "",
    ),
    Option("save-traces", "bench", "write every case's raw energy trace to <report-dir>/traces"),
    Option(
        "energy",
        "energy",
        "energy meter: none, nidaqmx (bench), joulescope (bench), replay (recorded traces), simulated (virtual board)",
        "none",
        choice(*ENERGY_KINDS),
    ),
    Option("daq-device", "energy", "NI-DAQmx device name, as NI MAX shows it", "Dev1"),
    Option("daq-shunt-channel", "energy", "differential analog input across the shunt", "ai0"),
    Option("daq-supply-channel", "energy", "differential analog input across the DUT supply (3V3 to GND)", "ai1"),
    Option(
        "daq-shunt-range",
        "energy",
        "input range of the shunt channel, +-volts (the shunt drops about 0.4-0.6 V: +-1 V keeps its resolution; "
        "the card picks the smallest of its ranges that holds it)",
        "1.0",
        number(positive=True),
    ),
    Option("daq-supply-range", "energy", "input range of the supply channel, +-volts", "5.0", number(positive=True)),
    Option(
        "daq-marker-channel",
        "energy",
        "marker input: a digital line (port0/line0) or an analog input (ai2)",
        "port0/line0",
    ),
    Option(
        "daq-trigger",
        "energy",
        "software (start with pre-roll) or marker (reference trigger on --daq-trigger-source)",
        "software",
        choice(*TRIGGERS),
    ),
    Option(
        "daq-trigger-source",
        "energy",
        "terminal the marker GPIO is also wired to, for --daq-trigger marker",
        "/Dev1/PFI0",
    ),
    Option("shunt-ohms", "energy", "shunt resistance in ohms", "9.8", number(positive=True)),
    Option(
        "supply-volts", "energy", "supply voltage in volts (the simulated meter uses it)", "3.3", number(positive=True)
    ),
    Option("sample-rate", "energy", "samples per second per channel", "100000", number(positive=True)),
    Option("pre-roll-ms", "energy", "capture time before the marker window", "20", number()),
    Option(
        "idle-ms", "energy", "idle capture for the baseline (0: use the samples around the window)", "200", integer(0)
    ),
    Option(
        "timing-rule",
        "energy",
        "paper (N consecutive inferences) or mlperf (>= 10 s windows, median of 5)",
        "paper",
        choice(*TIMING_RULES),
    ),
    Option(
        "energy-tolerance",
        "energy",
        "allowed relative gap between the marker window and the cycle-count latency",
        "0.10",
        number(positive=True),
    ),
    Option("replay-dir", "energy", "folder of traces for --energy replay", ""),
]
