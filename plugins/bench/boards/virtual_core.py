"""What every command of the virtual board shares: its state, console, clock, boot and faults.

The firmware keeps one state between commands and one console; the command groups
(:mod:`~tinyhil.plugins.bench.boards.virtual_model`, ``virtual_db``, ``virtual_infer``,
``virtual_classify``) are mixins over :class:`BoardCore`, so that a handler reads and sets the
board's state as the firmware's does, and :class:`~tinyhil.plugins.bench.boards.virtual.VirtualBoard`
finds it by the command's name.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
from pathlib import Path

from tinyhil.models.boards import Board
from tinyhil.models.tflm import tflm_version
from tinyhil.plugins.bench.boards.virtual_link import UartLink
from tinyhil.plugins.bench.boards.virtual_memory import HeapBudget, ModelPartition, WindowsPartition
from tinyhil.plugins.bench.boards.virtual_runner import LoadedModel
from tinyhil.plugins.bench.link.eembc_db import DbBuffer
from tinyhil.plugins.bench.link.protocol import DEFAULT_MODEL_ID, PROTOCOL_VERSION
from tinyhil.plugins.bench.link.windows import windows_file

FW_VERSION = "virtual-1"
RX_BUFFER_BYTES = 16384  # the firmware's UART receive buffer (board_esp32.cc): classify's window credit
# the board's code, as the firmware reports its ELF's hash: a change to any of them is another firmware
SOURCES = sorted(Path(__file__).parent.glob("virtual*.py"))


class BoardCore:
    """The board's state and console over a :class:`UartLink`.

    Args:
        board: Board profile (memory limits and timing model).
        flash_file: The model partition's content (the host writes it as esptool would).
        fault: Failure to inject, one of :data:`~tinyhil.plugins.bench.boards.faults.FAULTS`.
        baud: Pace the link at this rate, both ways (0: as fast as the pty goes).
    """

    def __init__(self, board: Board, flash_file: Path, fault: str = "none", baud: int = 0):
        self.board, self.fault = board, fault
        self.link = UartLink(baud)
        self.partition = ModelPartition(Path(flash_file), board.model_partition_bytes)
        self.windows = WindowsPartition(windows_file(flash_file), board.windows_partition_bytes)
        # a locally administered address (02:…), one per process, as a board has its own
        self.mac = "02:00:" + ":".join(f"{(os.getpid() >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))
        self.reset_state()
        self.boots = 0

    def reset_state(self) -> None:
        """The state at boot: no model, no input, nothing held on the heap."""
        self.loaded: LoadedModel | None = None
        self.upload: bytes | None = None  # the last db model
        self.in_place_upload = False  # the loaded model runs from the upload buffer (upload, flash)
        self.input: bytes | None = None
        self.heap = HeapBudget(self.board)
        self.db = DbBuffer()  # EEMBC's db load + hex chunks
        self.last_input = "none"  # none, tinyhil (db input) or eembc (db load): picks infer's form
        self.model_id = DEFAULT_MODEL_ID
        self.arena_bytes = 0  # the loaded model's arena
        self.boot_model = None  # the loaded model is the boot model kept beside the flash file, as kept
        self._boot_ns = time.monotonic_ns()
        self._clock_ahead_us = 0  # how far the simulated clock runs ahead of the wall clock

    def clock_us(self) -> int:
        """Microseconds since boot on the simulated clock: the wall clock, moved on by simulated inferences."""
        return (time.monotonic_ns() - self._boot_ns) // 1000 + self._clock_ahead_us

    def advance_clock_to(self, us: int) -> None:
        """Moves the simulated clock on to ``us`` (never back)."""
        self._clock_ahead_us += max(0, us - self.clock_us())

    # -- console ----------------------------------------------------------------
    def send(self, line: str) -> None:
        # the firmware prints "\n"; ESP-IDF's console turns every "\n" into "\r\n", as here
        self.link.write((line + "\n").replace("\n", "\r\n").encode())

    def ready(self) -> None:
        self.send("m-ready")

    def error(self, text: str) -> None:
        self.send(f"e-[{text}]")

    # -- boot -------------------------------------------------------------------
    def info_lines(self, reason: str = "poweron") -> list[str]:
        b = self.board
        sha = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES)).hexdigest()
        return [
            f"m-info-fw-{FW_VERSION}",
            f"m-info-fw-sha256-{sha}",
            "m-info-idf-none (virtual board)",
            f"m-info-tflm-tflite-micro {tflm_version()} (host)",
            "m-info-esp-nn-0",
            # the kernel library whose verdicts it gives (its arithmetic is the host runtime's)
            f"m-info-kernels-{b.kernels}",
            f"m-info-chip-{b.chip}",
            f"m-info-mac-{self.mac}",
            f"m-info-cpu-mhz-{b.cpu_mhz}",
            # its arena figure is the host runtime's, measured at this machine's pointer width
            f"m-info-pointer-bits-{struct.calcsize('P') * 8}",
            f"m-info-flash-bytes-{b.flash_bytes}",
            "m-info-flash-mode-virtual",
            f"m-info-psram-bytes-{b.psram_bytes}",
            f"m-info-heap-free-{self.heap.free_bytes}",
            f"m-info-heap-largest-{self.heap.largest_block_bytes}",
            f"m-info-reset-reason-{reason}",
            "m-info-marker-gpio-4",
            "m-info-marker-mode-window",
            f"m-info-model-partition-bytes-{self.partition.size_bytes}",
            f"m-info-windows-partition-bytes-{self.windows.size_bytes}",
            f"m-info-rx-buffer-bytes-{RX_BUFFER_BYTES}",
            "m-info-simulated-1",
        ]

    def boot(self, reason: str = "poweron") -> None:
        self.reset_state()
        self.boots += 1
        for line in ["m-boot-tinyhil", f"m-protocol-{PROTOCOL_VERSION}", *self.info_lines(reason)]:
            self.send(line)
        self.load_boot_model()  # m-boot-model-[…] or e-[boot model: …], before EEMBC's lines
        self.send("m-timestamp-mode-performance")
        self.send("m-init-done")
        self.ready()

    def load_boot_model(self) -> None:
        """Loads the model kept for the boot (:mod:`~tinyhil.plugins.bench.boards.virtual_model`)."""

    # -- faults -----------------------------------------------------------------
    def inject_fault(self) -> bool | None:
        """Injects the fault of ``--fault`` into an inference; False when the board rebooted or hangs."""
        if self.fault == "panic-on-infer":
            self.send("Guru Meditation Error: Core  1 panic'ed (LoadProhibited). Exception was unhandled.")
            self.send("Backtrace: 0x400d1234:0x3ffb1230 (simulated)")
            self.send("Rebooting...")
            self.boot(reason="panic")
            return False
        if self.fault == "hang-on-infer":
            return False
        if self.fault == "garbage-on-infer":
            self.link.write(b"\xff\xfe\x00garbage\x13\r\n", paced=False)
        return None
