"""Helpers for sub-runs of the study in a pytester project (see the ``project`` fixture)."""

import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(project, *args):
    """Runs pytest in a subprocess in the project, with a private expectations folder."""
    return project.runpytest_subprocess("-p", "no:randomly", "--expectations-dir", "exp", *args, timeout=900)


def read_csv(project, report_dir: str = "reports"):
    with open(project.path / report_dir / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def virtual_boards():
    """``pytest.mark.parametrize`` values for both virtual boards: the Python one, and the firmware's
    host build where ``TINYHIL_TFLM_SOURCE`` names an esp-tflite-micro folder (skipped otherwise)."""
    import os

    import pytest

    tflm = os.environ.get("TINYHIL_TFLM_SOURCE")
    return [
        pytest.param([], id="python-board"),
        pytest.param(
            [f"--tflm-source={tflm}"],
            id="firmware-host-build",
            marks=pytest.mark.skipif(not tflm, reason="set TINYHIL_TFLM_SOURCE to build the firmware for Linux"),
        ),
    ]
