"""UCI-HAR (Reyes-Ortiz et al.): the reference study's dataset, from its official layout.

Reads the raw inertial windows of ``UCI HAR Dataset/{train,test}/Inertial Signals`` from a
folder or straight from the official zip, and downloads that zip into a cache directory::

    python -m tinyhil.models.datasets.uci_har_cli download --dest ~/.cache/tinyhil/uci-har

The download resumes a broken transfer (HTTP Range), retries with back-off, checks that
the archive is a complete zip in the official layout (and its sha256 when given), then
unpacks it. The UCI archive's current zip nests ``UCI HAR Dataset.zip``; both forms load.
"""

from __future__ import annotations

import io
import os
import sys
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

from tinyhil.models.cache import file_sha256
from tinyhil.models.datasets.base import HAR_ACTIVITIES, HAR_CHANNELS, Windows, register_dataset
from tinyhil.models.errors import DatasetError

OFFICIAL_URL = "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
ROOT = "UCI HAR Dataset"
TIMESTEPS = 128
DEFAULT_DIR = Path(os.environ.get("TINYHIL_DATA_DIR", Path.home() / ".cache" / "tinyhil")) / "uci-har"
FIX = "run `python -m tinyhil.models.datasets.uci_har_cli download --dest DIR` and pass --data-dir DIR"


def expected_files(part: str) -> list[str]:
    """Relative paths (under ``UCI HAR Dataset/``) that one part (train or test) needs."""
    inertial = [f"{part}/Inertial Signals/{ch}_{part}.txt" for ch in HAR_CHANNELS]
    return [*inertial, f"{part}/y_{part}.txt", f"{part}/subject_{part}.txt"]


class _Source:
    """Reads members of the official layout from a folder or a zip."""

    def __init__(self, path: Path):
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        if path.is_file():
            self._open_zip(path)
        elif path.is_dir():
            if (path / ROOT).is_dir():
                self.root = path / ROOT
            elif (path / "train").is_dir() or (path / "test").is_dir():
                self.root = path
            elif (path / f"{ROOT}.zip").is_file():
                self._open_zip(path / f"{ROOT}.zip")
            else:
                raise DatasetError(
                    f"UCI-HAR: {path} holds neither '{ROOT}/', 'train/' and 'test/', nor '{ROOT}.zip'; {FIX}"
                )
        else:
            raise DatasetError(f"UCI-HAR: {path} does not exist; {FIX}")

    def _open_zip(self, path: Path) -> None:
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise DatasetError(f"UCI-HAR: {path} is not a readable zip ({e}); download it again: {FIX}") from None
        names = zf.namelist()
        nested = [n for n in names if n.endswith(f"{ROOT}.zip")]
        if not any(n.startswith(f"{ROOT}/") for n in names) and nested:
            zf = zipfile.ZipFile(io.BytesIO(zf.read(nested[0])))
            names = zf.namelist()
        self.zip = zf
        self.prefix = f"{ROOT}/" if any(n.startswith(f"{ROOT}/") for n in names) else ""

    def describe(self, rel: str) -> str:
        return f"{self.path}!{self.prefix}{rel}" if self.zip else str(self.root / rel)

    def read(self, rel: str) -> bytes:
        if self.zip is not None:
            try:
                return self.zip.read(self.prefix + rel)
            except KeyError:
                raise DatasetError(f"UCI-HAR: missing {self.describe(rel)}; {FIX}") from None
            except (zipfile.BadZipFile, zlib.error, EOFError) as e:  # a bad CRC or a cut member
                raise DatasetError(
                    f"UCI-HAR: {self.describe(rel)} is damaged ({e}); delete {self.path} and download it again: {FIX}"
                ) from None
        f = self.root / rel
        if not f.is_file():
            raise DatasetError(f"UCI-HAR: missing {f}; {FIX}")
        return f.read_bytes()


def _matrix(src: _Source, rel: str, cols: int | None) -> np.ndarray:
    try:
        arr = np.loadtxt(io.BytesIO(src.read(rel)), dtype=np.float32, ndmin=2)
    except ValueError as e:
        raise DatasetError(f"UCI-HAR: {src.describe(rel)} is not a whitespace-separated number table ({e})") from None
    if cols is not None and arr.shape[1] != cols:
        raise DatasetError(f"UCI-HAR: {src.describe(rel)} has {arr.shape[1]} columns per row, expected {cols}")
    return arr


