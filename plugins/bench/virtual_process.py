"""The virtual board as a child process: start it on a pseudo-terminal, stop it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class VirtualBoardProcess:
    """A running ``python -m plugins.bench.virtual_board``."""

    proc: subprocess.Popen
    port: str
    flash_file: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


def start_virtual_board(board: str, workdir: Path, fault: str = "none") -> VirtualBoardProcess:
    """Starts the virtual board and returns its pty path.

    Raises:
        RuntimeError: with the process's stderr when it does not come up.
    """
    flash = workdir / "model-partition.bin"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
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
    return VirtualBoardProcess(proc, port, flash)
