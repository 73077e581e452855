"""A scripted board on the other end of a link, for the host's clients without a board."""

from __future__ import annotations

from collections.abc import Iterable

from tinyhil.plugins.bench.link.replies import DeviceTimeout


class ScriptedLink:
    """A link whose board says what a script says, then times out like a silent board.

    Args:
        lines: Lines the board sends in this order whatever is written to it, e.g. random
            replies for the reply reader.
        replies: The lines the board answers each command with, keyed by the command without
            its ``%``; a command sent replaces what was left unread. A command the script has no
            reply for is a mistake in the test (``KeyError``).
    """

    def __init__(self, lines: Iterable[str] = (), replies: dict[str, list[str]] | None = None):
        self.pending = list(lines)
        self.replies = replies

    def write(self, data: bytes) -> None:
        if self.replies is not None:
            self.pending = list(self.replies[data.decode().removesuffix("%")])

    def read_line(self, timeout: float) -> str:
        if not self.pending:
            raise DeviceTimeout("no line")
        return self.pending.pop(0)