def _part(src: _Source, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    channels = [_matrix(src, rel, TIMESTEPS) for rel in expected_files(part)[: len(HAR_CHANNELS)]]
    y = _matrix(src, f"{part}/y_{part}.txt", 1)[:, 0].astype(np.int64)
    subjects = _matrix(src, f"{part}/subject_{part}.txt", 1)[:, 0].astype(np.int64)
    n = len(y)
    for rel, ch in zip(expected_files(part), channels, strict=False):
        if len(ch) != n:
            raise DatasetError(f"UCI-HAR: {src.describe(rel)} has {len(ch)} rows, expected {n} (one per label)")
    if len(subjects) != n:
        raise DatasetError(
            f"UCI-HAR: {src.describe(f'{part}/subject_{part}.txt')} has {len(subjects)} rows, expected {n}"
        )
    if n and (y.min() < 1 or y.max() > len(HAR_ACTIVITIES)):
        raise DatasetError(
            f"UCI-HAR: {src.describe(f'{part}/y_{part}.txt')} labels must be 1..6, got {y.min()}..{y.max()}"
        )
    return np.stack(channels, axis=-1), y - 1, subjects


def load(path: Path) -> Windows:
    """Loads UCI-HAR's raw inertial windows from a folder or zip in the official layout.

    Args:
        path: The ``UCI HAR Dataset`` folder, a folder holding it (or its zip), or the zip.

    Raises:
        DatasetError: naming the missing or malformed file and what was expected.
    """
    src = _Source(Path(path).expanduser())
    x_tr, y_tr, s_tr = _part(src, "train")
    x_te, y_te, s_te = _part(src, "test")
    return Windows(
        x=np.concatenate([x_tr, x_te]),
        y=np.concatenate([y_tr, y_te]),
        subjects=np.concatenate([s_tr, s_te]),
        official_train=np.concatenate([np.ones(len(y_tr), bool), np.zeros(len(y_te), bool)]),
        meta={
            "name": "uci-har",
            "generated": False,
            "sample_rate_hz": 50.0,
            "class_names": list(HAR_ACTIVITIES),
            "channel_names": list(HAR_CHANNELS),
            "provenance": "UCI HAR Dataset, raw inertial signals",
        },
    )


@register_dataset("uci-har")
def _load(data_dir: Path | None, seed: int) -> Windows:
    return load(data_dir or DEFAULT_DIR)


def download(
    dest: Path = DEFAULT_DIR,
    url: str = OFFICIAL_URL,
    sha256: str | None = None,
    retries: int = 5,
    timeout_s: float = 60.0,
    backoff_s: float = 2.0,
    progress=None,
) -> Path:
    """Downloads the official zip into ``dest``, verifies it, and unpacks it there.

    An interrupted transfer leaves ``<dest>/uci-har.zip.part``; the next attempt (or call)
    resumes it with an HTTP Range request when the server supports ranges, else restarts.

    Args:
        dest: Cache directory; receives ``uci-har.zip`` and ``UCI HAR Dataset/``.
        url: Where to fetch from (the UCI archive by default; a mirror works too).
        sha256: Expected digest of the zip; checked when given.
        retries: Attempts before giving up.
        timeout_s: Socket time-out per attempt.
        backoff_s: Wait before the second attempt, doubled each time.
        progress: ``callable(done_bytes, total_bytes_or_None)``; prints to stderr by default.

    Returns:
        The unpacked ``UCI HAR Dataset`` folder.

    Raises:
        DatasetError: when every attempt failed or the archive is not UCI-HAR.
    """
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    final, part = dest / "uci-har.zip", dest / "uci-har.zip.part"
    progress = progress or _print_progress
    if not final.exists():
        last_error: Exception | None = None
        for attempt in range(1, retries + 1):
            try:
                _fetch(url, part, timeout_s, progress)
                part.replace(final)
                break
            except (urllib.error.URLError, OSError, _Incomplete) as e:
                last_error = e
                print(f"uci-har: attempt {attempt}/{retries} failed: {e}", file=sys.stderr)
                if attempt < retries:
                    time.sleep(backoff_s * 2 ** (attempt - 1))
        else:
            raise DatasetError(
                f"UCI-HAR: could not download {url} after {retries} attempts ({last_error}); "
                f"the partial file {part} is kept and the next call resumes it"
            )
    if sha256 and (digest := file_sha256(final)) != sha256.lower():
        bad = final.with_suffix(".zip.bad")
        final.replace(bad)
        raise DatasetError(f"UCI-HAR: {final} has sha256 {digest}, expected {sha256}; moved to {bad}, download again")
    windows = load(final)  # proves the layout before unpacking
    _unpack(final, dest)
    (dest / "uci-har.sha256").write_text(file_sha256(final) + "\n")
    print(f"uci-har: {len(windows.y)} windows ready in {dest / ROOT}", file=sys.stderr)
    return dest / ROOT


class _Incomplete(Exception):
    pass


def _fetch(url: str, part: Path, timeout_s: float, progress) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        if have and resp.status != 206:
            have = 0  # server ignored the range: start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as out:
            done = have
            while block := resp.read(1 << 16):
                out.write(block)
                done += len(block)
                progress(done, total)
    if total is not None and part.stat().st_size != total:
        raise _Incomplete(f"transfer ended at {part.stat().st_size} of {total} bytes")


def _print_progress(done: int, total: int | None) -> None:
    if total:
        print(f"\ruci-har: {done / 1e6:.1f} / {total / 1e6:.1f} MB", end="", file=sys.stderr)
        if done >= total:
            print(file=sys.stderr)


def _unpack(zip_path: Path, dest: Path) -> None:
    with zipfile.ZipFile(zip_path) as zf:
        nested = [n for n in zf.namelist() if n.endswith(f"{ROOT}.zip")]
        if nested and not any(n.startswith(f"{ROOT}/") for n in zf.namelist()):
            with zipfile.ZipFile(io.BytesIO(zf.read(nested[0]))) as inner:
                inner.extractall(dest)
        else:
            zf.extractall(dest)
