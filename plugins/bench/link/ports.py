"""The board's serial port, checked before a bench run: a port that cannot be opened stops the
run at start-up with the port, the ports this machine has, and the fix.

Without the check, pytest-embedded opens the port in its first case's fixtures and the run ends
with pyserial's traceback in an ERROR case. :func:`check_port` opens the port the way the bench
will (pyserial) and closes it again. What it tells apart, on Linux:

* missing: no such device file (``ENOENT``), or a file with no device behind it (``ENXIO``,
  ``ENODEV``: a USB adapter unplugged while its node lingered);
* permission denied (``EACCES``, ``EPERM``): the user is not in the device's group;
* busy: the probe asks for pyserial's exclusive lock (``exclusive=True``: ``flock``), so a
  holder that took that lock is seen (``EWOULDBLOCK``): esptool while it flashes,
  ``idf.py monitor`` (esp-idf-monitor) and a pytest-embedded run with the esp service (which
  opens the port through esptool and keeps it). A holder that set ``TIOCEXCL`` makes the open
  fail with ``EBUSY`` (not for root, whom the kernel lets through). A holder that took no lock
  at all (``screen``, ``cat``, a run with ``--embedded-services=serial`` only) is not seen:
  Linux lets two processes open one tty, and they then steal each other's bytes;
* not a serial port: a file that is no terminal (``ENOTTY``).

Only local device paths are probed: pyserial URLs (``rfc2217://``, ``socket://``: a labgrid place
or a remote board) are reached over the network when the run opens them.
"""

from __future__ import annotations

import errno
import os

MISSING = frozenset({errno.ENOENT, errno.ENXIO, errno.ENODEV})
DENIED = frozenset({errno.EACCES, errno.EPERM})
BUSY = frozenset({errno.EBUSY, errno.EWOULDBLOCK, errno.EAGAIN})
NOT_A_TTY = frozenset({errno.ENOTTY})


class PortError(Exception):
    """A serial port the bench cannot open; the message names the port and the fix."""


def is_local_device(port: str) -> bool:
    """True for a device path (``/dev/ttyUSB0``, ``COM3``); False for a pyserial URL."""
    return "://" not in port


def _errno_of(error: BaseException) -> int | None:
    """The OS error number behind a pyserial error. pyserial gives it for a failed open or lock;
    for a failed configuration it puts only the text in its message, and the number stays on
    the termios error it was raised from."""
    for e in (error, error.__cause__, error.__context__):
        if e is None:
            continue
        number = getattr(e, "errno", None)
        if isinstance(number, int):
            return number
        if e.args and isinstance(e.args[0], int):
            return e.args[0]
    return None


def available_ports() -> list[str]:
    """The serial ports pyserial finds on this machine, with their description when known."""
    from serial.tools.list_ports import comports

    found = []
    for info in sorted(comports(), key=lambda i: i.device):
        described = info.description and info.description not in ("n/a", info.device)
        found.append(f"{info.device} ({info.description})" if described else info.device)
    return found


def _group_of(port: str) -> str:
    """The group that may read and write the device: its own (``dialout`` on Debian and Ubuntu,
    ``uucp`` on Arch), else ``dialout``, the group udev gives USB serial adapters."""
    try:
        import grp

        st = os.stat(port)
        if st.st_mode & 0o060 == 0o060 and st.st_gid != 0:
            return grp.getgrgid(st.st_gid).gr_name
    except (ImportError, OSError, KeyError):
        pass
    return "dialout"


def explain(port: str, error: BaseException, ports: list[str]) -> str:
    """The start-up message for a port that would not open.

    Args:
        port: The port as the run names it.
        error: What opening it raised (pyserial's ``SerialException`` or an ``OSError``).
        ports: The serial ports this machine has (:func:`available_ports`).

    Returns:
        Several lines: what is wrong with the port, the ports there are, what to do.
    """
    number = _errno_of(error)
    listed = "\n".join(f"      {p}" for p in ports) if ports else "      none found"
    existing = f"  Serial ports on this machine:\n{listed}\n"
    if number in MISSING:
        return (
            f"tinyhil: the board's serial port {port} does not exist.\n{existing}"
            "  Check the USB cable (a charge-only cable gives no port) and that the board is powered; "
            "`ls /dev/ttyUSB* /dev/ttyACM*` lists the ports as they appear. Then pass its port: --port PORT"
        )
    if number in DENIED:
        group = _group_of(port)
        return (
            f"tinyhil: permission denied on the board's serial port {port} (it belongs to group {group}).\n"
            f"{existing}"
            f"  Add yourself to the {group} group: sudo usermod -aG {group} $USER, then log out and in "
            "(a group counts from the next login)."
        )
    if number in BUSY:
        return (
            f"tinyhil: the board's serial port {port} is busy: another program holds it "
            "(idf.py monitor, screen, esptool, a second pytest on this board).\n"
            f"{existing}"
            f"  Close that program and run again; `fuser -v {port}` names it."
        )
    if number in NOT_A_TTY:
        return f"tinyhil: {port} is not a serial port ({error}).\n{existing}  Pass the board's port: --port PORT"
    return f"tinyhil: the board's serial port {port} cannot be opened: {error}\n{existing}  Pass the board's port: --port PORT"


def check_port(port: str) -> None:
    """Opens the port as the bench will, with pyserial's exclusive lock, and closes it again.

    Args:
        port: A local device path; URLs are not probed (:func:`is_local_device`).

    Raises:
        PortError: when it does not open; the message says why and what to do (:func:`explain`).
    """
    import serial

    try:
        # exclusive=True: flock on POSIX, so a holder that took the same lock shows as busy
        # (pyserial on Windows opens COM ports exclusively anyway)
        probe = serial.Serial(port, exclusive=True if os.name == "posix" else None)
    except (serial.SerialException, OSError) as e:
        raise PortError(explain(port, e, available_ports())) from None
    probe.close()


def check_ports(port_option: str | None) -> None:
    """:func:`check_port` for each local device in ``--port`` (one, or several separated by commas).

    Raises:
        PortError: for the first port that does not open.
    """
    for port in (p.strip() for p in (port_option or "").split(",")):
        if port and is_local_device(port):
            check_port(port)
