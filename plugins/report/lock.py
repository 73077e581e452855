"""One run at a time in a report folder: ``<report-dir>/.tinyhil.lock``.

Two runs writing one folder lose rows: each starts its own results.csv and the last
JUnit file wins. A run takes the folder with an exclusive ``flock`` on the lock file,
which the kernel gives back when the process dies, however it dies; the file holds the
holder's pid and command line only to tell a second run whom it waits for.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from pathlib import Path

from tinyhil.models.lifeline import alive

LOCK_NAME = ".tinyhil.lock"


class ReportDirBusy(Exception):
    """Another live run holds the folder.

    Attributes:
        path: The lock file.
        holder: What the holder wrote: ``pid``, ``command``, ``cwd`` (empty when it had
            not written yet).
    """

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        super().__init__(f"{path} is held by {describe(holder)}")


def describe(holder: dict) -> str:
    """``pid 123 (pytest -m offline, in /work)``, or what is known of it."""
    if not holder.get("pid"):
        return "another run (starting: it has not written its pid yet)"
    where = f", in {holder['cwd']}" if holder.get("cwd") else ""
    return f"pid {holder['pid']} ({holder.get('command', '?')}{where})"


class ReportLock:
    """The lock on one report folder.

    Args:
        folder: The report folder (created if missing).
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, command: str, cwd: str = "") -> dict | None:
        """Takes the folder for this process.

        Args:
            command: This run's command line, shown to a run that finds the folder taken.
            cwd: This run's working directory (its relative paths).

        Returns:
            What a run that died holding the folder had written (its lock is taken over),
            or None when the folder was free.

        Raises:
            ReportDirBusy: when a live process holds it.
            OSError: when the lock file cannot be made (the disk is full, the folder is read-only).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                taken = _lock(fd, self.path)
            except BaseException:
                os.close(fd)
                raise
            if not taken:
                holder = _read(fd)
                os.close(fd)
                raise ReportDirBusy(self.path, holder)
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed the file between our open and our lock: lock the new one
        left = _read(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "cwd": cwd}).encode(), 0)
        except OSError:
            _remove(fd, self.path)
            raise
        self._fd = fd
        return left if left.get("pid") and left["pid"] != os.getpid() else None

    def release(self) -> None:
        """Gives the folder back: removes the file, then unlocks (a run waiting on the old file retries)."""
        if self._fd is not None:
            _remove(self._fd, self.path)
            self._fd = None


def _lock(fd: int, path: Path) -> bool:
    """True when this process now holds ``fd``'s lock; False when another process does.

    Where the file system has no ``flock`` (some network mounts), a pid that still runs is
    taken to hold the file.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
    pid = _read(fd).get("pid")
    return not (isinstance(pid, int) and pid != os.getpid() and alive(pid))


def _read(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _remove(fd: int, path: Path) -> None:
    if _same_file(fd, path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    os.close(fd)
