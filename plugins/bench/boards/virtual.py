"""The virtual ESP32: speaks the firmware's protocol on a pseudo-terminal.

It runs the model with the host TFLM runtime under the board profile's memory limits
(model partition, heap, largest block), so the hil code path (pytest-embedded's serial
service, the device client, verdict mapping) runs end to end without hardware. Its
cycle counts come from a timing model (``simulation`` in the board profile) and it
says ``m-info-simulated-1``: every figure it gives is simulated, the microseconds of
EEMBC's ``m-lap-us`` too (a clock that the timing model moves on).

Like the firmware it answers EEMBC / MLPerf Tiny's DUT commands beside tinyhil's own
(``firmware/PROTOCOL.md``, "EEMBC / MLPerf Tiny compatibility"), so MLPerf Tiny's runner
can drive it.

Run by hand: ``python -m tinyhil.plugins.bench.boards.virtual --board esp32-wroom-32 --flash-file /tmp/flash.bin``;
it prints the pty path on its first line. ``--fault`` injects a failure for tests.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import select
import struct
import sys
import time
import tty
import zlib
from pathlib import Path

import numpy as np

from tinyhil.models.boards import Board, get_board
from tinyhil.models.host_eval import evaluate_isolated
from tinyhil.models.inspection import ModelInfo, inspect_tflite
from tinyhil.models.lifeline import die_with_parent_from_env
from tinyhil.models.tflm import io_quantization, load, tflm_version
from tinyhil.plugins.bench.boards.faults import FAULTS
from tinyhil.plugins.bench.link.protocol import (
    DEFAULT_MODEL_ID,
    MAX_LINE,
    PROTOCOL_VERSION,
    DbBuffer,
    InferRequest,
    LineAssembler,
    ProtocolError,
    crc32,
    format_dequantized_results,
    format_results,
    is_eembc_db,
    parse_command,
    resolve_infer,
    valid_model_id,
)
from tinyhil.plugins.firmware_tools.commands import firmware_commands
from tinyhil.plugins.firmware_tools.ops import missing_ops, registration_message, wrong_kernel

FW_VERSION = "virtual-1"
ARENA_SLACK = 64  # model_runner.cc's kArenaSlack: what arena auto leaves of the largest block
RX_BUFFER_BYTES = 16384  # the firmware's UART receive buffer (board_esp32.cc): classify's window credit
DB_TIMEOUT_S = 2.0
COMMANDS = [name for name, _ in firmware_commands()]  # the firmware's own table


class VirtualBoard:
    """Protocol state machine over a file descriptor pair.

    Args:
        board: Board profile (memory limits and timing model).
        flash_file: The model partition's content (the host writes it as esptool would).
        fault: Failure to inject, one of :data:`FAULTS`.
        baud: Pace the link at this rate, both ways (0: as fast as the pty goes).
    """

    def __init__(self, board: Board, flash_file: Path, fault: str = "none", baud: int = 0):
        self.baud = baud
        self._line_free: dict[str, float] = {}  # direction -> when its line is idle again
        # a locally administered address (02:…), one per process, as a board has its own
        self.mac = "02:00:" + ":".join(f"{(os.getpid() >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))
        self.board, self.flash_file, self.fault = board, Path(flash_file), fault
        self.fd_in = self.fd_out = -1
        self._pending = bytearray()
        self._reset_state()
        self.boots = 0

    def _reset_state(self) -> None:
        self.model: bytes | None = None
        self.interp = None
        self.qout = None  # the output's quantization, for EEMBC's dequantised results
        self.upload: bytes | None = None
        self.input: bytes | None = None
        self.heap_used = 0
        # buffers the firmware keeps on its heap across model loads: EEMBC's db load, the last db model
        self.held: dict[str, int] = {"db load": 0, "db model": 0}
        self.op_cycles: list[tuple[str, int]] = []
        self.db = DbBuffer()  # EEMBC's db load + hex chunks
        self.last_input = "none"  # none, tinyhil (db input) or eembc (db load): picks infer's form
        self.model_id = DEFAULT_MODEL_ID
        self._boot_ns = time.monotonic_ns()
        self._clock_ahead_us = 0  # how far the simulated clock runs ahead of the wall clock

    def clock_us(self) -> int:
        """Microseconds since boot on the simulated clock: the wall clock, moved on by simulated inferences."""
        return (time.monotonic_ns() - self._boot_ns) // 1000 + self._clock_ahead_us

    # -- output -----------------------------------------------------------------
    def send(self, line: str) -> None:
        # the firmware prints "\n"; ESP-IDF's console turns every "\n" into "\r\n", as here
        data = (line + "\n").replace("\n", "\r\n").encode()
        os.write(self.fd_out, data)
        self._pace(len(data), "tx")

    def _pace(self, n_bytes: int, direction: str) -> None:
        """A UART at ``baud`` moves a byte in 10 bit times (start, 8 data, stop): wait until
        the line, one clock per direction, would have moved ``n_bytes`` more. The clock is
        absolute, so a sleep that overshoots is made up by the next one."""
        if not self.baud:
            return
        now = time.monotonic()
        done = max(self._line_free.get(direction, 0.0), now) + n_bytes * 10 / self.baud
        self._line_free[direction] = done
        if done > now:
            time.sleep(done - now)

    def ready(self) -> None:
        self.send("m-ready")

    def error(self, text: str) -> None:
        self.send(f"e-[{text}]")

    # -- boot -------------------------------------------------------------------
    def info_lines(self, reason: str = "poweron") -> list[str]:
        b = self.board
        sha = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
        free = b.internal_heap_bytes - self.heap_used
        return [
            f"m-info-fw-{FW_VERSION}",
            f"m-info-fw-sha256-{sha}",
            "m-info-idf-none (virtual board)",
            f"m-info-tflm-tflite-micro {tflm_version()} (host)",
            "m-info-esp-nn-0",
            f"m-info-chip-{b.chip}",
            f"m-info-mac-{self.mac}",
            f"m-info-cpu-mhz-{b.cpu_mhz}",
            # its arena figure is the host runtime's, measured at this machine's pointer width
            f"m-info-pointer-bits-{struct.calcsize('P') * 8}",
            f"m-info-flash-bytes-{b.flash_bytes}",
            "m-info-flash-mode-virtual",
            "m-info-psram-bytes-0",
            f"m-info-heap-free-{free}",
            f"m-info-heap-largest-{min(b.largest_heap_block_bytes, free)}",
            f"m-info-reset-reason-{reason}",
            "m-info-marker-gpio-4",
            "m-info-marker-mode-window",
            f"m-info-model-partition-bytes-{b.model_partition_bytes}",
            f"m-info-rx-buffer-bytes-{RX_BUFFER_BYTES}",
            "m-info-simulated-1",
        ]

    def boot(self, reason: str = "poweron") -> None:
        self._reset_state()
        self.boots += 1
        for line in ["m-boot-tinyhil", f"m-protocol-{PROTOCOL_VERSION}", *self.info_lines(reason)]:
            self.send(line)
        self.send("m-timestamp-mode-performance")
        self.send("m-init-done")
        self.ready()

    # -- input loop ------------------------------------------------------------
    def serve(self, fd_in: int, fd_out: int) -> None:
        """Serves commands until the peer closes the descriptor."""
        self.fd_in, self.fd_out = fd_in, fd_out
        self.boot()
        asm = LineAssembler()
        while True:
            data = self._read(None)
            if data is None:
                return
            for ch in data.decode("latin-1"):
                event = asm.feed(ch)
                if event is None:
                    continue
                kind, text = event
                if kind == "too_long":
                    self.error(f"line too long (more than {MAX_LINE} characters)")
                    self.ready()
                else:
                    self.handle(text)

    def _read(self, timeout: float | None) -> bytes | None:
        if self._pending:  # bytes a binary read took past its end: the next payload's, already paced
            data, self._pending = bytes(self._pending), bytearray()
            return data
        r, _, _ = select.select([self.fd_in], [], [], timeout)
        if not r:
            return b""
        try:
            data = os.read(self.fd_in, 4096)
        except OSError:
            return None
        self._pace(len(data), "rx")  # the bytes arrive at the line's rate, not at once
        return data or None

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        deadline = time.monotonic() + DB_TIMEOUT_S
        while len(buf) < n:
            chunk = self._read(max(0.0, deadline - time.monotonic()))
            if not chunk:
                break
            buf += chunk
            deadline = time.monotonic() + DB_TIMEOUT_S
        self._pending = buf[n:]  # streamed windows arrive back to back: keep what belongs to the next
        return bytes(buf[:n])

    # -- commands ---------------------------------------------------------------
    def handle(self, text: str) -> None:
        try:
            cmd = parse_command(text)
        except ProtocolError as e:
            self.error(str(e))
            self.ready()
            return
        handler = getattr(self, f"cmd_{cmd.name}", None) if cmd.name in COMMANDS else None
        if handler is None:
            self.error(f"Unknown command: {cmd.name}")  # EEMBC's text
            self.ready()
            return
        try:
            if handler(*cmd.args) is False:
                return  # the handler rebooted or hung: no status line
        except TypeError:
            self.error(f"bad arguments for {cmd.name}: {' '.join(cmd.args) or 'none'}")
        except ValueError as e:
            self.error(f"bad arguments for {cmd.name}: {e}")
        self.ready()

    def cmd_name(self):
        self.send(f"m-name-dut-[tinyhil-{self.board.chip}]")

    def cmd_version(self):
        self.send(f"m-protocol-{PROTOCOL_VERSION}")
        self.send(f"m-fw-{FW_VERSION}")

    def cmd_info(self):
        for line in self.info_lines():
            self.send(line)

    def cmd_help(self):
        for c in COMMANDS:
            self.send(f"m-help-{c}")

    def cmd_db(self, *args):
        if is_eembc_db(args):
            if args and args[0] == "load":
                self.last_input = "eembc"
            for line in self.db.handle(args, self._reserve):
                self.send(line)
            return
        if len(args) != 3:
            raise TypeError("db takes <input|model> <len> <crc32>")
        kind, length, crc = args
        n, want = int(length), int(crc, 16)
        if n < 0 or kind not in ("input", "model"):
            raise ValueError(f"db takes <input|model> <len >= 0> <crc32>, got {' '.join(args)}")
        limit = self.board.largest_heap_block_bytes
        if n > limit:
            self.error(f"db: {n} bytes do not fit: buffer holds {limit}")
            return
        self.send(f"m-db-ready-{n}")
        data = self._read_exact(n)
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
            self.upload = data
            self._hold("db model", n)
        self.send(f"m-db-ok-{n}-{got:08x}")

    def _hold(self, what: str, n: int) -> None:
        """The firmware frees the previous buffer of this kind and keeps the new one on its heap."""
        self.heap_used += n - self.held[what]
        self.held[what] = n

    def _reserve(self, n: int) -> None:
        self._hold("db load", 0)
        largest = min(self.board.largest_heap_block_bytes, self.board.internal_heap_bytes - self.heap_used)
        if n > largest:
            raise ProtocolError(f"db load: {n} bytes do not fit: largest free block {largest}")
        self._hold("db load", n)

    def cmd_model(self, source, length, crc, arena, place):
        n, want = int(length), int(crc, 16)
        if n <= 0:
            raise ValueError(f"length must be > 0, got {n}")
        if arena != "auto" and int(arena) <= 0:
            raise ValueError(f"arena must be auto or > 0 bytes, got {arena}")
        b = self.board
        self.model = self.interp = self.input = self.qout = None  # as the firmware: a new model needs a new input
        self.heap_used = sum(self.held.values())  # the previous model's copy and arena are freed
        self.model_id = DEFAULT_MODEL_ID  # a new model is a new case: not the previous case's id
        if source == "partition":
            if n > b.model_partition_bytes:
                self.error(f"model: {n} bytes > partition {b.model_partition_bytes}")
                return
            data = self.flash_file.read_bytes()[:n] if self.flash_file.exists() else b""
        elif source == "upload":
            data = (self.upload or b"")[:n]
        else:
            raise ValueError(f"source must be partition or upload, got {source}")
        if len(data) < n or crc32(data) != want:
            self.error(f"model: crc mismatch: got {crc32(data):08x} expected {want:08x}")
            return
        if place not in ("flash", "ram"):
            raise ValueError(f"place must be flash or ram, got {place}")
        free, largest = b.internal_heap_bytes, b.largest_heap_block_bytes
        if place == "ram":
            if n > min(largest, free):
                self.error(
                    f"ram: cannot allocate {n} bytes for the model copy; largest free block {min(largest, free)}"
                )
                return
            self.heap_used += n
            free -= n
            largest = min(largest, free)
        # auto: as the firmware (model_runner.cc), the largest block less its 64 B of allocator slack, 16 B aligned
        arena_bytes = max(0, largest - ARENA_SLACK) & ~15 if arena == "auto" else int(arena)
        if arena_bytes > largest:
            self.error(f"arena: cannot allocate {arena_bytes} bytes; largest free block {largest}")
            return
        # tflite-micro's Python runtime crashes on some inputs the firmware refuses (bytes that
        # are not a flatbuffer; for some models, arenas just below the minimum): those are
        # judged in a child process first, so that no command can kill the board.
        info = _parsed(data)
        if info is None:  # the firmware runs the flatbuffers verifier here
            self.error("tflm: not a valid TFLite flatbuffer")
            return
        ops = info.ops
        missing = missing_ops([o.op for o in ops])
        if missing:  # host TFLM would load it; the firmware's resolver lacks the op
            self.send(registration_message(missing[0]) + "\r")
            self.error("tflm: AllocateTensors failed")
            return
        wrong = wrong_kernel(ops)
        if wrong:  # the firmware refuses a kernel known to compute something else
            self.error(f"tflm: {wrong}")
            return
        ev = evaluate_isolated(data, None)
        if ev.crash:
            self.error("tflm: not a valid TFLite flatbuffer")
            return
        used = ev.arena.min_arena_bytes
        if used is not None and arena_bytes < used:
            self.send(f"Arena size is too small for all buffers. Needed {used} but only {arena_bytes} was available.\r")
            self.error("tflm: AllocateTensors failed")
            return
        res = load(data, arena_bytes)
        if not res.ok:
            for line in (res.tflm_message or "").splitlines():
                self.send(line + "\r")  # MicroPrintf ends its lines in \r\n: the console makes it \r\r\n
            self.error("tflm: AllocateTensors failed")
            return
        self.heap_used += arena_bytes
        self.model, self.interp = data, res.interpreter
        qin, qout = io_quantization(self.interp)
        self.qout = qout
        in_det, out_det = self.interp.get_input_details(0), self.interp.get_output_details(0)
        in_bytes = int(np.prod(in_det["shape"])) * np.dtype(in_det["dtype"]).itemsize
        self.send(f"m-model-bytes-{n}")
        self.send(f"m-arena-bytes-{arena_bytes}")
        self.send(f"m-arena-used-bytes-{used}")
        self.send(f"m-input-[{qin.dtype},{in_bytes},{qin.scale:.9g},{qin.zero_point}]")
        self.send(f"m-output-[{qout.dtype},{int(np.prod(out_det['shape']))},{qout.scale:.9g},{qout.zero_point}]")
        self.send(f"m-heap-free-{b.internal_heap_bytes - self.heap_used}")
        # as info% and the firmware host build count it: one block is at most the profile's largest
        self.send(f"m-heap-largest-{min(b.largest_heap_block_bytes, b.internal_heap_bytes - self.heap_used)}")
        self._timing_model(info)

    def _timing_model(self, info: ModelInfo) -> None:
        sim = self.board.simulation
        per_mac = sim.get("cycles_per_mac", {})
        self.op_cycles = [
            (op.op, int(sim.get("cycles_per_op", 0) + op.macs * per_mac.get(op.weight_dtype or op.input_dtype, 8.0)))
            for op in info.ops
        ]

    def _invoke(self) -> np.ndarray:
        det = self.interp.get_input_details(0)
        x = np.frombuffer(self.input, dtype=det["dtype"]).reshape(det["shape"])
        self.interp.reset()
        self.interp.set_input(x, 0)
        self.interp.invoke()
        return np.array(self.interp.get_output(0)).reshape(-1)

    def cmd_infer(self, *args):
        try:
            request = resolve_infer(args, self.last_input)
        except ProtocolError as e:
            self.error(str(e))
            return None
        if self.interp is None:
            self.error("infer: no model")
            return None
        if request.form == "eembc":
            return self._infer_eembc(request)
        if self.input is None:
            self.error("infer: no input")
            return None
        return self._infer_tinyhil(request.runs, request.warmup)

    def _fault(self) -> bool | None:
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
            os.write(self.fd_out, b"\xff\xfe\x00garbage\x13\r\n")
        return None

    def _infer_tinyhil(self, n: int, w: int) -> bool | None:
        if self._fault() is False:
            return False
        for _ in range(w):
            self._invoke()
        total = sum(c for _, c in self.op_cycles)
        for i in range(n):
            out = self._invoke()
            self.send(f"m-lap-cycles-{i}-{total}")
        self.send(f"m-cpu-mhz-{self.board.cpu_mhz}")
        self.send(format_results(out, str(out.dtype)))
        return None

    def _infer_eembc(self, request: InferRequest) -> bool | None:
        """EEMBC's infer: the db buffer becomes the input, W warm-ups, N runs between two m-lap-us."""
        if self.last_input == "eembc":
            if not self.db.complete:
                size = len(self.db.data) if self.db.data is not None else 0
                self.error(f"infer: db load incomplete: {self.db.received} of {size} bytes")
                return None
            det = self.interp.get_input_details(0)
            want = int(np.prod(det["shape"])) * np.dtype(det["dtype"]).itemsize
            if len(self.db.data) != want:
                self.error(f"db: input is {len(self.db.data)} bytes, the model takes {want}")
                return None
            self.input = bytes(self.db.data)
        elif self.input is None:
            self.error("infer: no input")
            return None
        if self._fault() is False:
            return False
        self.send(f"m-warmup-start-{request.warmup}")
        for _ in range(request.warmup):
            self._invoke()
        self.send("m-warmup-done")
        self.send(f"m-infer-start-{request.runs}")
        start = self.clock_us()
        for _ in range(request.runs):
            out = self._invoke()
        # the window lasts what the timing model says, whatever the host's TFLM took
        end = start + round(request.runs * sum(c for _, c in self.op_cycles) / self.board.cpu_mhz)
        self._clock_ahead_us += max(0, end - self.clock_us())
        self.send(f"m-lap-us-{start}")
        self.send(f"m-lap-us-{end}")
        self.send("m-infer-done")
        self.send(self._dequantized(out))
        return None

    def _dequantized(self, out: np.ndarray) -> str:
        if out.dtype.kind == "f" or self.qout is None:
            return format_results(out, "float32")
        return format_dequantized_results(out, self.qout.scale, self.qout.zero_point)

    def cmd_classify(self, count, length, crc):
        """Windows streamed back to back, each answered with its class as soon as it is in."""
        n, size, want = int(count), int(length), int(crc, 16)
        if n <= 0 or size < 0:
            raise ValueError(f"expected classify <count > 0> <bytes> <crc32 hex>, got {count} {length} {crc}")
        if self.interp is None:
            self.error("classify: no model")
            return None
        det = self.interp.get_input_details(0)
        need = int(np.prod(det["shape"])) * np.dtype(det["dtype"]).itemsize
        if size != need:
            self.error(f"classify: windows of {size} bytes, the model takes {need}")
            return None
        self.send(f"m-classify-ready-{n}")
        got_crc = 0
        for i in range(n):
            window = self._read_exact(size)
            if len(window) < size:
                self.error(f"classify: timeout in window {i} after {len(window)} of {size} bytes")
                return None
            got_crc = zlib.crc32(window, got_crc)
            self.input = window
            if i == 0 and self._fault() is False:
                return False
            self.send(f"m-class-{i}-{int(np.argmax(self._invoke()))}")
        self.last_input = "tinyhil"
        if got_crc != want:
            self.error(f"classify: crc mismatch: got {got_crc:08x} expected {want:08x}")
            return None
        self.send(f"m-classify-done-{n}-{got_crc:08x}")
        return None

    def cmd_results(self):
        if self.interp is None:
            self.error("results: no model")
            return
        self.send(self._dequantized(np.array(self.interp.get_output(0)).reshape(-1)))

    def cmd_timestamp(self):
        self.send(f"m-lap-us-{self.clock_us()}")

    def cmd_profile(self):
        self.send(f"m-profile-[tinyhil protocol {PROTOCOL_VERSION}, fw {FW_VERSION}]")
        self.send(f"m-model-[{self.model_id}]")

    def cmd_model_id(self, *args):
        if len(args) > 1 or (args and not valid_model_id(args[0])):
            self.error("bad arguments for model_id: expected model_id [<id>], 1 to 31 of A-Z a-z 0-9 . _ -")
            return
        if args:
            self.model_id = args[0]
        self.send(f"m-model-[{self.model_id}]")

    def cmd_opprofile(self):
        if self.interp is None or self.input is None:
            self.error("opprofile: no model or input")
            return
        self._invoke()
        for i, (tag, cycles) in enumerate(self.op_cycles):
            self.send(f"m-op-{i}-{tag}-{cycles}")

    def cmd_idle(self, ms):
        if not ms.isdigit():  # the firmware parses an unsigned number
            raise TypeError(ms)
        self.send(f"m-idle-ms-{int(ms)}")

    def cmd_reset(self):
        self.send("m-reset")
        self.ready()
        self.boot(reason="sw")
        return False


