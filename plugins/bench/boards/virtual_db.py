"""The virtual board's ``db`` command, in its two forms.

tinyhil's ``db <input|model> <len> <crc32>`` takes a binary payload (an input, or a model to
load with ``model upload``); EEMBC's ``db load N`` and hex chunks fill the buffer that
EEMBC's ``infer`` reads (:class:`~tinyhil.plugins.bench.link.eembc_db.DbBuffer`).
:func:`~tinyhil.plugins.bench.link.protocol.is_eembc_db` tells them apart.
"""

from __future__ import annotations

from tinyhil.plugins.bench.boards.virtual_core import BoardCore
from tinyhil.plugins.bench.link.protocol import crc32, is_eembc_db

KINDS = ("input", "model")


class DbCommands(BoardCore):
    """``db``: tinyhil's binary transfers and EEMBC's buffer, both held on the board's heap."""

    def cmd_db(self, *args):
        if is_eembc_db(args):
            self._db_eembc(args)
        else:
            self._db_transfer(args)

    def _db_eembc(self, args: tuple[str, ...]) -> None:
        if args and args[0] == "load":
            self.last_input = "eembc"
        for line in self.db.handle(args, self.heap.reserve_db_load):
            self.send(line)

    def _db_transfer(self, args: tuple[str, ...]) -> None:
        """Reads the payload after ``m-db-ready``, checks its CRC and keeps it as the input or the upload."""
        if len(args) != 3:
            raise TypeError("db takes <input|model> <len> <crc32>")
        kind, length, crc = args
        n, want = int(length), int(crc, 16)
        if n < 0 or kind not in KINDS:
            raise ValueError(f"db takes <input|model> <len >= 0> <crc32>, got {' '.join(args)}")
        limit = self.board.largest_heap_block_bytes
        if n > limit:
            self.error(f"db: {n} bytes do not fit: buffer holds {limit}")
            return
        self.send(f"m-db-ready-{n}")
        data = self.link.read_exact(n)
        if len(data) < n:
            self.error(f"db: timeout after {len(data)} of {n} bytes")
            return
        got = crc32(data)
        if got != want:
            self.error(f"db: crc mismatch: got {got:08x} expected {want:08x}")
            return
        if kind == "input":
            self.input = data
            self.last_input = "tinyhil"
        else:
            if self.loaded is not None and self.in_place_upload:
                # as the firmware: a model run in place from the previous upload goes with it
                self._unload()
                self.send("m-model-unloaded")
            self.upload = data
            self.heap.hold("db model", n)
        self.send(f"m-db-ok-{n}-{got:08x}")
