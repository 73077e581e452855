"""The virtual board's ``classify`` command: test windows streamed back to back, a class for each."""

from __future__ import annotations

import zlib

import numpy as np

from tinyhil.plugins.bench.boards.faults import WRONG_CLASS_MODULUS
from tinyhil.plugins.bench.boards.virtual_core import BoardCore


class ClassifyCommand(BoardCore):
    """``classify <count> <bytes> <crc32>``: the host sends the windows without waiting (up to the
    receive buffer, :data:`~tinyhil.plugins.bench.boards.virtual_core.RX_BUFFER_BYTES`), and each is
    answered with its class as soon as it is in; the CRC covers them all."""

    def classify_window(self, window: bytes) -> int:
        """The class of one window; another class for 2 % of windows under ``wrong-class-2pct``."""
        scores = self.loaded.invoke(window)
        cls = int(np.argmax(scores))
        if self.fault == "wrong-class-2pct" and zlib.crc32(window) % WRONG_CLASS_MODULUS == 0:
            return (cls + 1) % max(2, np.size(scores))
        return cls

    def cmd_classify(self, count, length, crc):
        n, size, want = int(count), int(length), int(crc, 16)
        if n <= 0 or size < 0:
            raise ValueError(f"expected classify <count > 0> <bytes> <crc32 hex>, got {count} {length} {crc}")
        if self.loaded is None:
            self.error("classify: no model")
            return None
        need = self.loaded.input_bytes
        if size != need:
            self.error(f"classify: windows of {size} bytes, the model takes {need}")
            return None
        self.send(f"m-classify-ready-{n}")
        got_crc = 0
        for i in range(n):
            window = self.link.read_exact(size)
            if len(window) < size:
                self.error(f"classify: timeout in window {i} after {len(window)} of {size} bytes")
                return None
            got_crc = zlib.crc32(window, got_crc)
            self.input = window
            if i == 0 and self.inject_fault() is False:
                return False
            self.send(f"m-class-{i}-{self.classify_window(window)}")
        self.last_input = "tinyhil"
        if got_crc != want:
            self.error(f"classify: crc mismatch: got {got_crc:08x} expected {want:08x}")
            return None
        self.send(f"m-classify-done-{n}-{got_crc:08x}")
        return None
