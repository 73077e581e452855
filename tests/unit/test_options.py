"""The options reach the code one way: a typed attribute of ``settings.options`` and a fixture
of the same name, one per option of the table; the entry point stays light to import."""

import dataclasses
import subprocess
import sys

import pytest
from _pytest.fixtures import getfixturemarker

from tests.unit.subrun import run
from tinyhil.plugins import option_fixtures
from tinyhil.plugins.settings.option_values import OptionValues
from tinyhil.plugins.settings.table import OPTIONS


@pytest.mark.parametrize("opt", OPTIONS, ids=lambda opt: opt.name)
def test_every_option_has_a_session_fixture_of_its_name(opt):
    fixture = getattr(option_fixtures, opt.fixture, None)
    marker = getfixturemarker(fixture) if fixture is not None else None
    assert marker is not None, f"--{opt.name} has no fixture {opt.fixture} in tinyhil.plugins.option_fixtures"
    assert marker.scope == "session"


def test_option_values_hold_one_attribute_per_option():
    assert [f.name for f in dataclasses.fields(OptionValues)] == [opt.fixture for opt in OPTIONS]


def test_option_values_refuse_a_name_the_table_does_not_have():
    values = {opt.name: None for opt in OPTIONS}
    with pytest.raises(TypeError, match=r"options without an attribute \['virtual_bauds'\]"):
        OptionValues.from_names({**values, "virtual-bauds": 0})
    del values["virtual-baud"]
    with pytest.raises(TypeError, match=r"attributes without an option \['virtual_baud'\]"):
        OptionValues.from_names(values)


def test_the_entry_point_imports_neither_the_settings_nor_numpy():
    """Every pytest run of an environment with tinyhil installed imports the options module."""
    code = "import sys, tinyhil.plugins.options; print(' '.join(sys.modules))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert "tinyhil.plugins.options" in loaded
    assert not loaded & {"tinyhil.plugins.settings.resolve", "tinyhil.plugins.option_fixtures", "numpy", "tensorflow"}


def test_an_option_fixture_gives_the_parametrized_value_else_the_option(project):
    project.makepyfile(
        test_fixtures="""
        import pytest

        @pytest.mark.parametrize("device_windows", [7], indirect=True)
        def test_given(device_windows, virtual_baud, report_dir, settings):
            assert device_windows == 7 != settings.options.device_windows
            assert virtual_baud == settings.options.virtual_baud == 1200
            assert report_dir == settings.report_dir and report_dir.name == "out"
        """
    )
    res = run(project, "--virtual-baud=1200", "--report-dir=out", "test_fixtures.py")
    res.assert_outcomes(passed=1)
