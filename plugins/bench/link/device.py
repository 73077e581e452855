"""The commands of protocol v1 from the host: drives a tinyhil firmware (or the virtual board).

:class:`DeviceClient` sends the bench's commands (data and model transfer, streamed
classification, timed inference, the per-op profile) and turns their replies into results;
reading replies, banners and the failures they end in is its base,
:class:`tinyhil.plugins.bench.link.replies.ReplyReader`, whose link protocol and exceptions
are importable from here too. :class:`DutLink` adapts a pytest-embedded DUT as a link.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass

import numpy as np

from tinyhil.plugins.bench.link.protocol import BOOT, ERROR_RE, READY, Response, crc32, format_command, parse_results
from tinyhil.plugins.bench.link.replies import (
    DeviceError,
    DeviceErrorResponse,
    DeviceGarbage,
    DeviceGone,
    DeviceRebooted,
    DeviceTimeout,
    Link,
    ReplyReader,
    is_printable,
)
from tinyhil.plugins.bench.link.windows import StoredWindows

__all__ = [
    "DeviceClient",
    "DeviceError",
    "DeviceErrorResponse",
    "DeviceGarbage",
    "DeviceGone",
    "DeviceRebooted",
    "DeviceTimeout",
    "DutLink",
    "InferResult",
    "Link",
    "ModelInfoOnDevice",
]


class DutLink:
    """A pytest-embedded DUT as a :class:`Link` (works for the ``esp``/``idf`` and ``serial`` services).

    A port that closes or vanishes under it (the board died, a USB cable or hub dropped it) is
    :class:`DeviceGone`, not pyserial's exception; :meth:`reopen` opens it again, on the same
    path once it is back (USB re-enumeration) or on another (a restarted virtual board).
    """

    # ESP-IDF's console adds \r before every \n (CRLF is newlib's default stdout line ending), and
    # TFLM's own messages already end in \r\n: a line may end in any run of \r before its \n.
    _LINE = re.compile(rb"([^\r\n]*)\r*\n")

    def __init__(self, dut, port: str | None = None):
        self.dut = dut
        self.port = port

    def write(self, data: bytes) -> None:
        try:
            self.dut.write(data)
        except OSError as e:  # pyserial's SerialException and PortNotOpenError are OSErrors
            raise DeviceGone(f"the serial port {self.port or '?'} is gone ({e})") from None

    def read_line(self, timeout: float) -> str:
        import pexpect

        try:
            m = self.dut.expect(self._LINE, timeout=timeout)
        except pexpect.TIMEOUT:
            self._raise_if_gone()
            raise DeviceTimeout(f"no line from the device within {timeout:g} s") from None
        except pexpect.EOF:
            self._raise_if_gone()
            raise DeviceTimeout("the serial stream ended") from None
        return m.group(1).decode("utf-8", "replace")

    def _serial(self):
        """pyserial's object under the DUT, or None (a DUT without one)."""
        return getattr(getattr(self.dut, "serial", None), "proc", None)

    def gone(self) -> bool:
        """Whether the port closed under the link (pytest-embedded's reader closes it on an I/O
        error) or its device file vanished."""
        proc = self._serial()
        if proc is not None and not getattr(proc, "is_open", True):
            return True
        local = self.port and not self.port.startswith(("rfc2217:", "socket:"))
        return bool(local) and not os.path.exists(self.port)

    def _raise_if_gone(self) -> None:
        if self.gone():
            raise DeviceGone(
                f"the serial port {self.port} closed or vanished: the board died, or its USB cable or hub dropped it"
            ) from None

    def reopen(self, port: str, wait_s: float) -> None:
        """Opens the DUT's serial link again on ``port`` once its device file exists (a board
        that re-enumerates takes a few seconds), with the same settings, and restarts
        pytest-embedded's reader on it.

        Raises:
            DeviceGone: the port did not come back within ``wait_s``, or would not open.
        """
        serial = getattr(self.dut, "serial", None)
        proc = self._serial()
        if proc is None:
            raise DeviceGone(f"the serial port {self.port} is gone and this DUT cannot reopen it")
        local = not port.startswith(("rfc2217:", "socket:"))
        deadline = time.monotonic() + wait_s
        while local and not os.path.exists(port):
            if time.monotonic() > deadline:
                raise DeviceGone(f"the serial port {port} did not come back within {wait_s:g} s: reconnect the board")
            time.sleep(0.2)
        serial.stop_redirect_thread()
        with contextlib.suppress(OSError):
            proc.close()
        try:
            proc.port = port
            proc.open()
        except OSError as e:
            raise DeviceGone(f"the serial port {port} came back but would not open ({e})") from None
        serial.start_redirect_thread()
        self.port = port


