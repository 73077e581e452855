"""The board's serial port checked at start-up: missing, busy, unreadable or not a tty, each with
the fix; real ports are pseudo-terminals (``os.openpty``)."""

import os
import sys

import pytest
import serial
from serial.tools import list_ports_common

from tests.unit.subrun import run
from tinyhil.plugins.bench.link.ports import PortError, check_port, check_ports


@pytest.fixture
def pty():
    """A free pseudo-terminal: a port that opens, as a board's does."""
    controller, device = os.openpty()
    yield os.ttyname(device)
    os.close(device)
    os.close(controller)


@pytest.fixture
def no_ports(monkeypatch):
    """A machine where pyserial finds no serial port."""
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda *a, **k: [])


def _error(port) -> str:
    with pytest.raises(PortError) as e:
        check_port(port)
    return str(e.value)


def test_a_free_port_opens_and_is_given_back(pty):
    check_port(pty)
    with serial.Serial(pty, exclusive=True):  # the probe took its lock and gave it back
        pass


def test_a_missing_port_names_the_cable_and_the_ports_there_are(tmp_path, monkeypatch, no_ports):
    missing = tmp_path / "ttyUSB9"
    text = _error(str(missing))
    assert text.startswith(f"tinyhil: the board's serial port {missing} does not exist.")
    assert "Serial ports on this machine:\n      none found" in text
    assert "USB cable" in text and "ls /dev/ttyUSB* /dev/ttyACM*" in text and "--port" in text
    found = [list_ports_common.ListPortInfo("/dev/ttyUSB0"), list_ports_common.ListPortInfo("/dev/ttyACM1")]
    found[0].description = "CP2102N USB to UART Bridge Controller"
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda *a, **k: found)
    text = _error(str(missing))
    assert "      /dev/ttyACM1\n      /dev/ttyUSB0 (CP2102N USB to UART Bridge Controller)\n" in text


def test_a_port_another_program_holds_is_busy(pty, no_ports):
    """Held with pyserial's exclusive lock, as esptool, idf.py monitor and pytest-embedded's esp
    service hold it."""
    with serial.Serial(pty, exclusive=True):
        text = _error(pty)
    assert text.startswith(f"tinyhil: the board's serial port {pty} is busy: another program holds it")
    assert "idf.py monitor" in text and "screen" in text and "second pytest" in text
    assert f"fuser -v {pty}" in text and "none found" in text
    check_port(pty)  # free again once the holder closed it


def test_a_holder_without_a_lock_is_not_seen(pty):
    """What the probe cannot see, as documented: Linux lets a second process open a tty no one locked."""
    with serial.Serial(pty):
        check_port(pty)


@pytest.mark.skipif(sys.platform != "linux", reason="file modes and setuid as on Linux")
def test_a_port_the_user_may_not_open_names_the_dialout_group(pty, no_ports):
    """The kernel's own EACCES: root opens any file, so the probe runs in a child process that
    became ``nobody``; without root, the pty (the user's own) loses its permissions."""
    if os.geteuid() != 0:
        os.chmod(pty, 0)
        text = _error(pty)
    else:
        import grp  # noqa: F401 - imported before the child drops the rights to read the library

        text = _as_nobody(pty)
    assert text.startswith(f"tinyhil: permission denied on the board's serial port {pty}"), text
    assert "sudo usermod -aG dialout $USER" in text and "log out and in" in text and "none found" in text


