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

This module is the command loop; the rest of the board is beside it: its state, console and
boot (``virtual_core``), the serial line (``virtual_link``), the heap and partition
(``virtual_memory``), the model runner (``virtual_runner``) and the command groups
(``virtual_model``, ``virtual_db``, ``virtual_infer``, ``virtual_classify``).

Run by hand: ``python -m tinyhil.plugins.bench.boards.virtual --board esp32-wroom-32 --flash-file /tmp/flash.bin``;
it prints the pty path on its first line. ``--fault`` injects a failure for tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tty
from pathlib import Path

from tinyhil.models.boards import get_board
from tinyhil.models.lifeline import die_with_parent_from_env
from tinyhil.plugins.bench.boards.faults import FAULTS
from tinyhil.plugins.bench.boards.virtual_classify import ClassifyCommand
from tinyhil.plugins.bench.boards.virtual_core import FW_VERSION
from tinyhil.plugins.bench.boards.virtual_db import DbCommands
from tinyhil.plugins.bench.boards.virtual_infer import InferCommands
from tinyhil.plugins.bench.boards.virtual_model import ModelCommands
from tinyhil.plugins.bench.link.protocol import (
    MAX_IDLE_MS,
    MAX_LINE,
    PROTOCOL_VERSION,
    LineAssembler,
    ProtocolError,
    parse_command,
    parse_decimal,
    valid_model_id,
)
from tinyhil.plugins.firmware_tools.commands import firmware_commands

COMMANDS = [name for name, _ in firmware_commands()]  # the firmware's own table


class VirtualBoard(ModelCommands, DbCommands, InferCommands, ClassifyCommand):
    """The firmware's command loop over a file descriptor pair.

    A command ``name`` runs the method ``cmd_name``: the small ones are here, the others come
    from the command groups' mixins, which share the state of
    :class:`~tinyhil.plugins.bench.boards.virtual_core.BoardCore`.

    Args:
        board: Board profile (memory limits and timing model).
        flash_file: The model partition's content (the host writes it as esptool would).
        fault: Failure to inject, one of :data:`FAULTS`.
        baud: Pace the link at this rate, both ways (0: as fast as the pty goes).
    """

    def serve(self, fd_in: int, fd_out: int) -> None:
        """Serves commands until the peer closes the descriptor."""
        self.link.attach(fd_in, fd_out)
        self.boot()
        asm = LineAssembler()
        while True:
            data = self.link.read(None)
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

    def handle(self, text: str) -> None:
        """Runs one command line and ends it with ``m-ready``, unless the board rebooted or hangs."""
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
            self.model_id_changed()
        self.send(f"m-model-[{self.model_id}]")

    def cmd_idle(self, ms):
        value = parse_decimal(ms)  # digits only, as the firmware reads it
        if value is None or value > MAX_IDLE_MS:
            raise ValueError(f"expected idle <ms 0..{MAX_IDLE_MS}>")
        self.send(f"m-idle-ms-{value}")

    def cmd_reset(self):
        self.send("m-reset")
        self.ready()
        self.boot(reason="sw")
        return False


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
