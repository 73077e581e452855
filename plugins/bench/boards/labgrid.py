"""Boards of a labgrid lab: acquire a place, find its serial port, release it.

tinyhil drives labgrid's own client, ``labgrid-client``, rather than importing labgrid: labgrid
brings ``pyserial-labgrid``, which replaces pyserial's ``serial`` module that pytest-embedded and
esptool use, and a pytest plugin whose ``target`` fixture collides with pytest-embedded's, so it
belongs in an environment of its own (``pipx install labgrid``, or a venv whose ``labgrid-client``
is on PATH). Each place holds one board whose serial port an exporter publishes through ser2net
(a ``NetworkSerialPort``); tinyhil talks to it as ``rfc2217://host:port``, as esptool and pyserial
accept, with ``ign_set_control`` as labgrid's own serial driver does (ser2net on a port without
modem lines does not acknowledge DTR, and pyserial would time out waiting for it).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from tinyhil.models.errors import TinyhilError

CLIENT = "labgrid-client"
_RESOURCE = re.compile(r"^Acquired resource '[^']*' \(([^)]*)\):\n((?:[ \t].*\n?)+)", re.M)


class LabgridError(TinyhilError):
    """A place that cannot be had: no client, no coordinator, an unknown or busy place."""


@dataclass
class Place:
    """An acquired place and the URL of its board's serial port."""

    name: str
    coordinator: str
    url: str = ""

    def release(self) -> None:
        """Gives the place back (also when the run was interrupted: called from pytest_unconfigure)."""
        if self.url:
            self.url = ""
            try:
                _client(self.coordinator, "-p", self.name, "release")
            except (LabgridError, OSError, subprocess.TimeoutExpired) as e:
                print(
                    f"tinyhil: labgrid place {self.name} was not released ({e}); "
                    f"release it with: labgrid-client -x {self.coordinator} -p {self.name} release",
                    file=sys.stderr,
                )


def _client(coordinator: str, *args: str, check: bool = True) -> str:
    exe = shutil.which(CLIENT)
    if exe is None:
        raise LabgridError(
            f"--labgrid-places needs labgrid's {CLIENT} on PATH: pipx install labgrid (an environment of its own: "
            "labgrid replaces pyserial with pyserial-labgrid)"
        )
    r = subprocess.run([exe, "-x", coordinator, *args], capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        words = (r.stderr or r.stdout).strip().splitlines()
        raise LabgridError(
            f"{CLIENT} -x {coordinator} {' '.join(args)}: {words[-1] if words else f'exit {r.returncode}'}"
        )
    return r.stdout


def serial_url(show_output: str, place: str) -> str:
    """The ``rfc2217://`` URL of the NetworkSerialPort that ``labgrid-client -p PLACE show`` lists as acquired.

    Raises:
        LabgridError: when the place holds no network serial port.
    """
    for m in _RESOURCE.finditer(show_output):
        try:
            resource = ast.literal_eval(m.group(2).strip())
        except (SyntaxError, ValueError):
            continue
        if resource.get("cls") == "NetworkSerialPort":
            params = resource["params"]
            return f"rfc2217://{params['host']}:{params['port']}?ign_set_control"
    raise LabgridError(
        f"place {place} holds no NetworkSerialPort: export the board's serial port (RawSerialPort or USBSerialPort) "
        f"and add it to the place (labgrid-client -p {place} add-match EXPORTER/GROUP/*)"
    )


def acquire(name: str, coordinator: str) -> Place:
    """Acquires the place and finds its board's serial port.

    Raises:
        LabgridError: in labgrid-client's words (unknown place, acquired by someone else, no coordinator).
    """
    place = Place(name, coordinator)
    _client(coordinator, "-p", name, "acquire")
    try:
        place.url = serial_url(_client(coordinator, "-p", name, "show"), name)
    except LabgridError:
        _client(coordinator, "-p", name, "release", check=False)
        raise
    return place
