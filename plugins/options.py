"""Every tinyhil option, grouped by concern, and the settings they resolve into, once.

Options are declared from one table (:data:`tinyhil.plugins.settings.table.OPTIONS`): each
has an ini default ``tinyhil_<name>`` and a parser type that checks numbers, ranges and
choices. At configure time the values are resolved into one
:class:`~tinyhil.plugins.settings.resolve.Settings` kept in ``config.stash``; a bad value
stops the run there with the option and the fix. The fixtures that hand the values out
are in :mod:`tinyhil.plugins.option_fixtures`.

This module is the package's pytest11 entry point, loaded by every pytest run of an
environment with tinyhil installed: it imports nothing but pytest, the standard library
and the option table, and does nothing in a run that did not ask for tinyhil.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tinyhil.plugins.settings.table import GROUPS, OPTIONS, Option

if TYPE_CHECKING:
    from tinyhil.plugins.settings.resolve import Settings

SETTINGS_KEY = pytest.StashKey["Settings"]()
# --help's placeholder where the option name's last word does not say what goes there
METAVARS = {"networks-from": "FILE", "baseline": "CSV", "tflm-source": "DIR", "esp-nn-source": "DIR"}


def pytest_addoption(parser: pytest.Parser) -> None:
    groups = {key: parser.getgroup(f"tinyhil-{key}", text) for key, text in GROUPS.items()}
    for opt in OPTIONS:
        group = groups[opt.group]
        if opt.is_flag:
            group.addoption(
                f"--{opt.name}", dest=opt.dest, action="store_true", default=False, help=f"{opt.help} (Default: off)"
            )
            continue
        group.addoption(
            f"--{opt.name}",
            dest=opt.dest,
            type=opt.parse,
            default=None,
            metavar=METAVARS.get(opt.name) or opt.name.rsplit("-", 1)[-1].upper(),  # --report-dir=DIR
            help=_help(opt),
        )
        parser.addini(opt.dest, opt.help, default=opt.default)


def _help(opt: Option) -> str:
    """An option's help as pytest-embedded writes it: what it is, its choices, ``(Default: value)``.
    The ini key (``tinyhil_<name>``) is listed once, in --help's ini section."""
    choices = getattr(opt.parse, "choices", ())
    listed = f"; one of: {', '.join(choices)}" if choices and not all(c in opt.help for c in choices) else ""
    return f"{opt.help}{listed} (Default: {opt.default or 'none'})"


VALUE_OPTIONS = frozenset(f"--{opt.name}" for opt in OPTIONS if not opt.is_flag)


def _is_tinyhil_ini(path: Path) -> bool:
    try:
        return path.is_file() and "tinyhil_" in path.read_text()
    except OSError:
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Installed as a plugin (``pip install -e .``), tinyhil's options are known when pytest
    reads the command line, but pytest picks its configuration file before it loads any
    plugin, from the path arguments: ``--report-dir /tmp/out`` made ``/tmp/out`` a test
    path, no pytest.ini was found there, and tinyhil's conftest was never loaded. When
    that happened here (no configuration file, tinyhil's pytest.ini in the working
    directory, a tinyhil option written with a space before its value), pytest starts
    again with ``-c`` naming that pytest.ini, the same command line otherwise.
    """
    ini = Path(early_config.invocation_params.dir) / "pytest.ini"
    if early_config.inipath is not None or not _is_tinyhil_ini(ini):
        return
    spaced = [a for a in args[:-1] if a in VALUE_OPTIONS]
    if not spaced:
        return
    if list(early_config.invocation_params.args) != sys.argv[1:]:  # pytest.main() from Python: no restart
        raise pytest.UsageError(
            f"pytest took the value of {spaced[0]} for a test path and found no pytest.ini: "
            f"write {spaced[0]}=VALUE, or pass -c {ini}"
        )
    capture = early_config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()  # give the new pytest the terminal, not capture files
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "pytest", "-c", str(ini), *sys.argv[1:]])


def _join_spaced_values(config: pytest.Config) -> None:
    """Writes ``--report-dir /new/dir`` as ``--report-dir=/new/dir`` in the arguments that
    pytest-xdist hands its workers. A worker reads its configuration file from its path
    arguments before it loads tinyhil, so it takes ``/new/dir`` for a test path; by then the
    folder exists (this process created it), holds no pytest.ini, and the worker stopped
    with a usage error. Joined, the value is an option's to every process."""
    args = list(config.invocation_params.args)
    joined: list[str] = []
    while args:
        arg = args.pop(0)
        joined.append(f"{arg}={args.pop(0)}" if arg in VALUE_OPTIONS and args else arg)
    if tuple(joined) != tuple(config.invocation_params.args):
        config.invocation_params = dataclasses.replace(config.invocation_params, args=tuple(joined))


