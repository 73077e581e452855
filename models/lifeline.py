"""Child processes and temporary folders that do not outlive the run that made them.

A child (the host runtime, the virtual board, a process forked by a library) asks the
kernel to end it when its parent dies, so ``kill -9`` of pytest leaves nothing running.
Temporary folders carry the creating process's pid in their name, so a later run can
remove the ones whose creator is gone.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

PARENT_ENV = "TINYHIL_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(expected_parent: int | None = None, sig: int = signal.SIGTERM) -> None:
    """Ends this process with ``sig`` when its parent exits (Linux; elsewhere nothing happens).

    Args:
        expected_parent: The parent's pid as the parent knew it; when the parent is
            already gone (this process was re-parented) it ends now.
        sig: The signal the kernel sends.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return
    if expected_parent is not None and os.getppid() != expected_parent:
        os.kill(os.getpid(), sig)


def die_with_parent_from_env() -> None:
    """For a child started with :func:`child_env`: ties it to the parent named there."""
    parent = os.environ.get(PARENT_ENV)
    die_with_parent(int(parent) if parent and parent.isdigit() else None)


def child_env(extra_path: Path | None = None) -> dict[str, str]:
    """The environment of a child process: this pid as its parent, ``extra_path`` on PYTHONPATH."""
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), os.environ.get("PYTHONPATH", "")])
    return env


def tie_forked_children_to_this_process() -> None:
    """Every process forked from here on (by any library) ends when this one dies."""
    parent = os.getpid()
    os.register_at_fork(after_in_child=lambda: die_with_parent(parent))


def make_temp_dir(prefix: str) -> Path:
    """A temporary folder named ``<prefix><pid>-<random>``, so :func:`sweep_stale` can tell its owner."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(prefix: str, root: Path | None = None) -> list[Path]:
    """Removes ``<prefix><pid>-*`` folders whose creating process is gone; returns them."""
    root = Path(root or tempfile.gettempdir())
    pattern = re.compile(re.escape(prefix) + r"(\d+)-")
    removed = []
    for path in root.glob(prefix + "*"):
        m = pattern.match(path.name)
        if m and path.is_dir() and not alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
