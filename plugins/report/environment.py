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


def host_environment(root: Path) -> dict[str, str]:
    """Library versions, git revision and start time of this run."""
    return {
        "tensorflow": _version("tensorflow"),
        "tf_keras": _version("tf-keras"),
        "tflite_micro": _version("tflite-micro"),
        "ai_edge_litert": _version("ai-edge-litert"),
        "git_rev": git_revision(root),
        "run_started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