def _value(config: pytest.Config, opt: Option):
    """Command line, then ini, then the table's default; the ini text goes through the same parser."""
    value = config.getoption(opt.dest)
    if opt.is_flag or value is not None:
        return value
    raw = str(config.getini(opt.dest))
    try:
        return opt.parse(raw)
    except argparse.ArgumentTypeError as e:
        raise pytest.UsageError(
            f"ini option {opt.dest} = {raw!r}: {e}; fix it in pytest.ini or pass --{opt.name}"
        ) from None


def settings_of(config: pytest.Config) -> Settings:
    """The run's settings, resolved in ``pytest_configure``."""
    if SETTINGS_KEY not in config.stash:
        raise pytest.UsageError(
            "tinyhil's settings are used outside a tinyhil run: run pytest in the tinyhil folder "
            "(its conftest.py loads tinyhil's plugins)"
        )
    return config.stash[SETTINGS_KEY]


def in_tinyhil_run(config: pytest.Config) -> bool:
    """True when the run asked for tinyhil: :mod:`tinyhil.study` is registered (``-p tinyhil.study``,
    or a conftest's ``pytest_plugins``). With tinyhil installed, this module is a plugin of
    every pytest run in the environment (to declare the options early); in another
    project's run it only declares them."""
    return config.pluginmanager.has_plugin("tinyhil.study")


def bench_port(config: pytest.Config) -> str | None:
    """The board's port as pytest-embedded's esp service will open it: ``ESPPORT`` wins over
    ``--port`` there (its dut factory), so it counts as the port here too.

    Raises:
        SettingsError: when both are given and differ (pytest-embedded would silently use ESPPORT).
    """
    port = config.getoption("port", default=None)
    env = os.environ.get("ESPPORT", "").strip()
    if env and port and port != env:
        raise pytest.UsageError(
            f"tinyhil: ESPPORT={env} and --port {port} name different boards, and pytest-embedded would open "
            f"ESPPORT's for every worker: unset ESPPORT, or drop --port"
        )
    return port or env or None


def _given_options(config: pytest.Config) -> list[str]:
    """The tinyhil options written on this run's command line."""
    return [f"--{opt.name}" for opt in OPTIONS if config.getoption(opt.dest) not in (None, False)]


def _other_checkout(config: pytest.Config) -> Path | None:
    """The tinyhil checkout this run's rootdir is, when Python imported tinyhil from elsewhere
    (``cd /tmp && python -m pytest /path/to/clone2/tests`` with clone1 installed editable)."""
    from tinyhil import resources

    root = Path(config.rootpath).resolve()
    if not (root / "tinyhil" / "__init__.py").is_file() or not (root / "pyproject.toml").is_file():
        return None
    return None if root == resources.import_root().resolve() else root


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not in_tinyhil_run(config):
        given = _given_options(config)
        if given:
            raise pytest.UsageError(
                f"tinyhil options ({', '.join(given[:3])}) were given, but this run did not ask for tinyhil's "
                'study: add -p tinyhil.study (or pytest_plugins = ["tinyhil.study"] in your root conftest.py)'
            )
        return
    other = _other_checkout(config)
    if other is not None:
        from tinyhil import resources

        raise pytest.UsageError(
            f"tinyhil: this run's rootdir is the tinyhil checkout {other}, but Python imports tinyhil from "
            f"{resources.import_root()}: its code would run and {other}'s revision would not be what ran. "
            f"Run pytest from inside {other} (cd {other} && python -m pytest ...), or pip install -e {other}"
        )
    _join_spaced_values(config)
    from tinyhil.plugins.report.whole_files import junit_beside
    from tinyhil.plugins.settings.resolve import SettingsError, build_settings  # the heavy part: tinyhil runs only

    values = {opt.name: _value(config, opt) for opt in OPTIONS}
    try:
        settings = config.stash[SETTINGS_KEY] = build_settings(values, port=bench_port(config))
    except SettingsError as e:
        raise pytest.UsageError(str(e)) from None
    if getattr(config.option, "xmlpath", None) is None:
        # JUnit beside results.csv, so two runs with different --report-dir keep their own
        config.option.xmlpath = str(settings.report_dir / "junit.xml")
    junit_beside(config)
