"""Several boards in one run (``--board a,b``): the board is an axis of the matrix; host verdicts,
expectations, virtual boards and the summary are per board."""

import pytest

from tests.unit.subrun import read_csv, run

TWO = "--board=esp32-wroom-32,esp32-wroom-32-ram"


def test_each_case_runs_on_each_board_with_its_own_verdict_and_expectations(project):
    res = run(project, "-m", "offline", TWO, "--networks=C_1,C_8", "--techniques=full_int", "--update-expectations")
    res.assert_outcomes(passed=4)
    rows = {r["case_id"]: r for r in read_csv(project)}
    assert set(rows) == {
        f"{n}-full_int-host-{b}" for n in ("C_1", "C_8") for b in ("esp32-wroom-32", "esp32-wroom-32-ram")
    }
    assert rows["C_8-full_int-host-esp32-wroom-32"]["status"] == "ok"  # mapped from flash
    assert rows["C_8-full_int-host-esp32-wroom-32-ram"]["status"] == "ram_overflow"  # a 210 kB copy in RAM
    assert {r["board"] for r in rows.values()} == {"esp32-wroom-32", "esp32-wroom-32-ram"}
    for board in ("esp32-wroom-32", "esp32-wroom-32-ram"):
        assert len(list((project.path / "exp" / board).glob("tflm-*.json"))) == 1, board
    # the next run holds each board to its own file: the ram board's overflow is expected there
    res = run(project, "-m", "offline", TWO, "--networks=C_8", "--techniques=full_int", "-k", "ram")
    res.assert_outcomes(xfailed=1)
    summary = (project.path / "reports" / "summary.md").read_text()
    assert "board profiles esp32-wroom-32, esp32-wroom-32-ram" in summary or "esp32-wroom-32-ram" in summary


def test_the_summary_sets_each_case_beside_itself_on_the_other_boards(project):
    run(project, "-m", "offline", TWO, "--networks=C_8", "--techniques=full_int").assert_outcomes(passed=1, failed=1)
    summary = (project.path / "reports" / "summary.md").read_text()
    assert (
        "## The same case on each board" in summary and "board profiles esp32-wroom-32, esp32-wroom-32-ram" in summary
    )
    line = next(x for x in summary.splitlines() if x.startswith("| C_8 | full_int | host |"))
    assert "✓ ok, arena" in line and "✗ ram_overflow, arena" in line, line


def test_virtual_boards_one_per_board_under_xdist(project):
    """Each board's cases run on a virtual board of that profile (its heap, its model placement),
    under -n 2, on the Python board in CI."""
    res = run(project, "-m", "hil", "--virtual-board", TWO, "--networks=C_8", "--techniques=full_int", "-n", "2")
    res.assert_outcomes(passed=1, failed=1)  # the private expectations say ok; the ram board cannot copy it
    rows = {r["board"]: r for r in read_csv(project)}
    assert rows["esp32-wroom-32"]["status"] == "ok" and rows["esp32-wroom-32"]["device_windows"] == "299"
    assert rows["esp32-wroom-32-ram"]["status"] == "ram_overflow"
    assert "ram: cannot allocate 210336 bytes for the model copy" in rows["esp32-wroom-32-ram"]["reason"]
    assert rows["esp32-wroom-32"]["bench_port"] != rows["esp32-wroom-32-ram"]["bench_port"]


@pytest.mark.parametrize(
    "board, extra, message",
    [
        ("esp32-wroom-32,esp32-wroom-32", (), "'esp32-wroom-32' and 'esp32-wroom-32' are the same board"),
        ("esp32-wroom-32,", (), "give board names separated by commas, none empty"),
        ("esp32-wroom-32,esp32-wroom-32-ram", ("--port", "/dev/ttyUSB9"), "say which board is on which port"),
        ("esp32-wroom-32,esp32-s3-devkitc-1", ("--port", "esp32=/dev/ttyUSB9"), "no port for esp32-s3-devkitc-1"),
        (
            "esp32-wroom-32,esp32-s3-devkitc-1",
            ("--port", "esp32=/dev/ttyUSB9,esp32c3=/dev/ttyUSB8"),
            "'esp32c3' is no board of this run",
        ),
        (
            "esp32-wroom-32,esp32-wroom-32-ram",
            ("--port", "esp32=/dev/ttyUSB9,esp32-wroom-32-ram=/dev/ttyUSB8"),
            "'esp32' names two boards of this run",
        ),
        ("esp32-wroom-32,no-such-board", (), "unknown board 'no-such-board'"),
    ],
)
def test_a_board_list_that_cannot_run_stops_at_start_up(project, board, extra, message):
    res = run(project, "-m", "offline", f"--board={board}", "--networks=C_1", "--techniques=lite", *extra)
    assert res.ret == 4
    res.stderr.fnmatch_lines([f"*{message}*"])


