"""The timing model: its fit to published figures, the virtual board's cycles, the host's estimates."""

import json

import pytest

from tinyhil.models.boards import get_board
from tinyhil.models.inspection import ModelInfo, OpInfo
from tinyhil.models.timing import (
    CLASSES,
    DTYPES,
    TIMING_DIR,
    cycles_of,
    estimate,
    load_timing,
    point_model_value,
    table_for,
)
from tinyhil.plugins.bench.boards.virtual_runner import op_cycles

CHIPS = ("esp32", "esp32s3", "esp32c3")
GOAL = 0.30
PERSON_MACS = 7_157_888  # TFLM's person_detect.tflite, as tinyhil's inspection counts it


def _points():
    for chip in CHIPS:
        doc = json.loads((TIMING_DIR / f"{chip}.json").read_text())
        for p in doc["points"]:
            yield pytest.param(doc, p, id=p["id"])


@pytest.mark.parametrize("doc,point", list(_points()))
def test_each_published_point_within_30_percent(doc, point):
    model = point_model_value(doc, point)
    assert abs(model / point["published"] - 1) <= GOAL, (point["id"], point["published"], model)
    assert point["role"] in ("fit", "held-out") and point["source"]


@pytest.mark.parametrize("chip", CHIPS)
def test_timing_files_are_complete(chip):
    doc = load_timing(chip)
    assert doc["cpu_mhz"] > 0 and doc["method"]
    assert any(p["level"] == "model" and p["library"] == "reference" for p in doc["points"])
    for lib in ("esp-nn", "reference"):
        t = table_for(doc, lib)
        assert set(t["cycles_per_unit"]) == set(CLASSES)
        assert all(set(v) == set(DTYPES) for v in t["cycles_per_unit"].values())
        # ESP-NN has no float kernels: its float32 costs are the reference ones
        assert all(
            t["cycles_per_unit"][c]["float32"] == table_for(doc, "reference")["cycles_per_unit"][c]["float32"]
            for c in CLASSES
        )
    assert sum(p["role"] == "held-out" for c in CHIPS for p in load_timing(c)["points"]) >= 1


def _person_sized(dtype="int8"):
    ops = [OpInfo("CONV_2D", dtype, dtype, PERSON_MACS, out_elements=1000, window=1)]
    return ModelInfo(model_bytes=1, ops=ops, macs=PERSON_MACS)


def test_virtual_board_cycles_follow_the_table():
    board = get_board("esp32-wroom-32")
    info = _person_sized()
    cycles = op_cycles(info, board.simulation, board.kernels, board.chip)
    table = table_for(load_timing("esp32"), "esp-nn")
    assert cycles == [("CONV_2D", round(cycles_of(info.ops[0], table)))]
    per_mac = cycles[0][1] / PERSON_MACS
    assert 8 < per_mac < 18  # the ESP32 with ESP-NN: about 13 cycles per MAC on person detection
    ref = op_cycles(info, board.simulation, "reference", board.chip)[0][1] / PERSON_MACS
    assert 90 < ref < 180  # without ESP-NN: about 137


def test_a_profile_with_the_flat_model_keeps_it():
    sim = {"cycles_per_mac": {"int8": 2.5}, "cycles_per_op": 3000}
    assert op_cycles(_person_sized(), sim, "esp-nn", "esp32") == [("CONV_2D", int(3000 + PERSON_MACS * 2.5))]


def test_host_estimate_uses_chip_kernels_and_currents():
    board = get_board("esp32-wroom-32")
    est = estimate(_person_sized().ops, board)
    assert est.latency_ms == pytest.approx(est.cycles / 240e3)
    assert est.energy_mj == pytest.approx(60e-3 * 3.3 * est.latency_ms)
    assert "esp32/esp-nn" in est.basis
    slow = estimate(_person_sized().ops, board.with_kernels("reference"))
    assert slow.latency_ms > 5 * est.latency_ms


def test_offline_run_fills_and_labels_the_estimates(project):
    from tests.unit.subrun import read_csv, run

    res = run(project, "-m", "offline", "--networks=C_1", "--techniques=lite,full_int")
    res.assert_outcomes(passed=2)
    rows = read_csv(project)
    assert all(float(r["latency_ms_estimated"]) > 0 and float(r["energy_mj_estimated"]) > 0 for r in rows)
    assert all(r["latency_ms_median"] == "" and "esp32/esp-nn" in r["estimate_basis"] for r in rows)
    summary = (project.path / "reports" / "summary.md").read_text()
    assert "estimated (timing model, not measured)" in summary
    plots = project.path / "reports" / "plots"
    assert (plots / "fig3_latency_energy_host.png").is_file() and (plots / "fig4_energy_saving_host.png").is_file()
