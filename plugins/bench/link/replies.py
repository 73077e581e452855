"""Reading a tinyhil firmware's replies off a link, and the failures a reply can end in.

A link is anything with ``write(bytes)`` and ``read_line(timeout) -> str``. A reply is the
lines a command gets up to ``m-ready``; :class:`ReplyReader` sorts them into protocol
messages and log lines, reads boot banners and gets the line back to a known state after a
reboot. Device failures become exceptions that the ESP32 target maps to verdicts:
:class:`DeviceRebooted` (panic, watchdog, reset) and :class:`DeviceGarbage` are
``device_error``, :class:`DeviceTimeout` is ``timeout``, and :class:`DeviceErrorResponse`
carries an ``e-[…]`` answer with the log lines before it. The commands themselves are
:class:`tinyhil.plugins.bench.link.device.DeviceClient`'s.
"""

from __future__ import annotations

import time
from typing import Protocol

from tinyhil.plugins.bench.link.protocol import BOOT, ERROR_RE, READY, Response, format_command, parse_info


class Link(Protocol):
    def write(self, data: bytes) -> None: ...

    def read_line(self, timeout: float) -> str: ...


class DeviceError(Exception):
    """Base of device failures; ``log`` holds the lines the device printed."""

    def __init__(self, message: str, log: list[str] | None = None):
        super().__init__(message)
        self.log = log or []


class DeviceTimeout(DeviceError):
    pass


class DeviceRebooted(DeviceError):
    """The device printed a boot banner mid-command; ``info`` is the new banner's."""

    def __init__(self, message: str, log: list[str], info: dict[str, str]):
        super().__init__(message, log)
        self.info = info


class DeviceGarbage(DeviceError):
    pass


class DeviceGone(DeviceError):
    """The board's serial port closed or vanished under the link: the board died, was unplugged
    or re-enumerated. The link must be reopened (or the board restarted) before anything else."""


class DeviceErrorResponse(DeviceError):
    """An ``e-[…]`` answer: ``error`` is the text inside the brackets."""

    def __init__(self, error: str, log: list[str]):
        super().__init__(error, log)
        self.error = error


def is_printable(line: str) -> bool:
    """Whether a line is text a device may log (tabs allowed), not bytes of a broken link."""
    return all(ch.isprintable() or ch in "\t" for ch in line)


class ReplyReader:
    """Sends a command and reads its reply, the boot banner and the board's identity.

    Args:
        link: The serial link.
        timeout_s: Time allowed for one line to arrive.
    """

    def __init__(self, link: Link, timeout_s: float = 10.0):
        self.link = link
        self.timeout_s = timeout_s
        self.info: dict[str, str] = {}
        self._unread: str | None = None  # a line read ahead, handed to the next _read_response

    def _read_response(self, what: str, timeout: float | None = None) -> Response:
        messages: list[str] = []
        log: list[str] = []
        error = None
        while True:
            if self._unread is not None:
                line, self._unread = self._unread, None
            else:
                line = self.link.read_line(timeout or self.timeout_s).strip()
            if not line:
                continue
            if line == BOOT:
                info = self._read_banner(first=line)
                reason = info.get("reset-reason", "unknown")
                raise DeviceRebooted(f"device rebooted during '{what}' (reset reason: {reason})", log, info)
            if line == READY:
                if error is not None:
                    raise DeviceErrorResponse(error, log)
                return Response(messages, error, log)
            m = ERROR_RE.match(line)
            if m:
                error = m.group(1)
            elif line.startswith("m-"):
                messages.append(line)
            elif not is_printable(line):
                raise DeviceGarbage(f"unreadable bytes from the device during '{what}': {line[:60]!r}", log)
            else:
                log.append(line)

    def _read_banner(self, first: str | None = None, timeout: float | None = None) -> dict[str, str]:
        lines = [first] if first else []
        while not lines or lines[-1] != READY:
            line = self.link.read_line(timeout or self.timeout_s).strip()
            if line == BOOT:
                lines = [line]
            elif lines or line == BOOT:
                lines.append(line)
        self.info = parse_info(lines)
        return self.info

    def _first_line(self, what: str) -> str:
        """The first protocol line after a command; its error (with m-ready consumed) or reboot raised."""
        while True:
            line = self.link.read_line(self.timeout_s).strip()
            if line.startswith("m-") and line != READY:
                return line
            if ERROR_RE.match(line) or line == READY:
                self._unread = line
                self._read_response(what)
                raise DeviceGarbage(f"{what}: m-ready without an answer", [])
            if line == BOOT:
                raise DeviceRebooted(f"device rebooted during '{what}'", [], self._read_banner(first=line))

    def wait_boot(self, timeout: float) -> dict[str, str]:
        """Reads a boot banner (after a reset); returns its ``m-info`` fields."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.link.read_line(max(0.1, deadline - time.monotonic())).strip()
            if line == BOOT:
                return self._read_banner(first=line)

    def command(self, name: str, *args, timeout: float | None = None) -> Response:
        self.link.write(format_command(name, *args))
        return self._read_response(" ".join([name, *map(str, args)]), timeout)

    def sync(self) -> dict[str, str]:
        """Asks for ``info%`` and returns the board's identity and memory figures."""
        resp = self.command("info")
        self.info = parse_info(resp.messages)
        return self.info

    def resync(self, timeout: float | None = None) -> None:
        """Back to a known state after a reboot in the middle of a stream: the windows sent ahead
        reach the new firmware as junk commands. Ends any partial command (``%``), asks for
        ``version%`` and reads, discarding the junk's error replies, until its answer. A reboot
        seen meanwhile may have swallowed the question or not: it is asked again, and whatever
        else arrives before the line falls quiet is discarded, so no answer is left for the next
        command."""
        self._unread = None
        self.link.write(b"%" + format_command("version"))
        answered = rebooted = False
        deadline = time.monotonic() + (timeout or self.timeout_s)
        while True:
            line = self.link.read_line(max(0.1, deadline - time.monotonic())).strip()
            # version%'s own line: a boot banner also says m-protocol-…, and one that was still
            # arriving when the link opened would pass for the answer (and leave it for the next command)
            if line.startswith("m-fw-"):
                answered = True
            elif line == READY and answered:
                break
            elif line == BOOT:
                self._read_banner(first=line)
                self.link.write(format_command("version"))
                answered, rebooted = False, True
        while rebooted:
            try:
                self.link.read_line(0.5)
            except DeviceTimeout:
                return