@pytest.mark.parametrize("name", ["esp32-wroom-32", "esp32-s3-devkitc-1", "esp32-c3-devkitm-1"])
def test_a_boards_virtual_board_times_a_model_as_its_host_estimate_says(converted, name):
    """One timing model per chip: the virtual board's simulated cycles and the host target's
    estimate agree for every built-in board (a profile that kept a flat cycles-per-MAC table
    would time the virtual board with it: the S3's was ten times off its estimate)."""
    from tinyhil.models.boards import get_board
    from tinyhil.models.inspection import inspect_tflite
    from tinyhil.models.timing import estimate
    from tinyhil.plugins.bench.boards.virtual_runner import op_cycles

    board = get_board(name)
    for tech in ("lite", "full_int"):
        info = inspect_tflite(converted[("C_2", tech)].tflite)
        simulated_ms = (
            sum(c for _, c in op_cycles(info, board.simulation, board.kernels, board.chip)) / board.cpu_mhz / 1e3
        )
        assert simulated_ms == pytest.approx(estimate(info.ops, board).latency_ms, rel=1e-3), (name, tech)


def test_the_three_chips_under_xdist_each_on_a_virtual_board_of_its_own(project):
    """The ESP32, the ESP32-S3 and the ESP32-C3 in one run, one virtual board per chip under -n 3:
    each case on its chip's profile, timed by its chip's model (simulated), on its own port."""
    chips = "--board=esp32-wroom-32,esp32-s3-devkitc-1,esp32-c3-devkitm-1"
    res = run(project, "-m", "hil", "--virtual-board", chips, "--networks=C_1", "--techniques=full_int", "-n", "3")
    res.assert_outcomes(passed=3)
    rows = {r["board"]: r for r in read_csv(project)}
    assert set(rows) == {"esp32-wroom-32", "esp32-s3-devkitc-1", "esp32-c3-devkitm-1"}
    assert len({r["bench_port"] for r in rows.values()}) == 3
    latency = {b: float(r["latency_ms_median"]) for b, r in rows.items()}
    assert latency["esp32-s3-devkitc-1"] < latency["esp32-wroom-32"] < latency["esp32-c3-devkitm-1"], latency
    assert {r["latency_source"] for r in rows.values()} == {"simulated"}


def test_a_bench_of_three_chips_one_worker_and_one_port_each(project):
    """--port esp32=…,esp32s3=…,esp32c3=…: each case opens its board's port, and under -n 3 one
    worker drives each board (xdist's loadgroup, the board as the group), so no two share a port.
    The boards are Python virtual boards behind their ptys (the firmware's protocol, models over
    the link with --embedded-services serial); their banners say simulated."""
    from tinyhil.plugins.bench.boards.virtual_process import start_virtual_board

    chips = {"esp32": "esp32-wroom-32", "esp32s3": "esp32-s3-devkitc-1", "esp32c3": "esp32-c3-devkitm-1"}
    boards = {chip: start_virtual_board(name) for chip, name in chips.items()}
    try:
        ports = ",".join(f"{chip}={vb.port}" for chip, vb in boards.items())
        res = run(
            project,
            "-m",
            "hil",
            f"--board={','.join(chips.values())}",
            f"--port={ports}",
            "--embedded-services=serial",
            "--networks=C_1",
            "--techniques=lite,full_int",
            "-n",
            "3",
            "-v",
        )
        res.assert_outcomes(passed=6)
        workers: dict[str, set[str]] = {}
        for line in res.stdout.lines:
            if "PASSED" in line and line.startswith("[gw"):
                workers.setdefault(line.split("]")[0][1:], set()).add(line.rsplit("@", 1)[1].strip())
        assert sorted(map(len, workers.values())) == [1, 1, 1], workers  # a worker each, one board each
        for r in read_csv(project):
            chip = next(c for c, name in chips.items() if name == r["board"])
            assert r["bench_port"] == boards[chip].port and r["latency_source"] == "simulated", r
    finally:
        for vb in boards.values():
            vb.stop()


def test_a_project_without_tinyhils_ini_knows_the_case_markers(pytester):
    """A project of one's own has no ``markers =`` for offline and hil: tinyhil declares them,
    so its cases neither warn nor fail --strict-markers."""
    pytester.makeconftest('pytest_plugins = ["tinyhil.study"]')
    pytester.makepyfile(test_tinyhil="from tinyhil.study import test_case  # noqa: F401")
    res = pytester.runpytest_subprocess(
        "--co",
        "-q",
        "--strict-markers",
        "-W",
        "error::pytest.PytestUnknownMarkWarning",
        "-m",
        "offline",
        "--networks=C_1",
        "--techniques=lite",
        "-p",
        "no:randomly",
        timeout=300,
    )
    assert res.ret == 0, res.stdout.str()[-2000:] + res.stderr.str()[-2000:]
    res.stdout.fnmatch_lines(["*C_1-lite-host*"])
