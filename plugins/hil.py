"""Bench options and the guard that stops ``-m hil`` at once when no board is configured.

pytest-embedded owns ``--port``, ``--target`` and ``--embedded-services``; tinyhil only
adds what it needs on top and never shadows them.
"""

from __future__ import annotations

import pytest

NO_BOARD = (
    "tinyhil: {n} bench (hil) cases are selected but no board is configured.\n"
    "  On the bench: build firmware/ once (idf.py build), connect the ESP32 DevKit by USB and pass its serial port:\n"
    "      pytest -m hil --port /dev/ttyUSB0        (see README, 'Bench set-up')\n"
    "  Without hardware: pass --virtual-board to run them against the simulated ESP32 on a pseudo-terminal."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tinyhil")
    group.addoption(
        "--virtual-board",
        action="store_true",
        default=False,
        help="run hil cases against the virtual ESP32 on a pseudo-terminal; its figures are simulated (Default: off)",
    )


def board_configured(config: pytest.Config) -> bool:
    return bool(config.getoption("virtual_board") or config.getoption("port", default=None))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    hil = [item for item in items if item.get_closest_marker("hil")]
    if hil and not board_configured(config):
        pytest.exit(NO_BOARD.format(n=len(hil)), returncode=pytest.ExitCode.USAGE_ERROR)
