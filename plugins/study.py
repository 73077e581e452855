"""The case matrix and the fixtures a case uses.

One case per selected network x technique x target (:func:`plugins.targets.matrix`);
the case id reads ``network-technique-target`` and carries its target's marker
(``offline`` or ``hil``), so ``-m`` and ``-k`` select cases.
"""

from __future__ import annotations

import pytest

from models.errors import TinyhilError
from models.host_eval import TEMP_PREFIX as HOST_TEMP_PREFIX
from models.lifeline import sweep_stale, tie_forked_children_to_this_process
from models.pipeline import Study
from plugins.bench.virtual_process import TEMP_PREFIX as VIRTUAL_TEMP_PREFIX
from plugins.options import settings_of
from plugins.targets import TARGETS, Case, Target, TargetContext, matrix


def pytest_configure(config: pytest.Config) -> None:
    # Libraries fork helpers (pytest-embedded's serial listener): none may outlive this process,
    # and folders that a killed run left behind are cleared.
    tie_forked_children_to_this_process()
    for prefix in (HOST_TEMP_PREFIX, VIRTUAL_TEMP_PREFIX):
        sweep_stale(prefix)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    params = [
        pytest.param(case, id=case.id, marks=[getattr(pytest.mark, case.marker)])
        for case in matrix(settings_of(metafunc.config))
    ]
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
        study = Study(settings_of(pytestconfig).study, progress=progress)
        study.dataset  # noqa: B018 - load now
        return study
    except TinyhilError as e:
        pytest.exit(f"tinyhil: {e}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture
def case_target(case: Case, request: pytest.FixtureRequest) -> Target:
    """The target a case deploys to, built by its registered factory."""
    return TARGETS.get(case.target).create(TargetContext(settings_of(request.config), request.getfixturevalue))
