"""Nothing a run starts outlives it: children die with their parent; folders of dead runs are swept."""

import os
import signal
import subprocess
import sys
import time

from tests.unit.subrun import ROOT
from tinyhil.models.lifeline import make_temp_dir, sweep_stale

PARENT = """
import multiprocessing, sys, time
from tinyhil.models.lifeline import tie_forked_children_to_this_process
from tinyhil.plugins.bench.boards.virtual_process import start_virtual_board

tie_forked_children_to_this_process()
vb = start_virtual_board("esp32-wroom-32")
forked = multiprocessing.get_context("fork").Process(target=time.sleep, args=(600,))
forked.start()
print(vb.proc.pid, forked.pid, vb.flash_file.parent, flush=True)
time.sleep(600)
"""


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    return True  # a zombie has ended; only its exit status is left
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.1)
    return False


def test_children_die_when_the_run_is_killed():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        board_pid, forked_pid, workdir = parent.stdout.readline().split()
        assert not _gone(int(board_pid), 0.5) and not _gone(int(forked_pid), 0.5)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert _gone(int(board_pid)), "the virtual board outlived the run"
        assert _gone(int(forked_pid)), "a process forked by a library outlived the run"
        assert sweep_stale("tinyhil-virtual-board-") and not os.path.exists(workdir)
    finally:
        parent.kill()
        parent.stdout.close()


def test_only_folders_of_dead_processes_are_swept(tmp_path):
    mine = make_temp_dir("tinyhil-test-")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"tinyhil-test-{dead.stdout.strip()}-abc"
    stale.mkdir()
    live = tmp_path / f"tinyhil-test-{os.getpid()}-def"
    live.mkdir()
    try:
        assert sweep_stale("tinyhil-test-", tmp_path) == [stale]
        assert live.exists() and not stale.exists()
    finally:
        mine.rmdir()
