"""A pyserial port as a link (``write(bytes)``, ``read_line(timeout)``), outside pytest-embedded.

The bench's own link is :class:`tinyhil.plugins.bench.link.device.DutLink`.
"""

from __future__ import annotations

import time

from tinyhil.plugins.bench.link.replies import DeviceTimeout


class SerialLink:
    """A pyserial port as a link: for running the EEMBC client by hand
    (``python -m tinyhil.plugins.bench.link.eembc``), and the tests' plain link to a virtual
    board (a stand-in for pytest-embedded's DUT)."""

    def __init__(self, port: str, baud: int = 115_200):
        import serial

        self._port = serial.serial_for_url(port, baudrate=baud, timeout=0.05)
        self._buffer = b""

    def write(self, data: bytes) -> None:
        """Writes the bytes as they are."""
        self._port.write(data)

    def read_line(self, timeout: float) -> str:
        """One line without its ending.

        Raises:
            DeviceTimeout: When no whole line arrives within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if time.monotonic() > deadline:
                raise DeviceTimeout(f"no line within {timeout:g} s")
            # what is there, or the next byte: a read of a fixed size would wait out its time-out
            self._buffer += self._port.read(max(1, self._port.in_waiting))
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def close(self) -> None:
        self._port.close()
