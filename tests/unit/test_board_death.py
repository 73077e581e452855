"""A board that dies mid-case: the case gets a verdict and a row, the board comes back, the run goes on.

The board's process is killed with SIGKILL while a case runs (once its model has reached the
board's model partition, so the case is between its start and its end), as a crashed board
process or a pulled USB cable is seen by the host: the serial port closes under it.

- The virtual board, both kinds: it is restarted on a new pty; with ``--hil-retries 0`` the case
  is ``device_error`` naming the port, with ``--hil-retries 1`` it is retried on the new board.
- A board on a real port (``--port``, the serial service alone): the same path comes back (a
  USB board re-enumerates; here a symlink is pointed at a new board's pty) and is reopened.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.subrun import read_csv, run, virtual_boards

# A plugin of the sub-run: a thread kills this process's virtual board (SIGKILL) as soon as the
# first case's model is in its model partition file, once per run.
KILLER = """
import os, signal, threading, time
from pathlib import Path

import pytest

KILLED = []


def _kill_when_loaded(vb):
    end = time.monotonic() + 120
    while not (vb.flash_file.exists() and vb.flash_file.stat().st_size) and time.monotonic() < end:
        time.sleep(0.005)
    os.kill(vb.proc.pid, signal.SIGKILL)
    KILLED.append(vb.proc.pid)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    from tinyhil.plugins.bench_wiring import VB_KEY  # imported once tinyhil's plugins are

    vb = item.config.stash.get(VB_KEY, None)
    if vb is not None and not KILLED and not getattr(item.config, "_killer", None):
        item.config._killer = threading.Thread(target=_kill_when_loaded, args=(vb,), daemon=True)
        item.config._killer.start()
"""


@pytest.mark.parametrize("board", virtual_boards())
@pytest.mark.parametrize("retries", [0, 1])
def test_a_board_killed_mid_case_gets_a_verdict_a_row_and_a_new_board(project, board, retries):
    (project.path / "killer.py").write_text(KILLER)
    res = run(
        project,
        "-p",
        "killer",
        "-m",
        "hil",
        "--virtual-board",
        *board,
        "--networks=C_1",
        "--techniques=lite,full_int",
        "--device-windows=50",
        f"--hil-retries={retries}",
        "--device-timeout=3",
    )
    rows = {r["technique"]: r for r in read_csv(project)}
    assert set(rows) == {"lite", "full_int"}, res.stdout.str()  # both rows written: the run went on
    first, second = rows["lite"], rows["full_int"]
    if retries == 0:
        assert first["status"] == "device_error", first["reason"]
        assert "closed or vanished" in first["reason"] or "is gone" in first["reason"], first["reason"]
        assert "opened again for the next case" in first["reason"], first["reason"]
        res.stdout.fnmatch_lines(["*C_1-lite-*: verdict changed*got device_error*"])
    else:  # retried on the restarted board
        assert first["status"] == "ok", first["reason"]
    assert second["status"] == "ok", second["reason"]  # on the new board
    assert first["bench_port"] != second["bench_port"] or retries == 1  # a new pty
    assert "Traceback" not in res.stdout.str()


def _board(tmp_path: Path, name: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinyhil.plugins.bench.boards.virtual", "--flash-file", str(tmp_path / f"{name}.bin")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, proc.stdout.readline().strip()


def test_a_real_port_that_vanishes_is_reopened_when_it_comes_back(project, tmp_path):
    """``--port /dev/ttyUSB0``-like: a symlink stands for the device file. Mid-case (once the
    model reached the board) the board dies and its port vanishes; 1 s later the same path names
    a new board, as a DevKit that re-enumerates does. The case is retried on it."""
    first, pty1 = _board(tmp_path, "first")
    port = tmp_path / "ttyUSB0"
    port.symlink_to(pty1)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    argv = [sys.executable, "-m", "pytest", "-p", "no:randomly", "--expectations-dir", "exp", "-m", "hil"]
    run_ = subprocess.Popen(
        [
            *argv,
            "--embedded-services=serial",
            f"--port={port}",
            "--networks=C_1",
            "--techniques=lite,full_int",
            "--device-windows=50",
            "--hil-retries=1",
            "--device-timeout=3",
        ],
        cwd=project.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    second = None
    try:
        flash = tmp_path / "first.bin"
        end = time.monotonic() + 300
        while not (flash.exists() and flash.stat().st_size) and run_.poll() is None and time.monotonic() < end:
            time.sleep(0.005)
        first.kill()  # the board dies with the model on it, the case under way
        port.unlink()  # its device file vanishes
        time.sleep(1.0)
        second, pty2 = _board(tmp_path, "second")
        port.symlink_to(pty2)  # and comes back
        out = run_.communicate(timeout=600)[0]
    finally:
        for proc in (first, second, run_):
            if proc is not None:
                proc.kill()
                proc.communicate()  # and closes its pipes
    rows = {r["technique"]: r for r in read_csv(project)}
    assert set(rows) == {"lite", "full_int"}, out
    assert rows["lite"]["status"] == "ok", rows["lite"]["reason"]  # retried on the board that came back
    assert rows["full_int"]["status"] == "ok", rows["full_int"]["reason"]
    assert "Traceback" not in out


def test_a_port_that_never_comes_back_says_so(monkeypatch):
    """The DUT link waits for a vanished port a limited time, then names it."""
    from tinyhil.plugins.bench.link.device import DeviceGone, DutLink

    class Proc:
        is_open = False

    class Serial:
        proc = Proc()

        def stop_redirect_thread(self):
            raise AssertionError("not reached: the port never came back")

    class Dut:
        serial = Serial()

    link = DutLink(Dut(), "/dev/ttyUSB-gone")
    assert link.gone()
    t0 = time.monotonic()
    with pytest.raises(DeviceGone, match=r"/dev/ttyUSB-gone did not come back within 0.5 s: reconnect the board"):
        link.reopen("/dev/ttyUSB-gone", 0.5)
    assert 0.5 <= time.monotonic() - t0 < 5


def test_a_write_to_a_closed_port_is_device_gone():
    import serial

    from tinyhil.plugins.bench.link.device import DeviceGone, DutLink

    class Dut:
        def write(self, data):
            raise serial.PortNotOpenError()

    with pytest.raises(DeviceGone, match="the serial port /dev/ttyUSB0 is gone"):
        DutLink(Dut(), "/dev/ttyUSB0").write(b"version%")
