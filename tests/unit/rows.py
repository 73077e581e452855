"""A results.csv row for tests of what reads rows (reports, plots, regressions): every column,
blank unless given, with a finished C_1 lite host case's identity filled in."""

from tinyhil.plugins.report.columns import COLUMN_NAMES

IDENTITY = {
    "network": "C_1",
    "family": "1D_CNN",
    "technique": "lite",
    "target": "host",
    "status": "ok",
    "board": "esp32-wroom-32",
    "dataset": "synthetic-har",
    "dataset_generated": "true",
    "split": "paper",
    "profile": "quick",
    "seed": "0",
}


def make_row(**figures) -> dict:
    """The row with ``figures`` over :data:`IDENTITY`; ``case_id`` follows network, technique and target."""
    row = {c: "" for c in COLUMN_NAMES} | IDENTITY | figures
    row["case_id"] = f"{row['network']}-{row['technique']}-{row['target']}"
    return row
