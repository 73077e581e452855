"""The environment recorded with every result row."""

from __future__ import annotations

import datetime as dt
import subprocess
from importlib import metadata
from pathlib import Path


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def git_revision(root: Path) -> str:
    """Short revision of ``root``'s checkout, with ``+dirty`` for uncommitted changes."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return ""
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def host_environment(checkout: Path | None) -> dict[str, str]:
    """Library versions, the revision of the tinyhil that runs and start time of this run.

    ``git_rev`` is ``checkout``'s revision when tinyhil runs from a git checkout, else the
    installed version (``tinyhil 0.2.0``)."""
    return {
        "tensorflow": _version("tensorflow"),
        "tf_keras": _version("tf-keras"),
        "tflite_micro": _version("tflite-micro"),
        "ai_edge_litert": _version("ai-edge-litert"),
        "git_rev": git_revision(checkout) if checkout is not None else f"tinyhil {_version('tinyhil')}",
        "run_started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
