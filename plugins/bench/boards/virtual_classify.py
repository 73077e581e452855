"""The virtual board's ``classify`` command: test windows streamed back to back, a class for each."""

from __future__ import annotations

import zlib

import numpy as np

from tinyhil.models.tflm import quantize
from tinyhil.plugins.bench.boards.faults import WRONG_CLASS_MODULUS
from tinyhil.plugins.bench.boards.virtual_core import BoardCore
from tinyhil.plugins.bench.boards.virtual_link import CLASSIFY_TIMEOUT_S
from tinyhil.plugins.bench.boards.virtual_memory import DoesNotFit
from tinyhil.plugins.bench.link.windows import HEADER, parse_header

CONVERTIBLE = ("float32", "int8", "uint8", "int16")  # the input types stored float windows convert to


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

    def cmd_windows(self, *args):
        """``windows``: what the windows partition holds, as the firmware reads its header."""
        if args:
            raise ValueError("expected windows")
        try:
            stored = parse_header(self.windows.read(0, HEADER.size))
        except DoesNotFit as e:
            self.error(str(e))
            return None
        if stored.count * stored.values * 4 > self.windows.size_bytes - HEADER.size:
            stored = parse_header(b"")  # a header promising more than the partition holds
        self.send(f"m-windows-count-{stored.count}")
        self.send(f"m-windows-values-{stored.values}")
        self.send(f"m-windows-sha256-{stored.sha256 or 'none'}")
        return None

    def cmd_classify(self, *args):
        if len(args) == 4 and args[0] == "windows":
            return self.classify_stored(*args[1:])
        if len(args) != 3:
            raise ValueError("expected classify <count > 0> <bytes> <crc32 hex>")
        count, length, crc = args
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

        def received(i: int) -> bytes | None:
            window = self.link.read_exact(size, CLASSIFY_TIMEOUT_S)  # the host sends on the answers
            if len(window) < size:
                self.error(f"classify: timeout in window {i} after {len(window)} of {size} bytes")
                return None
            return window

        return self.answer_windows(n, want, received)

    def answer_windows(self, n: int, want: int, window_at) -> bool | None:
        """``m-classify-ready``, then each window's class as soon as ``window_at(i)`` gives it (None
        ends the command: it said why), then the CRC of them all against ``want``: what both forms
        of ``classify`` answer. False when an injected fault took the board down."""
        self.send(f"m-classify-ready-{n}")
        got_crc = 0
        for i in range(n):
            window = window_at(i)
            if window is None:
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

    def classify_stored(self, first, count, crc):
        """``classify windows <first> <count> <crc32>``: stored windows, converted as the firmware does."""
        usage = "expected classify windows <first> <count > 0> <crc32 hex>"
        if not (first.isdigit() and count.isdigit() and all(c in "0123456789abcdefABCDEF" for c in crc) and crc):
            raise ValueError(usage)  # digits only, as the firmware's ParseUnsigned
        start, n, want = int(first), int(count), int(crc, 16)
        if n == 0 or max(start, n, want) > 0xFFFFFFFF:
            raise ValueError(usage)
        if self.loaded is None:
            self.error("classify: no model")
            return None
        try:
            stored = parse_header(self.windows.read(0, HEADER.size))
        except DoesNotFit as e:
            self.error(str(e))
            return None
        if start >= stored.count or n > stored.count - start:
            self.error(f"classify: windows {start}..{start + n - 1} are not stored ({stored.count} stored)")
            return None
        det = self.loaded.interpreter.get_input_details(0)
        elements = int(np.prod(det["shape"]))
        if elements != stored.values:
            self.error(f"classify: stored windows hold {stored.values} values, the model takes {elements}")
            return None
        if self.loaded.qin.dtype not in CONVERTIBLE:
            self.error(
                "classify: stored windows are float32; the model's input type is none of float32, int8, uint8, int16"
            )
            return None
        size = stored.values * 4

        def converted(i: int) -> bytes:
            raw = self.windows.read(HEADER.size + (start + i) * size, size)
            return quantize(np.frombuffer(raw, "<f4"), self.loaded.qin).tobytes()

        return self.answer_windows(n, want, converted)
