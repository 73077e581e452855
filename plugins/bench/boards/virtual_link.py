"""The virtual board's end of the serial line: a pseudo-terminal paced as a UART.

A UART moves a byte in 10 bit times (start, 8 data, stop), so at ``baud`` a payload takes
what it would on the bench; the board's receive side reads with the firmware's ``db``
timeout, and keeps bytes that a binary read took past its end for the next read.
"""

from __future__ import annotations

import os
import select
import time

from tinyhil.plugins.firmware_tools.config import kconfig_defaults

_CONFIG = kconfig_defaults()
DB_TIMEOUT_S = int(_CONFIG["TINYHIL_DB_TIMEOUT_MS"]) / 1000  # the longest pause inside a payload
CLASSIFY_TIMEOUT_S = int(_CONFIG["TINYHIL_CLASSIFY_TIMEOUT_MS"]) / 1000  # the wait before a classify window


class UartLink:
    """A descriptor pair paced at ``baud``, one clock per direction.

    Args:
        baud: Pace the link at this rate, both ways (0: as fast as the pty goes).
    """

    def __init__(self, baud: int = 0):
        self.baud = baud
        self.fd_in = self.fd_out = -1
        self._line_free: dict[str, float] = {}  # direction -> when its line is idle again
        self._pending = bytearray()

    def attach(self, fd_in: int, fd_out: int) -> None:
        """Reads from ``fd_in`` and writes to ``fd_out`` from now on."""
        self.fd_in, self.fd_out = fd_in, fd_out

    def write(self, data: bytes, paced: bool = True) -> None:
        """Writes ``data``; returns when the line would have sent it, unless ``paced`` is False."""
        os.write(self.fd_out, data)
        if paced:
            self._pace(len(data), "tx")

    def read(self, timeout_s: float | None) -> bytes | None:
        """What arrived within ``timeout_s`` (None: wait for it): b"" when nothing, None when the peer closed."""
        if self._pending:  # bytes a binary read took past its end: the next payload's, already paced
            data, self._pending = bytes(self._pending), bytearray()
            return data
        r, _, _ = select.select([self.fd_in], [], [], timeout_s)
        if not r:
            return b""
        try:
            data = os.read(self.fd_in, 4096)
        except OSError:
            return None
        self._pace(len(data), "rx")  # the bytes arrive at the line's rate, not at once
        return data or None

    def read_exact(self, n: int, first_timeout_s: float = DB_TIMEOUT_S) -> bytes:
        """``n`` bytes, or fewer when none comes within ``first_timeout_s`` or the line then
        pauses for :data:`DB_TIMEOUT_S`."""
        buf = bytearray()
        deadline = time.monotonic() + first_timeout_s
        while len(buf) < n:
            chunk = self.read(max(0.0, deadline - time.monotonic()))
            if not chunk:
                break
            buf += chunk
            deadline = time.monotonic() + DB_TIMEOUT_S
        self._pending = buf[n:]  # streamed windows arrive back to back: keep what belongs to the next
        return bytes(buf[:n])

    def _pace(self, n_bytes: int, direction: str) -> None:
        """Waits until the line would have moved ``n_bytes`` more. The clock is absolute, so a
        sleep that overshoots is made up by the next one."""
        if not self.baud:
            return
        now = time.monotonic()
        done = max(self._line_free.get(direction, 0.0), now) + n_bytes * 10 / self.baud
        self._line_free[direction] = done
        if done > now:
            time.sleep(done - now)
