"""A fixture per option, named like it (``--device-windows`` -> ``device_windows``), and ``settings``.

As in pytest-embedded, an option's fixture gives the value a test parametrizes it with
indirectly (``@pytest.mark.parametrize("device_windows", [5], indirect=True)``), and the
option's resolved value otherwise. Each fixture is written out so that a reader (and a
search) finds it by its name; ``tests/unit/test_options.py`` checks there is one per option.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tinyhil.plugins.options import settings_of

if TYPE_CHECKING:
    from tinyhil.models.boards import Board
    from tinyhil.plugins.settings.option_values import OptionValues
    from tinyhil.plugins.settings.resolve import Settings


@pytest.fixture(scope="session")
def settings(pytestconfig: pytest.Config) -> Settings:
    """The run's resolved settings."""
    return settings_of(pytestconfig)


def _options(request: pytest.FixtureRequest) -> OptionValues:
    return settings_of(request.config).options


@pytest.fixture(scope="session")
def networks(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """--networks: comma-separated network ids, a family (1D_CNN, 1D_CNN_LSTM), 'all', or model files
    (--networks=model.tflite,net.keras: a ready .tflite is not converted; a Keras file is not trained)."""
    return request.param if hasattr(request, "param") else _options(request).networks


@pytest.fixture(scope="session")
def networks_from(request: pytest.FixtureRequest) -> str:
    """--networks-from: a Python file of your own network builders (register_family + add_network from
    tinyhil.models.networks); its networks join --networks' choices."""
    return request.param if hasattr(request, "param") else _options(request).networks_from


@pytest.fixture(scope="session")
def techniques(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """--techniques: comma-separated technique ids (steps joined by +, e.g. prune50+full_int), or the sets paper,
    extended, all."""
    return request.param if hasattr(request, "param") else _options(request).techniques


@pytest.fixture(scope="session")
def compression_mode(request: pytest.FixtureRequest) -> str:
    """--compression-mode: cascading (each step on the previous step's output) or standalone (each step alone on the
    base model)."""
    return request.param if hasattr(request, "param") else _options(request).compression_mode


@pytest.fixture(scope="session")
def teacher(request: pytest.FixtureRequest) -> str:
    """--teacher: distillation teacher: largest (the family's largest network) or a network id."""
    return request.param if hasattr(request, "param") else _options(request).teacher


@pytest.fixture(scope="session")
def dataset(request: pytest.FixtureRequest) -> str:
    """--dataset: synthetic-har (generated, built in), uci-har, or a .npz file (--dataset=data.npz: x_train, y_train,
    x_test, y_test)."""
    return request.param if hasattr(request, "param") else _options(request).dataset


@pytest.fixture(scope="session")
def data_dir(request: pytest.FixtureRequest) -> Path | None:
    """--data-dir: where a recorded dataset lives (uci-har: its folder or zip)."""
    return request.param if hasattr(request, "param") else _options(request).data_dir


@pytest.fixture(scope="session")
def split(request: pytest.FixtureRequest) -> str:
    """--split: paper (pooled 75/25, stratified) or subjects (official)."""
    return request.param if hasattr(request, "param") else _options(request).split


@pytest.fixture(scope="session")
def profile(request: pytest.FixtureRequest) -> str:
    """--profile: training profile."""
    return request.param if hasattr(request, "param") else _options(request).profile


@pytest.fixture(scope="session")
def train_jobs(request: pytest.FixtureRequest) -> int:
    """--train-jobs: networks trained at once, each in a process of its own, before the cases run (auto: one per core)."""
    return request.param if hasattr(request, "param") else _options(request).train_jobs


@pytest.fixture(scope="session")
def seed(request: pytest.FixtureRequest) -> int:
    """--seed: seed of data generation, split, training and calibration."""
    return request.param if hasattr(request, "param") else _options(request).seed


@pytest.fixture(scope="session")
def board(request: pytest.FixtureRequest) -> Board:
    """--board: board profile: a name from models/data/boards or a JSON file (--board=path.json)."""
    return request.param if hasattr(request, "param") else _options(request).board


@pytest.fixture(scope="session")
def model_cache(request: pytest.FixtureRequest) -> Path:
    """--model-cache: cache of trained models and conversions."""
    return request.param if hasattr(request, "param") else _options(request).model_cache


@pytest.fixture(scope="session")
def report_dir(request: pytest.FixtureRequest) -> Path:
    """--report-dir: where results.csv, summary.md and the exported models go."""
    return request.param if hasattr(request, "param") else _options(request).report_dir


@pytest.fixture(scope="session")
def resume(request: pytest.FixtureRequest) -> bool:
    """--resume: keep <report-dir>/results.csv and skip the cases it holds for the same settings."""
    return request.param if hasattr(request, "param") else _options(request).resume


@pytest.fixture(scope="session")
def update_expectations(request: pytest.FixtureRequest) -> bool:
    """--update-expectations: rewrite the expectations file of this board and TFLM version from this run."""
    return request.param if hasattr(request, "param") else _options(request).update_expectations


@pytest.fixture(scope="session")
def expectations_dir(request: pytest.FixtureRequest) -> Path:
    """--expectations-dir: folder of expectations files, one sub-folder per board, read and written (--update-expectations) instead of the ones shipped with tinyhil (empty: the shipped ones, models/data/expectations)."""
    return request.param if hasattr(request, "param") else _options(request).expectations_dir


@pytest.fixture(scope="session")
def baseline(request: pytest.FixtureRequest) -> Path | None:
    """--baseline: results.csv of an earlier run to compare every case with (empty: none)."""
    return request.param if hasattr(request, "param") else _options(request).baseline


@pytest.fixture(scope="session")
def tol_accuracy(request: pytest.FixtureRequest) -> float:
    """--tol-accuracy: allowed absolute accuracy drop against the baseline."""
    return request.param if hasattr(request, "param") else _options(request).tol_accuracy


@pytest.fixture(scope="session")
def tol_arena(request: pytest.FixtureRequest) -> float:
    """--tol-arena: allowed relative arena growth."""
    return request.param if hasattr(request, "param") else _options(request).tol_arena


@pytest.fixture(scope="session")
def tol_model(request: pytest.FixtureRequest) -> float:
    """--tol-model: allowed relative model size growth."""
    return request.param if hasattr(request, "param") else _options(request).tol_model


@pytest.fixture(scope="session")
def tol_latency(request: pytest.FixtureRequest) -> float:
    """--tol-latency: allowed relative latency growth."""
    return request.param if hasattr(request, "param") else _options(request).tol_latency


@pytest.fixture(scope="session")
def tol_energy(request: pytest.FixtureRequest) -> float:
    """--tol-energy: allowed relative energy growth."""
    return request.param if hasattr(request, "param") else _options(request).tol_energy


@pytest.fixture(scope="session")
def virtual_board(request: pytest.FixtureRequest) -> bool:
    """--virtual-board: run hil cases against the virtual ESP32 on a pseudo-terminal; its figures are simulated."""
    return request.param if hasattr(request, "param") else _options(request).virtual_board


@pytest.fixture(scope="session")
def labgrid_places(request: pytest.FixtureRequest) -> str:
    """--labgrid-places: boards of a labgrid lab: comma-separated place names, one per xdist worker (-n as many);
    tinyhil acquires each through labgrid-client, talks to its board over rfc2217 and releases it at the end."""
    return request.param if hasattr(request, "param") else _options(request).labgrid_places


@pytest.fixture(scope="session")
def labgrid_coordinator(request: pytest.FixtureRequest) -> str:
    """--labgrid-coordinator: the labgrid coordinator, HOST[:PORT] (empty: LG_COORDINATOR, else labgrid's
    127.0.0.1:20408)."""
    return request.param if hasattr(request, "param") else _options(request).labgrid_coordinator


@pytest.fixture(scope="session")
def tflm_source(request: pytest.FixtureRequest) -> Path | None:
    """--tflm-source: an esp-tflite-micro source folder: hil cases run against the firmware's own code built for Linux
    against it (firmware/host, built once into firmware/host/build); implies --virtual-board; figures simulated."""
    return request.param if hasattr(request, "param") else _options(request).tflm_source


@pytest.fixture(scope="session")
def esp_nn_source(request: pytest.FixtureRequest) -> Path | None:
    """--esp-nn-source: with --tflm-source: an esp-nn source folder, to build with ESP-NN's C kernels as a plain ESP32
    build does (empty: TFLM's reference kernels)."""
    return request.param if hasattr(request, "param") else _options(request).esp_nn_source


@pytest.fixture(scope="session")
def host_build_bits(request: pytest.FixtureRequest) -> str:
    """--host-build-bits: word size of the firmware host build: 32 (a 32-bit core's arena figures; needs g++-multilib),
    64, or auto."""
    return request.param if hasattr(request, "param") else _options(request).host_build_bits


@pytest.fixture(scope="session")
def virtual_baud(request: pytest.FixtureRequest) -> int:
    """--virtual-baud: pace the virtual board's serial link (and its model partition writes) at this many baud, 10 bits
    a byte, as a UART; 0 does not pace."""
    return request.param if hasattr(request, "param") else _options(request).virtual_baud


@pytest.fixture(scope="session")
def virtual_fault(request: pytest.FixtureRequest) -> str:
    """--virtual-fault: make the virtual board fail this way, to test the failure path."""
    return request.param if hasattr(request, "param") else _options(request).virtual_fault


@pytest.fixture(scope="session")
def device_windows(request: pytest.FixtureRequest) -> int | str:
    """--device-windows: test windows sent to the board for agreement with host TFLM and on-device accuracy: ``"auto"``
    (in a seeded random order until the agreement test decides), 0 (all: the whole test split) or a number (a seeded
    sample)."""
    return request.param if hasattr(request, "param") else _options(request).device_windows


@pytest.fixture(scope="session")
def inferences(request: pytest.FixtureRequest) -> int:
    """--inferences: N timed inferences per case (the paper's 10)."""
    return request.param if hasattr(request, "param") else _options(request).inferences


@pytest.fixture(scope="session")
def warmup(request: pytest.FixtureRequest) -> int:
    """--warmup: W warm-up inferences before the timed ones."""
    return request.param if hasattr(request, "param") else _options(request).warmup


@pytest.fixture(scope="session")
def hil_retries(request: pytest.FixtureRequest) -> int:
    """--hil-retries: extra attempts after a reboot, serial drop or time-out."""
    return request.param if hasattr(request, "param") else _options(request).hil_retries


@pytest.fixture(scope="session")
def device_timeout(request: pytest.FixtureRequest) -> float:
    """--device-timeout: seconds allowed for one line from the board."""
    return request.param if hasattr(request, "param") else _options(request).device_timeout


@pytest.fixture(scope="session")
def min_agreement(request: pytest.FixtureRequest) -> float:
    """--min-agreement: with --device-windows all or a number: least share of windows whose class on the board matches
    host TFLM's; below it the verdict is wrong_output."""
    return request.param if hasattr(request, "param") else _options(request).min_agreement


@pytest.fixture(scope="session")
def max_disagreement(request: pytest.FixtureRequest) -> float:
    """--max-disagreement: with --device-windows auto, the largest share of windows whose class may differ from host
    TFLM's; streaming stops once the disagreement is proven below it (ok) or above it (wrong_output)."""
    return request.param if hasattr(request, "param") else _options(request).max_disagreement


@pytest.fixture(scope="session")
def agreement_confidence(request: pytest.FixtureRequest) -> float:
    """--agreement-confidence: with --device-windows auto, confidence of the one-sided Clopper-Pearson bounds on the
    disagreement."""
    return request.param if hasattr(request, "param") else _options(request).agreement_confidence


@pytest.fixture(scope="session")
def model_ids(request: pytest.FixtureRequest) -> str:
    """--model-ids: network=id pairs: the EEMBC model id the board reports for that network's cases
    (kws_ref_model=kws01)."""
    return request.param if hasattr(request, "param") else _options(request).model_ids


@pytest.fixture(scope="session")
def save_traces(request: pytest.FixtureRequest) -> bool:
    """--save-traces: write every case's raw energy trace to <report-dir>/traces."""
    return request.param if hasattr(request, "param") else _options(request).save_traces


@pytest.fixture(scope="session")
def energy(request: pytest.FixtureRequest) -> str:
    """--energy: energy meter: none, nidaqmx (bench), joulescope (bench), replay (recorded traces), simulated (virtual
    board)."""
    return request.param if hasattr(request, "param") else _options(request).energy


@pytest.fixture(scope="session")
def daq_device(request: pytest.FixtureRequest) -> str:
    """--daq-device: NI-DAQmx device name, as NI MAX shows it."""
    return request.param if hasattr(request, "param") else _options(request).daq_device


@pytest.fixture(scope="session")
def daq_shunt_channel(request: pytest.FixtureRequest) -> str:
    """--daq-shunt-channel: differential analog input across the shunt."""
    return request.param if hasattr(request, "param") else _options(request).daq_shunt_channel


@pytest.fixture(scope="session")
def daq_supply_channel(request: pytest.FixtureRequest) -> str:
    """--daq-supply-channel: differential analog input across the DUT supply (3V3 to GND)."""
    return request.param if hasattr(request, "param") else _options(request).daq_supply_channel


@pytest.fixture(scope="session")
def daq_shunt_range(request: pytest.FixtureRequest) -> float:
    """--daq-shunt-range: input range of the shunt channel, +-volts (the shunt drops about 0.4-0.6 V: +-1 V keeps its
    resolution; the card picks the smallest of its ranges that holds it)."""
    return request.param if hasattr(request, "param") else _options(request).daq_shunt_range


@pytest.fixture(scope="session")
def daq_supply_range(request: pytest.FixtureRequest) -> float:
    """--daq-supply-range: input range of the supply channel, +-volts."""
    return request.param if hasattr(request, "param") else _options(request).daq_supply_range


@pytest.fixture(scope="session")
def daq_marker_channel(request: pytest.FixtureRequest) -> str:
    """--daq-marker-channel: marker input: a digital line (port0/line0) or an analog input (ai2)."""
    return request.param if hasattr(request, "param") else _options(request).daq_marker_channel


@pytest.fixture(scope="session")
def daq_trigger(request: pytest.FixtureRequest) -> str:
    """--daq-trigger: software (start with pre-roll) or marker (reference trigger on --daq-trigger-source)."""
    return request.param if hasattr(request, "param") else _options(request).daq_trigger


@pytest.fixture(scope="session")
def daq_trigger_source(request: pytest.FixtureRequest) -> str:
    """--daq-trigger-source: terminal the marker GPIO is also wired to, for --daq-trigger marker."""
    return request.param if hasattr(request, "param") else _options(request).daq_trigger_source


@pytest.fixture(scope="session")
def shunt_ohms(request: pytest.FixtureRequest) -> float:
    """--shunt-ohms: shunt resistance in ohms."""
    return request.param if hasattr(request, "param") else _options(request).shunt_ohms


@pytest.fixture(scope="session")
def supply_volts(request: pytest.FixtureRequest) -> float:
    """--supply-volts: supply voltage in volts (the simulated meter uses it)."""
    return request.param if hasattr(request, "param") else _options(request).supply_volts


@pytest.fixture(scope="session")
def sample_rate(request: pytest.FixtureRequest) -> float:
    """--sample-rate: samples per second per channel."""
    return request.param if hasattr(request, "param") else _options(request).sample_rate


@pytest.fixture(scope="session")
def pre_roll_ms(request: pytest.FixtureRequest) -> float:
    """--pre-roll-ms: capture time before the marker window."""
    return request.param if hasattr(request, "param") else _options(request).pre_roll_ms


@pytest.fixture(scope="session")
def idle_ms(request: pytest.FixtureRequest) -> int:
    """--idle-ms: idle capture for the baseline (0: use the samples around the window)."""
    return request.param if hasattr(request, "param") else _options(request).idle_ms


@pytest.fixture(scope="session")
def timing_rule(request: pytest.FixtureRequest) -> str:
    """--timing-rule: paper (N consecutive inferences) or mlperf (>= 10 s windows, median of 5)."""
    return request.param if hasattr(request, "param") else _options(request).timing_rule


@pytest.fixture(scope="session")
def energy_tolerance(request: pytest.FixtureRequest) -> float:
    """--energy-tolerance: allowed relative gap between the marker window and the cycle-count latency."""
    return request.param if hasattr(request, "param") else _options(request).energy_tolerance


@pytest.fixture(scope="session")
def replay_dir(request: pytest.FixtureRequest) -> Path | None:
    """--replay-dir: folder of traces for --energy replay."""
    return request.param if hasattr(request, "param") else _options(request).replay_dir
