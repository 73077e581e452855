"""The host evaluation survives tflite-micro's crashes during the arena search."""

import numpy as np

from tests.unit.subrun import read_csv, run


def test_a_probe_that_crashes_the_runtime_counts_as_refused(project):
    """C_1 full-integer on 32 x 4 windows of three classes: tflite-micro 0.dev20261023182759 segfaults
    at arena sizes just below the minimum, where it should refuse them. The case used to end as
    device_error ("the host TFLM runtime crashed: SIGSEGV"); the search now counts those sizes as
    refused and finds the minimum that loads."""
    rng = np.random.default_rng(1)
    y_train, y_test = rng.integers(0, 3, 90), rng.integers(0, 3, 30)
    x_train = rng.normal(size=(90, 32, 4)).astype(np.float32) + y_train[:, None, None]
    x_test = rng.normal(size=(30, 32, 4)).astype(np.float32) + y_test[:, None, None]
    np.savez(project.path / "mine.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    res = run(project, "--dataset=mine.npz", "-m", "offline", "--networks", "C_1", "--techniques", "full_int")
    res.assert_outcomes(passed=1)
    (row,) = read_csv(project)
    assert row["status"] == "ok" and row["acc_tflm"] != ""
    assert "arena search: the runtime crashed at" in row["reason"], "no crash any more: pick another model"
    assert int(row["arena_bytes"]) > 0
