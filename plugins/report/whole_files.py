"""Report files replaced whole or not at all, and what to say when the disk refuses a write.

A write that fails halfway (a full disk, a quota) must not leave a report worse than it
found it: each file is written beside its final name, synced, then renamed over it; on
failure the temp file is removed and the old file stays.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import pytest

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
JUNIT_KEY = pytest.StashKey[tuple[str, str]]()  # (where junitxml writes, the --junitxml name)


def junit_beside(config: pytest.Config) -> None:
    """Points ``--junitxml`` at a temp name beside it, before junitxml and pytest-embedded read it
    (called from the options plugin's first-run ``pytest_configure``); the recording plugin
    moves the file in at the end (``ReportFolder.place_junit``), so a run that stops early or finds
    the disk full leaves the last junit.xml whole. The xdist controller writes JUnit; workers do not."""
    xmlpath = getattr(config.option, "xmlpath", None)
    if hasattr(config, "workerinput") or not xmlpath or JUNIT_KEY in config.stash:
        return
    final = Path(xmlpath)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    config.stash[JUNIT_KEY] = (str(tmp), str(final))
    config.option.xmlpath = str(tmp)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a nearly full disk takes part of a write)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def replace_whole(path: Path, data: bytes | str) -> None:
    """Writes ``data`` to ``path`` through ``<path>.<pid>.tmp`` and a rename.

    Raises:
        OSError: when it could not be written; ``path`` is as it was and no temp file is left.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    raw = data.encode() if isinstance(data, str) else data
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, raw)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def why_not_written(path: Path, e: OSError) -> str:
    """``no space left on <path>``, or the system's reason."""
    if e.errno in NO_SPACE:
        return f"no space left on {path}"
    return f"cannot write {path} ({e.strerror or e})"
