"""TFLM's own published models on both virtual boards, against the firmware's op list.

Set ``TINYHIL_TFLM_MODELS`` to a folder holding ``.tflite`` files from TFLM's repository (for
example ``keyword_scrambled.tflite`` from ``tensorflow/lite/micro/models``, whose SVDF the firmware
registers); with ``TINYHIL_TFLM_SOURCE`` the firmware's host build runs them too. Without the
models these tests skip: CI cannot download them.
"""

import os
from pathlib import Path

import pytest

from tests.unit.subrun import read_csv, run, virtual_boards

MODELS = Path(os.environ["TINYHIL_TFLM_MODELS"]) if os.environ.get("TINYHIL_TFLM_MODELS") else None
KEYWORD = MODELS / "keyword_scrambled.tflite" if MODELS else None

needs_models = pytest.mark.skipif(
    KEYWORD is None or not KEYWORD.exists(),
    reason="set TINYHIL_TFLM_MODELS to a folder with TFLM's keyword_scrambled.tflite",
)


@needs_models
@pytest.mark.parametrize("board", virtual_boards())
def test_tflms_svdf_keyword_model_runs_on_the_virtual_boards(project, board):
    res = run(project, "-m", "hil", "--virtual-board", *board, f"--networks={KEYWORD}", "--device-windows=5")
    (row,) = read_csv(project)
    assert row["status"] == "ok", (row["reason"], res.stdout.str()[-3000:])
    assert float(row["latency_ms_median"]) > 0 and int(row["arena_bytes"]) > 0


@needs_models
def test_the_host_verdict_takes_the_svdf_keyword_model(project):
    run(project, "-m", "offline", f"--networks={KEYWORD}")
    (row,) = read_csv(project)
    assert row["status"] == "ok", row["reason"]