def _parsed(data: bytes) -> ModelInfo | None:
    """``data``'s inspection when it reads as a TFLite model (identifier, then the schema's
    tables), else None: this board's stand-in for the firmware's flatbuffers verifier."""
    if data[4:8] != b"TFL3":
        return None
    try:
        return inspect_tflite(data)
    except Exception:  # noqa: BLE001 - garbage fails in many ways; all of them mean "not a model"
        return None


def open_pty() -> tuple[int, str]:
    """A raw pseudo-terminal: returns ``(master_fd, slave_path)``."""
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    path = os.ttyname(slave)
    return master, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyhil.plugins.bench.boards.virtual", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--board", default="esp32-wroom-32", help="board profile (Default: esp32-wroom-32)")
    parser.add_argument("--flash-file", type=Path, required=True, help="file standing for the model partition")
    parser.add_argument("--fault", choices=FAULTS, default="none", help="failure to inject (Default: none)")
    parser.add_argument("--baud", type=int, default=0, help="pace the serial link at this rate; 0: no pacing")
    args = parser.parse_args(argv)
    die_with_parent_from_env()
    board = get_board(args.board)
    master, path = open_pty()
    print(path, flush=True)
    # keep our own handle on the slave so the pty survives the host closing and reopening it
    keep = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        VirtualBoard(board, args.flash_file, args.fault, args.baud).serve(master, master)
    finally:
        os.close(keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