@dataclass
class ModelInfoOnDevice:
    model_bytes: int
    arena_bytes: int
    arena_used_bytes: int
    arena_min_bytes: int | None  # None from a firmware without m-arena-min-bytes
    input_dtype: str
    input_bytes: int
    input_scale: float
    input_zero_point: int
    output_dtype: str
    output_count: int
    output_scale: float
    output_zero_point: int
    heap_free: int
    heap_largest: int


@dataclass
class InferResult:
    cycles: list[int]
    cpu_mhz: float
    outputs: np.ndarray


def _bracketed(value: str | None, what: str) -> list[str]:
    m = re.fullmatch(r"\[(.*)\]", value or "")
    if not m or len(m.group(1).split(",")) != 4:
        raise DeviceGarbage(f"model: malformed m-{what} message: {value!r}")
    return m.group(1).split(",")


@contextlib.contextmanager
def _parsing(what: str, resp: Response):
    """A reply whose messages do not read as the protocol says (a number that is not one, a
    field missing, a line cut short) is :class:`DeviceGarbage` naming the command, like any
    other malformed reply, not an exception the bench path does not expect."""
    try:
        yield
    except (ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
        raise DeviceGarbage(
            f"{what}: malformed reply ({type(e).__name__}: {e}); got {resp.messages[:6]}", resp.log
        ) from None


def _model_info(resp: Response) -> ModelInfoOnDevice:
    try:
        din, dout = _bracketed(resp.value("input"), "input"), _bracketed(resp.value("output"), "output")
    except DeviceGarbage as e:  # say what came instead: a reply cut short, or another command's
        raise DeviceGarbage(f"{e}; got {resp.messages[:6]}", resp.log) from None
    return ModelInfoOnDevice(
        model_bytes=int(resp.value("model-bytes")),
        arena_bytes=int(resp.value("arena-bytes")),
        arena_used_bytes=int(resp.value("arena-used-bytes")),
        arena_min_bytes=int(resp.value("arena-min-bytes")) if resp.value("arena-min-bytes") is not None else None,
        input_dtype=din[0],
        input_bytes=int(din[1]),
        input_scale=float(din[2]),
        input_zero_point=int(din[3]),
        output_dtype=dout[0],
        output_count=int(dout[1]),
        output_scale=float(dout[2]),
        output_zero_point=int(dout[3]),
        heap_free=int(resp.value("heap-free")),
        heap_largest=int(resp.value("heap-largest")),
    )


class DeviceClient(ReplyReader):
    """Commands of protocol v1 over a link.

    Args:
        link: The serial link.
        timeout_s: Time allowed for one line to arrive.
    """

    def send_data(self, kind: str, data: bytes) -> None:
        """``db`` transfer: length-prefixed, CRC-checked."""
        crc = f"{crc32(data):08x}"
        self.link.write(format_command("db", kind, len(data), crc))
        while True:
            line = self.link.read_line(self.timeout_s).strip()
            if line.startswith("m-db-ready-"):
                break
            m = ERROR_RE.match(line)
            if m:
                self._read_response("db")  # consume to m-ready
                raise DeviceErrorResponse(m.group(1), [])
            if line == BOOT:
                raise DeviceRebooted("device rebooted during 'db'", [], self._read_banner(first=line))
        self.link.write(data)
        resp = self._read_response(f"db {kind}")
        if resp.value("db-ok") != f"{len(data)}-{crc}":
            raise DeviceGarbage(
                f"db: device acknowledged {resp.value('db-ok')!r}, expected {len(data)}-{crc}", resp.log
            )

    def classify(self, windows: list[bytes], rx_buffer_bytes: int) -> list[int]:
        """``classify%``: every window streamed back to back, one class per window.

        No round trip per window: the host keeps as many windows ahead of the board's answers
        as its receive buffer holds (``m-info-rx-buffer-bytes``, less one window of margin),
        since the console has no flow control to stop it. The CRC of all the bytes is checked
        at the end; an answer out of order, a missing one, or another line is an error.
        """
        size = len(windows[0])
        data = b"".join(windows)
        crc = f"{crc32(data):08x}"
        ahead = max(1, rx_buffer_bytes // size - 1)
        self.link.write(format_command("classify", len(windows), size, crc))
        line = self._first_line("classify")
        if line != f"m-classify-ready-{len(windows)}":
            raise DeviceGarbage(f"classify: expected m-classify-ready-{len(windows)}, got {line[:60]!r}", [])
        classes: list[int] = []
        sent = 0
        log: list[str] = []
        while len(classes) < len(windows):
            if sent < len(windows) and sent - len(classes) < ahead:
                batch = min(len(windows), len(classes) + ahead) - sent
                self.link.write(data[sent * size : (sent + batch) * size])
                sent += batch
            elif (cls := self._read_class(len(classes), log)) is not None:
                classes.append(cls)
        self._classify_done(len(windows), crc)
        return classes

    def _classify_done(self, count: int, crc: str) -> None:
        resp = self._read_response("classify")
        if resp.value("classify-done") != f"{count}-{crc}":
            raise DeviceGarbage(
                f"classify: device acknowledged {resp.value('classify-done')!r}, expected {count}-{crc}", resp.log
            )

    def classify_stored(self, first: int, windows: list[bytes]) -> list[int]:
        """``classify windows``: the board reads windows ``first``.. from its windows partition and
        converts them itself; ``windows`` are the bytes the host expects it to classify (the model's
        input type), checked by their CRC once all are answered."""
        crc = f"{crc32(b''.join(windows)):08x}"
        self.link.write(format_command("classify", "windows", first, len(windows), crc))
        line = self._first_line("classify")
        if line != f"m-classify-ready-{len(windows)}":
            raise DeviceGarbage(f"classify: expected m-classify-ready-{len(windows)}, got {line[:60]!r}", [])
        classes: list[int] = []
        log: list[str] = []
        while len(classes) < len(windows):
            if (cls := self._read_class(len(classes), log)) is not None:
                classes.append(cls)
        self._classify_done(len(windows), crc)
        return classes

    def stored_windows(self) -> StoredWindows:
        """``windows%``: what the board's windows partition holds."""
        resp = self.command("windows")
        with _parsing("windows", resp):
            sha = resp.value("windows-sha256")
            return StoredWindows(
                int(resp.value("windows-count")), int(resp.value("windows-values")), "" if sha == "none" else sha
            )

    def _read_class(self, index: int, log: list[str]) -> int | None:
        """The class of window ``index`` from the next line; None for a log line (kept in ``log``) or a blank one.

        Raises:
            DeviceGarbage: An answer out of order, unreadable bytes, or the board's error or
                ``m-ready`` before the last window.
            DeviceRebooted: A boot banner.
        """
        line = self.link.read_line(self.timeout_s).strip()
        if line.startswith("m-class-"):
            got, _, cls = line[len("m-class-") :].partition("-")
            if got != str(index) or not cls.isdigit():
                raise DeviceGarbage(f"classify: expected m-class-{index}-<class>, got {line[:60]!r}", log)
            return int(cls)
        if line == BOOT:
            info = self._read_banner(first=line)
            raise DeviceRebooted(
                f"device rebooted during 'classify' (reset reason: {info.get('reset-reason', 'unknown')})",
                log,
                info,
            )
        if ERROR_RE.match(line) or line == READY:
            self._unread = line
            resp = self._read_response("classify")  # the board's error, then m-ready
            raise DeviceGarbage(f"classify: the board stopped after {index} windows", resp.log)
        if line and not is_printable(line):
            raise DeviceGarbage(f"unreadable bytes from the device during 'classify': {line[:60]!r}", log)
        if line:
            log.append(line)
        return None

    def load_model(self, source: str, model: bytes, arena: str | int, place: str) -> ModelInfoOnDevice:
        resp = self.command(
            "model", source, len(model), f"{crc32(model):08x}", arena, place, timeout=max(self.timeout_s, 30)
        )
        with _parsing("model", resp):
            return _model_info(resp)

    def infer(self, n: int, warmup: int, timeout: float | None = None) -> InferResult:
        resp = self.command("infer", n, warmup, timeout=timeout)
        with _parsing(f"infer {n} {warmup}", resp):
            cycles = [int(v.split("-", 1)[1]) for v in resp.values("lap-cycles")]
            results = next((m for m in resp.messages if m.startswith("m-results-")), None)
            if len(cycles) != n or results is None or resp.value("cpu-mhz") is None:
                raise DeviceGarbage(
                    f"infer {n} {warmup}: expected {n} lap lines, the clock and results; got {resp.messages[:4]}",
                    resp.log,
                )
            outputs = np.array(parse_results(results), dtype=np.float64)
            return InferResult(cycles, float(resp.value("cpu-mhz")), outputs)

    def infer_window(self, n: int, timeout: float | None = None) -> float:
        """``infer N`` in EEMBC's form (10 warm-up runs, then N runs between two ``m-lap-us``
        timestamps): no lap per run, so N may exceed :data:`MAX_TIMED_RUNS`, as MLPerf Tiny's
        >= 10 s energy windows need for fast models. Returns the window in milliseconds."""
        resp = self.command("infer", n, timeout=timeout)
        stamps = [int(v) for v in resp.values("lap-us") if v.isdigit()]
        if len(stamps) != 2 or stamps[1] < stamps[0] or not any(m.startswith("m-results-") for m in resp.messages):
            raise DeviceGarbage(
                f"infer {n}: expected two m-lap-us timestamps and results; got {resp.messages[:6]}", resp.log
            )
        return (stamps[1] - stamps[0]) / 1000.0

    def profile(self) -> list[tuple[str, int]]:
        resp = self.command("opprofile")
        ops = []
        with _parsing("opprofile", resp):
            for v in resp.values("op"):
                _, rest = v.split("-", 1)
                tag, cycles = rest.rsplit("-", 1)
                ops.append((tag, int(cycles)))
        return ops
