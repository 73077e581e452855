"""The case matrix: network x technique x target, its options and the fixtures a case uses.

Each option has an ini default (``tinyhil_<name>`` in pytest.ini) and a fixture of the
same name. A wrong value stops the run at configuration with a message listing the
known values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from models.boards import BOARDS, get_board
from models.compression import EXTENDED_SET, PAPER_SET, parse_technique, standalone
from models.datasets import DATASETS, SPLITS
from models.errors import TinyhilError, UnknownNameError
from models.networks import NETWORKS
from models.pipeline import Study, StudyConfig
from models.training import PROFILES
from plugins.targets import TARGETS

_OPTIONS = [
    # name, help, ini default
    ("networks", "comma-separated Table 1 ids, a family (1D_CNN, 1D_CNN_LSTM) or 'all'", "all"),
    (
        "techniques",
        "comma-separated technique ids (steps joined by +, e.g. prune50+full_int), or the sets paper, extended, all",
        "paper",
    ),
    (
        "compression-mode",
        "cascading (each step on the previous step's output) or standalone (each step alone on the base model)",
        "cascading",
    ),
    ("teacher", "distillation teacher: largest (the family's largest network) or a network id", "largest"),
    ("dataset", "dataset name: synthetic-har (generated, built in) or uci-har", "synthetic-har"),
    ("data-dir", "where a recorded dataset lives (uci-har: its folder or zip)", ""),
    ("split", "paper (pooled 75/25, stratified) or subjects (official)", "paper"),
    ("profile", "training profile: quick or paper", "quick"),
    ("seed", "seed of data generation, split, training and calibration", "0"),
    ("board", "board profile the memory budgets come from", "esp32-wroom-32"),
    ("report-dir", "where results.csv, summary.md and the exported models go", "reports"),
    ("model-cache", "cache of trained models and conversions", ".tinyhil-cache"),
]


@dataclass(frozen=True)
class Case:
    """One matrix cell."""

    network: str
    technique: str
    target: str

    @property
    def id(self) -> str:
        return f"{self.network}-{self.technique}-{self.target}"

    @property
    def key(self) -> str:
        """The board-independent part of the id, used by the expectations file."""
        return f"{self.network}-{self.technique}"


def add_ini_option(parser: pytest.Parser, name: str, help_text: str, default: str) -> None:
    """``--name`` with an ini default ``tinyhil_<name>``; read it back with :func:`option`."""
    ini = "tinyhil_" + name.replace("-", "_")
    parser.getgroup("tinyhil", "tinyhil study matrix").addoption(
        f"--{name}", dest=ini, help=f"{help_text} (Default: ini {ini} = {default!r})"
    )
    parser.addini(ini, help_text, default=default)


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, help_text, default in _OPTIONS:
        add_ini_option(parser, name, help_text, default)


def option(config: pytest.Config, name: str) -> str:
    """Resolves an option: command line, then ini, then default."""
    ini = "tinyhil_" + name.replace("-", "_")
    value = config.getoption(ini)
    return str(value if value is not None else config.getini(ini)).strip()


def _expand(kind: str, raw: str, known: list[str], groups: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for token in [t.strip() for t in raw.split(",") if t.strip()]:
        if token == "all":
            out += known
        elif token in groups:
            out += groups[token]
        elif token in known:
            out.append(token)
        else:
            raise UnknownNameError(kind, token, known + list(groups) + ["all"])
    if not out:
        raise pytest.UsageError(f"--{kind}s selects nothing; give at least one of: {', '.join(known)}")
    return list(dict.fromkeys(out))


def selected_networks(config: pytest.Config) -> list[str]:
    families: dict[str, list[str]] = {}
    for net in NETWORKS.names():
        families.setdefault(NETWORKS.get(net).family, []).append(net)
    return _expand("network", option(config, "networks"), NETWORKS.names(), families)


def selected_techniques(config: pytest.Config) -> list[str]:
    """Technique ids from --techniques, validated; stand-alone mode splits pipelines into steps."""
    sets = {"paper": PAPER_SET, "extended": EXTENDED_SET, "all": PAPER_SET + EXTENDED_SET}
    out: list[str] = []
    for token in [t.strip() for t in option(config, "techniques").split(",") if t.strip()]:
        ids = sets.get(token, [token])
        for tid in ids:
            try:
                parse_technique(tid)
            except UnknownNameError as e:
                raise pytest.UsageError(
                    f"{e}; or one of the sets paper, extended, all; join steps with +, as in prune50+full_int"
                ) from None
            except ValueError as e:
                raise pytest.UsageError(str(e)) from None
        out += ids
    if not out:
        raise pytest.UsageError("--techniques selects nothing; give technique ids or one of: paper, extended, all")
    mode = option(config, "compression-mode")
    if mode not in ("cascading", "standalone"):
        raise pytest.UsageError(f"unknown --compression-mode {mode!r}; known: cascading, standalone")
    return standalone(out) if mode == "standalone" else list(dict.fromkeys(out))


def study_config(config: pytest.Config) -> StudyConfig:
    data_dir = option(config, "data-dir")
    try:
        seed = int(option(config, "seed"))
    except ValueError:
        raise pytest.UsageError(f"--seed must be an integer, got {option(config, 'seed')!r}") from None
    split = option(config, "split")
    if split not in SPLITS:
        raise pytest.UsageError(f"unknown --split {split!r}; known splits: {', '.join(SPLITS)}")
    DATASETS.get(option(config, "dataset"))
    PROFILES.get(option(config, "profile"))
    if option(config, "teacher") != "largest":
        NETWORKS.get(option(config, "teacher"))
    return StudyConfig(
        dataset=option(config, "dataset"),
        split=split,
        data_dir=Path(data_dir).expanduser() if data_dir else None,
        profile=option(config, "profile"),
        seed=seed,
        teacher=option(config, "teacher"),
        compression_mode=option(config, "compression-mode"),
        cache_dir=Path(option(config, "model-cache")),
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        selected_networks(config)
        selected_techniques(config)
        study_config(config)
        BOARDS.get(option(config, "board"))
    except (TinyhilError, KeyError) as e:
        raise pytest.UsageError(str(e)) from None


def hil_target_name(config: pytest.Config) -> str:
    """The hil target's id part: ``esp32`` on the bench, ``virtual-esp32`` for the virtual board."""
    return "virtual-esp32" if config.getoption("virtual_board", default=False) else "esp32"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    params = []
    for target_name in ("host", "esp32"):
        target = TARGETS.get(target_name) if target_name in TARGETS else None
        marker = target.marker if target else "hil"
        shown = target_name if marker == "offline" else hil_target_name(config)
        for net in selected_networks(config):
            for tech in selected_techniques(config):
                case = Case(net, tech, shown)
                params.append(pytest.param(case, id=case.id, marks=[getattr(pytest.mark, marker)]))
    metafunc.parametrize("case", params)