def _as_nobody(port: str) -> str:
    """:func:`check_port`'s message, from a forked child running as user ``nobody``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: everything it needs is imported already
        os.close(read_end)
        try:
            os.setgid(65534)
            os.setuid(65534)
            check_port(port)
            text = "opened"
        except PortError as e:
            text = str(e)
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which fails the test
            text = f"child failed: {e!r}"
        os.write(write_end, text.encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as f:
        return f.read().decode()


def test_permission_denied_as_pyserial_raises_it(monkeypatch, no_ports, tmp_path):
    """The hardware seam: pyserial wraps the open's PermissionError in a SerialException with its
    errno. The fix names the device's group when that group may read and write it (``uucp`` on
    Arch), else ``dialout``."""
    import grp

    def denied(port, **kwargs):
        raise serial.SerialException(13, f"could not open port {port}: [Errno 13] Permission denied: '{port}'")

    monkeypatch.setattr(serial, "Serial", denied)
    assert "sudo usermod -aG dialout $USER" in _error("/dev/ttyUSB0")  # no such file to look at: the default
    device = tmp_path / "ttyUSB0"
    device.touch()
    gid = os.getgid() or next(g.gr_gid for g in grp.getgrall() if g.gr_gid != 0)
    os.chown(device, -1, gid)
    os.chmod(device, 0o660)
    group = grp.getgrgid(gid).gr_name
    text = _error(str(device))
    assert f"(it belongs to group {group})" in text and f"sudo usermod -aG {group} $USER" in text
    os.chmod(device, 0o600)  # the group may not open it: joining it would not help
    assert "sudo usermod -aG dialout $USER" in _error(str(device))


def test_a_file_that_is_no_tty_is_not_a_serial_port(tmp_path, no_ports):
    plain = tmp_path / "board.log"
    plain.write_text("")
    text = _error(str(plain))
    assert text.startswith(f"tinyhil: {plain} is not a serial port") and "Inappropriate ioctl" in text


def test_urls_are_not_probed_and_each_listed_port_is(pty, tmp_path, no_ports):
    """pyserial URLs reach a remote board (labgrid's rfc2217://): not opened at start-up. Opened
    as a path they would not exist, so this fails if they were probed."""
    check_ports("rfc2217://127.0.0.1:1,socket://127.0.0.1:1")
    check_ports(f"{pty},rfc2217://127.0.0.1:1")
    check_ports(None)
    with pytest.raises(PortError, match=f"serial port {tmp_path / 'ttyUSB1'} does not exist"):
        check_ports(f"{pty},{tmp_path / 'ttyUSB1'}")


def test_a_hil_run_on_a_missing_port_stops_at_start_up(project, tmp_path):
    """Was an 89-line pyserial traceback and an ERROR case (rc 1)."""
    missing = tmp_path / "ttyUSB9"
    res = run(project, "-m", "hil", "--embedded-services=serial", f"--port={missing}", "--networks=C_1")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stdout.fnmatch_lines(
        [
            f"*tinyhil: the board's serial port {missing} does not exist.*",
            "*Serial ports on this machine:*",
            "*ls /dev/ttyUSB* /dev/ttyACM*",
        ]
    )
    out = res.stdout.str() + res.stderr.str()
    assert "Traceback" not in out and "SerialException" not in out and "ERROR" not in out


def test_a_hil_run_on_a_held_port_stops_and_a_free_one_goes_on(project, pty):
    with serial.Serial(pty, exclusive=True):  # the other program
        res = run(project, "-m", "hil", "--embedded-services=serial", f"--port={pty}", "--networks=C_1", "--co")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stdout.fnmatch_lines([f"*serial port {pty} is busy: another program holds it*"])
    res = run(project, "-m", "hil", "--embedded-services=serial", f"--port={pty}", "--networks=C_1", "--co")
    assert res.ret == pytest.ExitCode.OK
    res.stdout.fnmatch_lines(["*3/* tests collected*"])


def test_an_xdist_run_probes_every_board_before_it_starts(project, pty, tmp_path):
    """``--port a,b -n 2``: the controller probes both boards (a worker stopping alone broke xdist
    with an INTERNALERROR), before any network trains."""
    missing = tmp_path / "ttyUSB1"
    res = run(
        project, "-m", "hil", "--embedded-services=serial", f"--port={pty},{missing}", "-n", "2", "--networks=C_1"
    )
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stdout.fnmatch_lines([f"*tinyhil: the board's serial port {missing} does not exist.*"])
    out = res.stdout.str() + res.stderr.str()
    assert "INTERNALERROR" not in out and "[train]" not in out
