"""Content-addressed on-disk cache shared by pytest-xdist workers.

An entry is a directory named by the hash of everything that determines its content.
The first process to need an entry builds it under a file lock, into a temporary
directory that is renamed into place when complete; the others wait on the lock and
then reuse it. A crash mid-build leaves no half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

DEFAULT_CACHE_DIR = Path(".tinyhil-cache")


def content_key(inputs: Any) -> str:
    """sha256 of a JSON-serialisable description of everything that affects an entry."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def cached_dir(root: Path, kind: str, name: str, key: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Returns the entry directory for ``key``, building it with ``build(tmpdir)`` if absent.

    Args:
        root: Cache root.
        kind: Sub-folder (``models``, ``tflite``).
        name: Readable prefix of the entry's folder name.
        key: Content hash.
        build: Writes the entry's files into the directory it is given.

    Returns:
        ``(path, hit)``: ``hit`` is True when the entry already existed.
    """
    base = Path(root) / kind
    base.mkdir(parents=True, exist_ok=True)
    entry = base / f"{name}-{key[:16]}"
    if (entry / ".complete").exists():
        return entry, True
    with FileLock(str(entry) + ".lock"):
        if (entry / ".complete").exists():
            return entry, True
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
        try:
            build(tmp)
            (tmp / ".complete").write_text(key + "\n")
            if entry.exists():
                shutil.rmtree(entry)
            tmp.rename(entry)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return entry, False