@pytest.fixture(scope="session")
def study(pytestconfig: pytest.Config) -> Study:
    """The run's shared dataset and trained models (one per xdist worker, cache on disk).

    The dataset loads here, so a wrong path or layout stops the run once, with the fix,
    instead of failing every case.
    """
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    progress = None
    if reporter is not None and capture is not None and not hasattr(pytestconfig, "workerinput"):

        def progress(line: str) -> None:
            # Training happens inside a test call, where output is captured: step past it.
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)

    try:
        study = Study(study_config(pytestconfig), progress=progress)
        study.dataset  # noqa: B018 - load now
        return study
    except TinyhilError as e:
        pytest.exit(f"tinyhil: {e}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture
def case_target(case: Case, request: pytest.FixtureRequest):
    """The target a case deploys to: host TFLM, or the bench target of :mod:`plugins.hil`."""
    if case.target in TARGETS:
        return TARGETS.get(case.target)()
    return request.getfixturevalue("hil_target")


@pytest.fixture(scope="session")
def board(pytestconfig: pytest.Config):
    """The board profile named by --board."""
    return get_board(option(pytestconfig, "board"))


@pytest.fixture(scope="session")
def report_dir(pytestconfig: pytest.Config) -> Path:
    path = Path(option(pytestconfig, "report-dir"))
    path.mkdir(parents=True, exist_ok=True)
    return path
