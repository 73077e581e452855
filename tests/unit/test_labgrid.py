"""A board farm on labgrid, end to end on loopback: a coordinator and an exporter started here on
127.0.0.1, two virtual boards on pseudo-terminals exported through ser2net as two places, and a
tinyhil run whose two xdist workers acquire one place each, talk to their board over rfc2217 and
release the places at the end. Needs labgrid's commands and ser2net (CI installs both)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.unit.subrun import read_csv, run
from tinyhil.plugins.bench.boards.labgrid import LabgridError, serial_url

TOOLS = ("labgrid-coordinator", "labgrid-exporter", "labgrid-client", "ser2net")
MISSING = [t for t in TOOLS if shutil.which(t) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(address: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["labgrid-client", "-x", address, *args], capture_output=True, text=True, timeout=60)


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the exporter's ser2net children too
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def test_the_serial_url_of_an_acquired_place():
    show = """Place 'bench-1':
  acquired: lab/me
Acquired resource 'RawSerialPort' (exp/board0/NetworkSerialPort/RawSerialPort):
  {'acquired': 'bench-1',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {'extra': {'path': '/dev/ttyUSB0', 'proxy': 'lab', 'proxy_required': False},
              'host': 'lab',
              'port': 53001,
              'speed': 921600}}
"""
    assert serial_url(show, "bench-1") == "rfc2217://lab:53001?ign_set_control"
    with pytest.raises(LabgridError, match="place bench-1 holds no NetworkSerialPort.*add-match"):
        serial_url("Place 'bench-1':\n  acquired: lab/me\n", "bench-1")


def test_labgrid_places_are_checked_at_start_up(project):
    res = run(project, "-m", "hil", "--labgrid-places=a,a", "--networks=C_1")
    assert res.ret == 4
    res.stderr.fnmatch_lines(["*--labgrid-places 'a,a': distinct place names*"])
    res = run(project, "-m", "hil", "--labgrid-places=a", "--port=/dev/ttyUSB0", "--networks=C_1")
    res.stderr.fnmatch_lines(["*--labgrid-places gives the boards: drop --port*"])


@pytest.mark.skipif(bool(MISSING), reason=f"labgrid's commands and ser2net are needed: missing {', '.join(MISSING)}")
def test_two_workers_acquire_two_labgrid_places(project, tmp_path):
    from tinyhil.plugins.bench.boards.virtual_process import start_virtual_board

    address = f"127.0.0.1:{_free_port()}"
    procs: list[subprocess.Popen] = []
    boards = []
    try:
        procs.append(
            subprocess.Popen(
                ["labgrid-coordinator", "--listen", address],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        boards = [start_virtual_board("esp32-wroom-32", tmp_path / f"board{i}") for i in (0, 1)]
        config = tmp_path / "exporter.yaml"
        config.write_text(
            "".join(
                f"board{i}:\n  RawSerialPort:\n    port: {vb.port}\n    speed: 921600\n" for i, vb in enumerate(boards)
            )
        )
        procs.append(
            subprocess.Popen(
                ["labgrid-exporter", "-c", address, "--name", "tinyhil-test", str(config)],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + 60
        while _client(address, "resources").stdout.count("NetworkSerialPort") < 2:
            assert time.monotonic() < deadline, "the exporter did not publish both serial ports within 60 s"
            time.sleep(0.5)
        for i in (0, 1):
            assert _client(address, "-p", f"tinyhil-{i}", "create").returncode == 0
            assert _client(address, "-p", f"tinyhil-{i}", "add-match", f"tinyhil-test/board{i}/*").returncode == 0
        res = run(
            project,
            "-m",
            "hil",
            "--labgrid-places=tinyhil-0,tinyhil-1",
            f"--labgrid-coordinator={address}",
            "-n",
            "2",
            "--embedded-services=serial",  # the boards run the firmware already; models go over the link
            "--networks=C_1",
            "--techniques=lite,full_int",
            "--device-windows=20",
        )
        res.assert_outcomes(passed=2)
        rows = read_csv(project)
        assert {r["status"] for r in rows} == {"ok"}
        assert all(r["bench_port"].startswith("rfc2217://") for r in rows)
        # each worker had its own place, so its own board; the banner's simulated-1 labels the figures
        assert len({r["bench_port"] for r in rows}) == len({r["bench_mac"] for r in rows}) == 2
        assert {r["latency_source"] for r in rows} == {"simulated"} and {r["arena_source"] for r in rows} == {
            "simulated"
        }
        for i in (0, 1):  # released at the end of the run
            assert "acquired: None" in _client(address, "-p", f"tinyhil-{i}", "show").stdout
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for vb in boards:
            vb.stop()


def test_a_missing_labgrid_client_says_what_to_install(monkeypatch):
    from tinyhil.plugins.bench.boards import labgrid as labgrid_places

    monkeypatch.setattr(labgrid_places.shutil, "which", lambda name: None)
    with pytest.raises(LabgridError, match="labgrid-client on PATH: pipx install labgrid"):
        labgrid_places.acquire("bench-1", "127.0.0.1:20408")
