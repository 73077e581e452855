"""The virtual boards as child processes: start one on a pseudo-terminal, stop it.

Two boards speak the protocol there: the Python virtual board
(:mod:`tinyhil.plugins.bench.boards.virtual`) and the firmware's own code built for Linux
(``firmware/host``, :mod:`tinyhil.plugins.firmware_tools.host_build`). Both print their pty path first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tinyhil import resources
from tinyhil.models.boards import Board
from tinyhil.models.lifeline import child_env, make_temp_dir
from tinyhil.plugins.bench.link.windows import windows_file

TEMP_PREFIX = "tinyhil-virtual-board-"  # + pid, so a later run can sweep what a killed one left


@dataclass
class VirtualBoardProcess:
    """A running ``python -m tinyhil.plugins.bench.boards.virtual``."""

    proc: subprocess.Popen
    port: str
    flash_file: Path
    baud: int = 0

    @property
    def windows_file(self) -> Path:
        """The windows partition's content, beside the model partition's (both boards read it there)."""
        return windows_file(self.flash_file)

    def stop(self) -> None:
        """Ends the process and removes its folder (the model partition file)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
        shutil.rmtree(self.flash_file.parent, ignore_errors=True)


def start_virtual_board(
    board: str, workdir: Path | None = None, fault: str = "none", baud: int = 0
) -> VirtualBoardProcess:
    """Starts the virtual board and returns its pty path.

    Args:
        board: Board profile name.
        workdir: Folder of the model partition file (removed by :meth:`VirtualBoardProcess.stop`);
            a new temporary folder when None.
        fault: Failure to inject.
        baud: Pace the serial link at this rate (0: no pacing).

    Raises:
        RuntimeError: with the process's stderr when it does not come up.
    """
    workdir = workdir or make_temp_dir(TEMP_PREFIX)
    flash = workdir / "model-partition.bin"
    argv = [sys.executable, "-m", "tinyhil.plugins.bench.boards.virtual", "--board", board, "--flash-file", str(flash)]
    return _start([*argv, "--fault", fault, "--baud", str(baud)], flash, baud, "the virtual board")


def start_firmware_board(binary: Path, board: Board, workdir: Path | None = None, baud: int = 0) -> VirtualBoardProcess:
    """Starts the firmware's host build (``firmware/host``) with the board profile's budgets.

    Its MAC is locally administered and differs per process, like the Python board's.

    Raises:
        RuntimeError: with the process's stderr when it does not come up.
    """
    workdir = workdir or make_temp_dir(TEMP_PREFIX)
    flash = workdir / "model-partition.bin"
    mac = "02:01:" + ":".join(f"{(os.getpid() >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))
    argv = [
        str(binary),
        *("--partition", str(flash), "--partition-bytes", str(board.model_partition_bytes)),
        *("--windows", str(windows_file(flash)), "--windows-bytes", str(board.windows_partition_bytes)),
        *("--heap-bytes", str(board.internal_heap_bytes), "--largest-block", str(board.largest_heap_block_bytes)),
        *("--cpu-mhz", str(board.cpu_mhz), "--chip", board.chip, "--mac", mac, "--baud", str(baud)),
        *("--elf-sha256", hashlib.sha256(Path(binary).read_bytes()).hexdigest()),
        *("--marker-log", str(workdir / "marker.log")),
    ]
    return _start(argv, flash, baud, f"the firmware host build {binary}")


def _start(argv: list[str], flash: Path, baud: int, what: str) -> VirtualBoardProcess:
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(resources.import_root())
    )
    port = proc.stdout.readline().strip()
    if not port.startswith("/dev/"):
        proc.kill()
        raise RuntimeError(f"{what} did not start: {proc.stderr.read()[-2000:]}")
    return VirtualBoardProcess(proc, port, flash, baud)
