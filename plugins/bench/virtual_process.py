"""The virtual board as a child process: start it on a pseudo-terminal, stop it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from models.lifeline import child_env, make_temp_dir

ROOT = Path(__file__).resolve().parents[2]
TEMP_PREFIX = "tinyhil-virtual-board-"  # + pid, so a later run can sweep what a killed one left


@dataclass
class VirtualBoardProcess:
    """A running ``python -m plugins.bench.virtual_board``."""

    proc: subprocess.Popen
    port: str
    flash_file: Path
    baud: int = 0

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
    env = child_env(ROOT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plugins.bench.virtual_board",
            "--board",
            board,
            "--flash-file",
            str(flash),
            "--fault",
            fault,
            "--baud",
            str(baud),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    port = proc.stdout.readline().strip()
    if not port.startswith("/dev/"):
        proc.kill()
        raise RuntimeError(f"the virtual board did not start: {proc.stderr.read()[-2000:]}")
    return VirtualBoardProcess(proc, port, flash, baud)
