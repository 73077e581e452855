"""A host for the EEMBC / MLPerf Tiny DUT commands, following MLPerf Tiny's runner flow.

MLPerf Tiny's runner identifies the DUT (``name%``, ``profile%`` for the profile and the
model id), sends an input as ``db load N%`` and hex chunks ``db <hex>%`` (31 bytes each, 26
with a power manager), runs ``infer N W%`` and reads the ``m-lap-us`` pair and
``m-results-[…]`` from the reply. This client does the same from the protocol as
``firmware/PROTOCOL.md`` writes it down, so that a tinyhil firmware or the virtual board can
be checked against what that runner expects without the runner.

By hand, against a board or the virtual board's pty::

    python -m tinyhil.plugins.bench.link.eembc --port /dev/ttyUSB0 --input window.bin --runs 5 --warmup 1
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from tinyhil.plugins.bench.link.replies import DeviceTimeout, Link
from tinyhil.plugins.bench.link.serial_link import SerialLink
from tinyhil.plugins.firmware_tools.config import console_baud

RUNNER_CHUNK_BYTES = 31  # the runner's hex chunk; 26 when a power manager is attached
READY = "m-ready"

_NAME = re.compile(r"m-name-dut-\[([^\]]+)\]")
_PROFILE = re.compile(r"m-(profile|model)-\[([^\]]+)\]")
_LAP_US = re.compile(r"m-lap-us-(\d+)")
_RESULTS = re.compile(r"m-results-\[([^\]]+)\]")
_BUFFER = re.compile(r"m-buffer-((?:[0-9a-f]{2}-)*[0-9a-f]{2})")


class EembcError(Exception):
    """A reply that is not what an EEMBC host expects; ``lines`` holds it."""

    def __init__(self, message: str, lines: list[str]):
        super().__init__(f"{message}: {lines}")
        self.lines = lines


@dataclass(frozen=True)
class EembcInference:
    """The runner's reading of one ``infer N W%`` reply.

    Attributes:
        runs: N, the timed inferences.
        start_us: The first ``m-lap-us`` value.
        end_us: The second ``m-lap-us`` value.
        results: The ``m-results-[…]`` floats.
        lines: The whole reply.
    """

    runs: int
    start_us: int
    end_us: int
    results: list[float]
    lines: list[str]

    @property
    def elapsed_us(self) -> int:
        """Microseconds between the two timestamps."""
        return self.end_us - self.start_us

    @property
    def throughput(self) -> float:
        """Inferences per second, as the runner reports it (0 when no time elapsed)."""
        return self.runs / (self.elapsed_us / 1e6) if self.elapsed_us > 0 else 0.0


class EembcClient:
    """Sends EEMBC commands over a link (``write(bytes)``, ``read_line(timeout)``).

    Args:
        link: The serial link, as :class:`tinyhil.plugins.bench.link.device.DeviceClient` takes it.
        timeout_s: Time allowed for one line to arrive.
        chunk_bytes: Bytes per ``db <hex>%`` chunk.
    """

    def __init__(self, link: Link, timeout_s: float = 5.0, chunk_bytes: int = RUNNER_CHUNK_BYTES):
        self.link = link
        self.timeout_s = timeout_s
        self.chunk_bytes = chunk_bytes

    def command(self, text: str, timeout: float | None = None) -> list[str]:
        """Sends ``text%`` and returns the reply lines up to and including ``m-ready``."""
        self.link.write(f"{text}%".encode("ascii"))
        lines: list[str] = []
        while True:
            line = self.link.read_line(timeout or self.timeout_s).strip()
            if line:
                lines.append(line)
            if line == READY:
                return lines

    def name(self) -> str:
        """The bracketed text of ``m-name-dut-[…]``."""
        lines = self.command("name")
        found = [m[1] for line in lines if (m := _NAME.fullmatch(line))]
        if not found:
            raise EembcError("name%: no m-name-dut-[...] line", lines)
        return found[-1]

    def profile(self) -> tuple[str, str]:
        """``(profile, model id)`` from ``m-profile-[…]`` and ``m-model-[…]``."""
        lines = self.command("profile")
        found = {m[1]: m[2] for line in lines if (m := _PROFILE.fullmatch(line))}
        if set(found) != {"profile", "model"}:
            raise EembcError("profile%: expected m-profile-[...] and m-model-[...]", lines)
        return found["profile"], found["model"]

    def load(self, data: bytes) -> list[str]:
        """``db load N%`` then hex chunks; returns the reply of the last chunk (``m-load-done`` in it)."""
        lines = self.command(f"db load {len(data)}")
        if f"m-[Expecting {len(data)} bytes]" not in lines:
            raise EembcError(f"db load {len(data)}%: expected m-[Expecting {len(data)} bytes]", lines)
        for start in range(0, len(data), self.chunk_bytes):
            lines = self.command(f"db {data[start : start + self.chunk_bytes].hex()}")
            errors = [line for line in lines if line.startswith("e-")]
            if errors:
                raise EembcError(f"db chunk at byte {start} refused", lines)
        if "m-load-done" not in lines:
            raise EembcError("the last db chunk did not end the load with m-load-done", lines)
        return lines

    def buffer(self) -> bytes:
        """The DUT's db buffer, from ``db print%``."""
        lines = self.command("db print")
        return bytes.fromhex("".join(m[1].replace("-", "") for line in lines if (m := _BUFFER.fullmatch(line))))

    def infer(self, runs: int, warmup: int, timeout: float | None = None) -> EembcInference:
        """``infer N W%``: the timestamps are the first and the second ``m-lap-us`` line."""
        lines = self.command(f"infer {runs} {warmup}", timeout=timeout or max(self.timeout_s, 30.0))
        laps = [int(m[1]) for line in lines if (m := _LAP_US.fullmatch(line))]
        results = [m[1] for line in lines if (m := _RESULTS.fullmatch(line))]
        if len(laps) != 2 or len(results) != 1:
            raise EembcError(f"infer {runs} {warmup}%: expected two m-lap-us lines and one m-results line", lines)
        return EembcInference(runs, laps[0], laps[1], [float(v) for v in results[0].split(",")], lines)

    def results(self) -> list[float]:
        """``results%``: the last output as floats."""
        lines = self.command("results")
        found = [m[1] for line in lines if (m := _RESULTS.fullmatch(line))]
        if len(found) != 1:
            raise EembcError("results%: expected one m-results-[...] line", lines)
        return [float(v) for v in found[0].split(",")]

    def timestamp(self) -> int:
        """``timestamp%``: microseconds from ``m-lap-us-<n>``."""
        lines = self.command("timestamp")
        found = [int(m[1]) for line in lines if (m := _LAP_US.fullmatch(line))]
        if len(found) != 1:
            raise EembcError("timestamp%: expected one m-lap-us line", lines)
        return found[0]


def main(argv: list[str] | None = None) -> int:
    """Runs the runner's flow once and prints what the runner would read."""
    parser = argparse.ArgumentParser(
        prog="python -m tinyhil.plugins.bench.link.eembc", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", required=True, help="serial port of the board or of the virtual board")
    parser.add_argument(
        "--baud", type=int, default=console_baud(), help="(Default: the firmware's CONFIG_TINYHIL_UART_BAUD)"
    )
    parser.add_argument("--input", type=Path, help="one input tensor's bytes to send (Default: send none)")
    parser.add_argument("--runs", type=int, default=5, help="N timed inferences (Default: 5)")
    parser.add_argument("--warmup", type=int, default=1, help="W warm-up inferences (Default: 1)")
    args = parser.parse_args(argv)
    client = EembcClient(SerialLink(args.port, args.baud))
    try:
        print(f"name: {client.name()}")
        profile, model = client.profile()
        print(f"profile: {profile}; model: {model}")
        if args.input:
            client.load(args.input.read_bytes())
        r = client.infer(args.runs, args.warmup)
    except (EembcError, DeviceTimeout) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{r.runs} inferences in {r.elapsed_us} us: {r.throughput:.3f} inf./s; results {r.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
