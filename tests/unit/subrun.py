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
