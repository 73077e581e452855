"""The case matrix and the fixtures a case uses.

One case per selected network x technique x target (:func:`tinyhil.plugins.targets.matrix`);
the case id reads ``network-technique-target`` and carries its target's marker
(``offline`` or ``hil``), so ``-m`` and ``-k`` select cases.
"""

from __future__ import annotations

import re

import pytest

from tinyhil.models.errors import TinyhilError
from tinyhil.models.host_eval import TEMP_PREFIX as HOST_TEMP_PREFIX
from tinyhil.models.lifeline import sweep_stale, tie_forked_children_to_this_process
from tinyhil.models.networks import get_network
from tinyhil.models.parallel_training import train_networks, untrained
from tinyhil.models.pipeline import Study
from tinyhil.plugins.bench.boards.virtual_process import TEMP_PREFIX as VIRTUAL_TEMP_PREFIX
from tinyhil.plugins.options import settings_of
from tinyhil.plugins.report.training_progress import TrainingBoard
from tinyhil.plugins.targets import TARGETS, Case, Target, TargetContext, matrix


def pytest_configure(config: pytest.Config) -> None:
    # A project of its own has no tinyhil pytest.ini: the cases' markers are declared here
    # (unknown otherwise: a warning each, an error under --strict-markers).
    config.addinivalue_line("markers", "offline: a study case on the host TFLM runtime (no hardware)")
    config.addinivalue_line("markers", "hil: a study case on a bench target (ESP32 over serial, or the virtual board)")
    # Libraries fork helpers (pytest-embedded's serial listener): none may outlive this process,
    # and folders that a killed run left behind are cleared.
    tie_forked_children_to_this_process()
    for prefix in (HOST_TEMP_PREFIX, VIRTUAL_TEMP_PREFIX):
        sweep_stale(prefix)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    settings = settings_of(metafunc.config)
    params = [pytest.param(case, id=case.id, marks=_marks(case, settings)) for case in matrix(settings)]
    metafunc.parametrize("case", params)


def _marks(case: Case, settings) -> list:
    """The case's target marker; on a bench of several boards also its board as an xdist group
    (``--dist loadgroup``: one worker drives each board, no two share a serial port)."""
    marks = [getattr(pytest.mark, case.marker)]
    if settings.board_ports and case.marker == "hil":
        marks.append(pytest.mark.xdist_group(case.board))
    return marks


PRETRAINED_KEY = pytest.StashKey[bool]()


def pretrain(config: pytest.Config, cases: list[Case], newline_first: bool = False) -> None:
    """Trains, before any case runs, every network the selected cases need that is not
    cached yet (``--train-jobs`` at a time), showing one line per network on the terminal;
    each child then converts its network for the selected techniques, so that a cold run's
    conversions also use every core.

    Runs once, in the process that writes the terminal (the xdist controller, or the only
    process); the cases then load the models from the cache.
    """
    if config.stash.get(PRETRAINED_KEY, False) or config.option.collectonly or not cases:
        return
    config.stash[PRETRAINED_KEY] = True
    settings = settings_of(config)
    try:
        study = Study(settings.study)
        needed = [c.network for c in cases]
        needed += [study.teacher_for(get_network(c.network)) for c in cases if "distill" in c.technique]
        todo = untrained(study, needed)
    except TinyhilError as e:
        pytest.exit(f"tinyhil: {e}", returncode=pytest.ExitCode.USAGE_ERROR)
    if not todo:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        train_networks(
            settings.study, todo, settings.options.train_jobs, lambda n, line: None, lambda r: None, _techniques(cases)
        )
        return

    def write(text: str) -> None:
        reporter.write(text, flush=True)

    if newline_first:
        write("\n")  # xdist's status line ("ready: 2/2 workers") ends without one
    board = TrainingBoard(write, reporter.isatty, len(todo), settings.options.train_jobs, settings.study.profile)
    train_networks(settings.study, todo, settings.options.train_jobs, board.line, board.result, _techniques(cases))


def _techniques(cases: list[Case]) -> dict[str, list[str]]:
    """Per network, the techniques its selected cases convert (each once, in case order)."""
    out: dict[str, list[str]] = {}
    for c in cases:
        if c.technique not in out.setdefault(c.network, []):
            out[c.network].append(c.technique)
    return out


COLLECTED_KEY = pytest.StashKey[int]()


def _cases_of(items: list[pytest.Item]) -> list[Case]:
    return [
        item.callspec.params["case"] for item in items if hasattr(item, "callspec") and "case" in item.callspec.params
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[COLLECTED_KEY] = len(_cases_of(items))  # before -m and -k deselect


def why_no_case(config: pytest.Config, selected: int) -> str | None:
    """Why a run that asked for the study selected none of its cases, or None when it selected some
    (or did not ask: a run of the framework's own unit tests)."""
    if selected:
        return None
    collected = config.stash.get(COLLECTED_KEY, 0)
    markexpr = config.getoption("markexpr", default="") or ""
    if not collected:
        asked = re.sub(r"\bnot\s+(offline|hil)\b", "", markexpr)  # pytest.ini's own "not hil" asks for nothing
        if not re.search(r"\b(offline|hil)\b", asked):
            return None
        return (
            "tinyhil: no study case was collected. The cases come from a test module that imports them; "
            "add one to your project, e.g. tests/test_tinyhil.py holding the line\n"
            "    from tinyhil.study import test_case  # noqa: F401\n"
            "and run pytest on it (or in the folder that holds it)."
        )
    keyword = config.getoption("keyword", default="") or ""
    chosen = " and ".join(f"{flag} {expr!r}" for flag, expr in (("-m", markexpr), ("-k", keyword)) if expr)
    return (
        f"tinyhil: {collected} study case{'s' if collected != 1 else ''} collected, none selected by {chosen}. "
        "Offline cases carry the marker 'offline', bench cases 'hil' (and need --virtual-board, --port or "
        "--labgrid-places); -k matches ids like C_3-full_int-host: pytest --collect-only -q lists them."
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller trains (pytest_xdist_node_collection_finished)
    cases = _cases_of(session.items)
    reason = why_no_case(session.config, len(cases))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reason and reporter is not None:
        reporter.write_line(reason, yellow=True, bold=True)
    pretrain(session.config, cases)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids) -> None:
    """The xdist controller: the first worker's collection (after -k and -m) names the cases."""
    config = node.config
    by_id = {c.id: c for c in matrix(settings_of(config))}
    cases = [by_id[m.group(1)] for i in ids if (m := re.search(r"\[(.+)\]$", i)) and m.group(1) in by_id]
    pretrain(config, cases, newline_first=True)


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
        study = Study(settings_of(pytestconfig).study, progress=progress)
        study.dataset  # noqa: B018 - load now
        return study
    except TinyhilError as e:
        pytest.exit(f"tinyhil: {e}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture
def case_board(case: Case, request: pytest.FixtureRequest):
    """The board profile of a case: its own with several boards (``--board a,b``), else ``--board``'s."""
    return settings_of(request.config).board_named(case.board)


@pytest.fixture
def case_target(case: Case, case_board, request: pytest.FixtureRequest) -> Target:
    """The target a case deploys to, built by its registered factory."""
    ctx = TargetContext(settings_of(request.config), request.getfixturevalue, case_board)
    return TARGETS.get(case.target).create(ctx)
