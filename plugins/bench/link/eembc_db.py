"""EEMBC's ``db`` buffer on the board's side: ``db load N``, hex chunks, ``db print``.

The Python twin of the C++ core's ``DbBuffer``, used by the virtual board and checked
against the ``db`` rows of ``firmware/components/tinyhil_core/test/vectors.tsv``. The host
side of the same commands is :class:`tinyhil.plugins.bench.link.eembc.EembcClient`.
"""

from __future__ import annotations

from collections.abc import Callable

from tinyhil.plugins.bench.link.protocol import ProtocolError, parse_decimal


class DbBuffer:
    """EEMBC's byte buffer: ``db load N``, hex chunks ``db <hex>`` until N bytes, ``db print``.

    The Python twin of the C++ core's ``DbBuffer``; the ``e-[…]`` texts are the EEMBC
    reference's, misspellings included, so that logs read as with a reference DUT.
    """

    def __init__(self):
        self.data: bytearray | None = None
        self.received = 0

    @property
    def complete(self) -> bool:
        """Whether the announced number of bytes has arrived."""
        return self.data is not None and self.received == len(self.data)

    def handle(self, args: tuple[str, ...] | list[str], reserve: Callable[[int], None]) -> list[str]:
        """Answers an EEMBC db command.

        Args:
            args: The arguments after ``db``
                (:func:`tinyhil.plugins.bench.link.protocol.is_eembc_db` is true for them).
            reserve: Called with N at ``db load N``; raises :class:`ProtocolError` with the
                reason when N bytes do not fit.

        Returns:
            The reply lines, without the final ``m-ready``.
        """
        if not args:
            return ["e-[Command 'db' requires a subcommand]"]
        if args[0] == "load":
            return self._load(args, reserve)
        if args[0] == "print":
            return self._print(args)
        return self._chunk(args[0])

    def _load(self, args, reserve) -> list[str]:
        if len(args) < 2:
            return ["e-[Command 'db load' requires the # of bytes]"]
        n = parse_decimal(args[1])
        if not n:
            return ["e-[Command 'db load' must be >0 bytes]"]
        self.data, self.received = None, 0
        try:
            reserve(n)
        except ProtocolError as e:
            return [f"e-[{e}]"]
        self.data = bytearray(n)
        return [f"m-[Expecting {n} bytes]"]

    def _chunk(self, digits: str) -> list[str]:
        if self.data is None or self.complete:
            return ["e-[db: no load in progress; send db load <bytes> first]"]
        if len(digits) % 2:
            return ["e-[Insufficent number of hex digits]"]
        for i in range(0, len(digits), 2):
            pair = digits[i : i + 2]
            if not all(ch in "0123456789abcdefABCDEF" for ch in pair):
                return [f"e-[Invalid hex digit '{pair}']"]
            self.data[self.received] = int(pair, 16)
            self.received += 1
            if self.complete:
                return ["m-load-done"]  # digits past the announced size are dropped
        return []

    def _print(self, args) -> list[str]:
        size = len(self.data) if self.data is not None else 0
        count = parse_decimal(args[1]) if len(args) >= 2 else size
        offset = parse_decimal(args[2]) if len(args) >= 3 else 0
        if count is None or offset is None:
            return ["e-[bad arguments for db print: expected db print [<bytes> [<offset>]]]"]
        begin = min(offset, size)
        chunk = bytes(self.data[begin : begin + count]) if self.data is not None else b""
        return ["m-buffer-" + "-".join(f"{b:02x}" for b in chunk[i : i + 8]) for i in range(0, len(chunk), 8)]
