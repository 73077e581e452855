"""Where the files tinyhil reads at run time are: the one module that knows.

Everything ships in the wheel and is found from the packages' specs (without importing them):

- ``tinyhil.models`` data (``models/data/``): board profiles, training profiles, Table 1,
  the expected verdicts shipped with tinyhil;
- ``tinyhil.firmware`` (``firmware/``): the ESP-IDF project, its command and op tables
  (``commands.def``, ``ops.def``), Kconfig, partition table and the protocol's test vectors.

:func:`source_checkout` is the only place that works out whether tinyhil runs from a git
checkout (for the ``git_rev`` a row records, and where ``--update-expectations`` may write
by default).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class ResourceError(RuntimeError):
    """A file tinyhil ships is missing: the install is broken."""


def _package_dir(package: str) -> Path:
    """The folder of one of tinyhil's packages, found without importing it: importing
    :mod:`tinyhil.models` selects tf_keras for TensorFlow, which the option table (read in every
    pytest run of an environment with tinyhil installed) must not do."""
    spec = importlib.util.find_spec(package)  # imports the parent (tinyhil), not the package
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ResourceError(f"tinyhil: {package} is not on a file system ({spec!r}): reinstall tinyhil with pip")
    return Path(locations[0])


def _existing(path: Path) -> Path:
    if not path.exists():
        raise ResourceError(
            f"tinyhil: {path} is missing from the installed package: reinstall tinyhil (pip install --force-reinstall tinyhil)"
        )
    return path


def data(*parts: str) -> Path:
    """A file or folder under ``models/data`` (``data("boards")``, ``data("table1.json")``)."""
    return _existing(_package_dir("tinyhil.models").joinpath("data", *parts))


def firmware(*parts: str) -> Path:
    """The ESP-IDF project, or a file of it (``firmware("main", "ops.def")``)."""
    return _existing(_package_dir("tinyhil.firmware").joinpath(*parts))


def expectations_dir() -> Path:
    """The expected verdicts shipped with tinyhil, one sub-folder per board."""
    return data("expectations")


def source_checkout() -> Path | None:
    """The git checkout tinyhil runs from, or None when it runs from an installed wheel."""
    top = _package_dir("tinyhil.models").parent
    return top if (top / ".git").exists() and (top / "pyproject.toml").is_file() else None


def import_root() -> Path:
    """The folder that holds the ``tinyhil`` package: a child process (the host runtime, the
    virtual board) gets it on ``PYTHONPATH``, so it imports this same tinyhil."""
    return Path(__file__).resolve().parent.parent


def host_build_root() -> Path:
    """Where the firmware's host build goes: ``firmware/host/build`` in a checkout, a user
    cache folder for an installed tinyhil (its package folder may not be writable)."""
    checkout = source_checkout()
    if checkout is not None:
        return checkout / "firmware" / "host" / "build"
    return Path.home() / ".cache" / "tinyhil" / "host-build"
