"""Content-addressed on-disk cache shared by pytest-xdist workers.

An entry is a directory named by the hash of everything that determines its content.
The first process to need an entry builds it under a file lock, into a temporary
directory; a manifest with the sha256 of every file is written last, then the
directory is renamed into place. A read checks the files against the manifest: an
entry that is partial, truncated, edited or missing a file is rebuilt, with one line
on stderr naming it. Temporary directories left by a killed build are cleared by the
next build of the same entry.

A cache that cannot be written (a read-only mount shared by CI runs) still serves the
entries it holds; a missing one raises :class:`CacheNotWritable`, naming the cache.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from tinyhil.models.errors import TinyhilError

DEFAULT_CACHE_DIR = Path(".tinyhil-cache")
MANIFEST = "manifest.json"
# errors that say the cache cannot be written, as opposed to a broken build
_UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


class CacheNotWritable(TinyhilError):
    """The cache lacks an entry and cannot be written (read-only, or not this user's)."""


def content_key(inputs: Any) -> str:
    """sha256 of a JSON-serialisable description of everything that affects an entry."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(entry: Path, key: str) -> None:
    """Records the key and the sha256 of every file of ``entry``; written last, so it marks completion."""
    files = {p.name: file_sha256(p) for p in sorted(entry.iterdir()) if p.is_file() and p.name != MANIFEST}
    (entry / MANIFEST).write_text(json.dumps({"key": key, "files": files}, indent=1) + "\n")


def damage(entry: Path, key: str) -> str | None:
    """What is wrong with ``entry`` (None when it is complete and every file matches its manifest)."""
    manifest = entry / MANIFEST
    if not manifest.exists():
        return "no manifest (partial or from an older tinyhil)"
    try:
        doc = json.loads(manifest.read_text())
        files = doc["files"]
    except (ValueError, KeyError, TypeError):
        return "unreadable manifest"
    if doc.get("key") != key:
        return "manifest of another key"
    for name, digest in files.items():
        path = entry / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != digest:
            return f"{name} does not match its checksum"
    return None


def entry_dir(root: Path, kind: str, name: str, key: str) -> Path:
    """Where the entry for ``key`` lives (whether or not it exists)."""
    return Path(root) / kind / f"{name}-{key[:16]}"


def is_cached(root: Path, kind: str, name: str, key: str) -> bool:
    """True when a complete, undamaged entry for ``key`` exists."""
    entry = entry_dir(root, kind, name, key)
    return entry.exists() and damage(entry, key) is None


def cached_dir(root: Path, kind: str, name: str, key: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Returns the entry directory for ``key``, building it with ``build(tmpdir)`` if absent or damaged.

    Args:
        root: Cache root.
        kind: Sub-folder (``models``, ``tflite``).
        name: Readable prefix of the entry's folder name.
        key: Content hash.
        build: Writes the entry's files into the directory it is given.

    Returns:
        ``(path, hit)``: ``hit`` is True when a verified entry already existed.

    Raises:
        CacheNotWritable: when the entry is missing or damaged and the cache cannot be written.
    """
    entry = entry_dir(root, kind, name, key)
    if entry.exists() and damage(entry, key) is None:
        return entry, True  # a read-only cache serves what it holds
    base, stem = entry.parent, entry.name
    with _writing(root, entry):
        base.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(entry) + ".lock")
        lock.acquire()
    try:
        if entry.exists():
            problem = damage(entry, key)
            if problem is None:
                return entry, True  # built by another process while this one waited
            sys.stderr.write(f"tinyhil: cache entry {entry} is damaged ({problem}); rebuilding it\n")
            with _writing(root, entry):
                shutil.rmtree(entry)
        for stale in base.glob(f".{stem}-*"):  # left by a build that was killed; we hold its lock
            shutil.rmtree(stale, ignore_errors=True)
        with _writing(root, entry):
            tmp = _new_build_dir(base, stem)
        try:
            build(tmp)
            write_manifest(tmp, key)
            tmp.rename(entry)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lock.release()
    return entry, False


def _new_build_dir(base: Path, stem: str) -> Path:
    """A fresh hidden folder beside the entry to build it in (renamed into place when complete)."""
    return Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=base))


@contextmanager
def _writing(root: Path, entry: Path) -> Iterator[None]:
    """Turns "cannot write here" into :class:`CacheNotWritable`; a build's own errors pass as they are."""
    try:
        yield
    except OSError as e:
        if e.errno not in _UNWRITABLE:
            raise
        raise CacheNotWritable(
            f"the model cache {root} cannot be written ({e.strerror or e}; read-only?) and lacks "
            f"{entry.relative_to(root) if entry.is_relative_to(root) else entry}: fill it with a run that can "
            "write it, or give --model-cache a folder you can write to"
        ) from None
