"""The record of one case: the CSV columns, in order, with what each one means.

This list is the single definition of ``results.csv``; the README's column table is
checked against it by the unit tests. Empty means "not measured by this target", never 0.
"""

from __future__ import annotations

COLUMNS: list[tuple[str, str]] = [
    ("case_id", "network-technique-target, the pytest id"),
    ("network", "Table 1 id (C_1..C_8, CL_1..CL_6)"),
    ("family", "1D_CNN or 1D_CNN_LSTM"),
    ("technique", "technique id: steps joined by + (prune50+full_int), hyper-parameters in the names"),
    ("steps", "the steps as run, with their parameters"),
    ("compression_mode", "cascading or standalone"),
    ("compression_notes", "what the steps report: sparsity reached, filters kept, teacher"),
    (
        "target",
        "host (TFLM on this machine), esp32 (bench), virtual-esp32 (simulated board) or firmware-host (the firmware's "
        "own code built for Linux; timings simulated)",
    ),
    (
        "status",
        "verdict: ok, convert_error, unsupported_op, arena_overflow, ram_overflow, flash_overflow, device_error, timeout, "
        "wrong_output",
    ),
    ("reason", "why, in the converter's, TFLM's or the board's words"),
    ("expected_status", "the verdict the expectations file holds for this board"),
    ("fits", "true/false: model and arena within the board's budgets; empty when unknown"),
    ("runs", "true/false: fits and TFLM ran it"),
    ("model_bytes", "size of the .tflite flatbuffer"),
    (
        "arena_bytes",
        "TFLM arena of the case: the smallest arena in which the model loads where arena_source says (host "
        "bisection, or the firmware's own bisection on the board); a model loaded with exactly this many bytes runs",
    ),
    (
        "arena_source",
        "measured-host (bisection with the tflite-micro wheel), measured-device (the firmware's bisection on the "
        "board), firmware-host-build (the same, by the firmware built for Linux) or simulated (Python virtual board)",
    ),
    (
        "arena_pointer_bits",
        "pointer width of the runtime arena_bytes comes from: 64 for the x86-64 wheel, 32 on the ESP32 and a 32-bit "
        "host build (TFLM's bookkeeping holds pointers: a 32-bit core needs about 1 kB less)",
    ),
    (
        "arena_device_bytes",
        "TFLM's arena_used_bytes() on the board (the ESP32, or the firmware host build): what the tensors hold "
        "after loading, up to a few hundred bytes below arena_bytes (TFLM gives back planning memory); empty on host",
    ),
    ("params", "weights and biases of conv, dense and LSTM ops"),
    ("macs", "multiply-accumulates of one inference"),
    ("ops", "op(input dtype/weight dtype) list"),
    ("input_dtype", "dtype of the model input"),
    ("weight_dtypes", "dtypes of the compute ops' weights"),
    ("fit_budget_source", "estimated (board profile) or measured (boot report of the board)"),
    ("acc_keras", "test accuracy of the Keras model (the paper's 'base')"),
    ("acc_tflite", "test accuracy on the TFLite interpreter (ai-edge-litert)"),
    (
        "acc_tflm",
        "test accuracy on the host TFLM runtime, whole test split (on a bench row too, with --device-windows auto or all)",
    ),
    ("acc_device", "accuracy on the target over the device_windows windows it classified (a sample, unless all)"),
    ("acc_device_source", "measured or simulated"),
    (
        "device_windows",
        "windows sent to the target and classified (--device-windows; auto: until the agreement test decided)",
    ),
    (
        "device_windows_stored",
        "of device_windows, those the board read from its windows partition (written once a session) instead of "
        "receiving them over the serial link",
    ),
    ("device_agreement", "share of those windows where the target's class equals host TFLM's"),
    ("device_disagreements", "windows where the target's class differs from host TFLM's"),
    (
        "disagreement_upper_bound",
        "one-sided Clopper-Pearson upper bound on the share of windows that disagree, at --agreement-confidence",
    ),
    (
        "agreement_test",
        "auto's outcome and rule (agrees, disagrees, or undecided when the split ran out: max share at confidence), "
        "or none with all or a count",
    ),
    ("latency_ms_median", "per-inference latency on the target (cycle counts at the measured clock)"),
    ("latency_ms_mean", "mean of the N runs"),
    ("latency_ms_std", "standard deviation of the N runs"),
    ("latency_ms_min", "minimum of the N runs"),
    ("latency_ms_max", "maximum of the N runs"),
    ("latency_runs", "N, the inferences timed"),
    ("latency_source", "measured or simulated"),
    ("energy_mj_gross", "energy per inference from the shunt trace, mJ"),
    ("energy_mj_net", "energy per inference above the idle baseline, mJ"),
    ("power_mw_mean", "mean power inside the marker window, mW"),
    ("idle_power_mw", "idle baseline power (idle% capture), mW"),
    ("energy_window_ms", "duration of the marker window, ms"),
    ("energy_window_check", "marker window against the firmware's cycle-count latency of the same runs"),
    (
        "energy_saving_pct",
        "net energy saved against the lite (float) model of the same network and target, % (filled at the end of the run)",
    ),
    ("energy_source", "measured, simulated, or replayed-<original source>"),
    ("energy_trace", "saved raw trace (--save-traces)"),
    (
        "latency_ms_estimated",
        "host: estimated latency per inference on the board's chip and kernel library, from the timing model (models/data/timing/<chip>.json, fit to published figures), ms; an estimate, never a measurement",
    ),
    (
        "energy_mj_estimated",
        "host: estimated energy per inference, mJ: latency_ms_estimated x the board profile's active current x 3.3 V; an estimate, never a measurement",
    ),
    (
        "estimate_basis",
        "what the estimated columns come from: chip, kernel library, clock and timing file",
    ),
    ("timing_rule", "paper (N consecutive inferences) or mlperf (>= 10 s windows, median of 5)"),
    ("bench_write_s", "bench: seconds writing the model into the board's partition and loading it"),
    (
        "bench_windows_s",
        "bench: seconds classifying the device_windows test windows (streamed or read from the windows partition)",
    ),
    (
        "bench_windows_write_s",
        "bench: seconds writing the test windows into the board's windows partition before this case (empty when it "
        "held them already)",
    ),
    ("bench_infer_s", "bench: seconds of the timed inferences (warm-up included), as the host waited for them"),
    ("bench_energy_s", "bench: seconds of the idle capture and the energy windows"),
    ("train_seconds", "training wall time of the network (0 when it came from the cache in an earlier run)"),
    ("case_seconds", "wall time of this case"),
    ("dataset", "dataset name (synthetic-har is generated, not recorded)"),
    ("dataset_generated", "true when the windows are generated"),
    ("split", "paper (pooled 75/25) or subjects (official)"),
    ("profile", "training profile"),
    ("seed", "seed of data, split, training and calibration"),
    ("board", "board profile"),
    ("tensorflow", "TensorFlow version"),
    ("tf_keras", "tf_keras version"),
    ("tflite_micro", "tflite-micro (host TFLM) version"),
    ("ai_edge_litert", "ai-edge-litert version"),
    ("esp_idf", "ESP-IDF version reported by the firmware"),
    ("esp_tflite_micro", "esp-tflite-micro version reported by the firmware"),
    ("firmware_hash", "firmware ELF sha256 reported by the firmware"),
    (
        "bench_port",
        "bench: the serial port of the board that ran the case (one per xdist worker with --port a,b; an rfc2217:// URL for a labgrid place)",
    ),
    ("bench_mac", "bench: the factory MAC of that board, from its boot report (virtual boards: 02:00:<pid>)"),
    ("git_rev", "tinyhil git revision (+dirty)"),
    (
        "settings_key",
        "hash of every setting that changes this row's figures (study, board; bench and energy for bench rows)",
    ),
    ("run_started", "UTC start of the run"),
]
COLUMN_NAMES = [c for c, _ in COLUMNS]
PROPERTY_PREFIX = "tinyhil."


def format_value(value) -> str:
    """CSV text for a value: empty for None, lower-case booleans, compact floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def cell_number(value: str | None) -> float | None:
    """A CSV cell as a number; None for an empty or non-numeric cell."""
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def build_row(case, art, outcome, study, board, env: dict, seconds: float) -> dict:
    """Assembles one CSV row (column -> value) from a finished case.

    Args:
        case: The matrix cell (:class:`tinyhil.plugins.matrix.Case`).
        art: Its :class:`tinyhil.models.pipeline.CaseArtifacts`.
        outcome: The target's :class:`tinyhil.plugins.targets.Outcome`.
        study: The run's :class:`tinyhil.models.pipeline.Study`.
        board: The :class:`tinyhil.models.boards.Board` judged against.
        env: Host environment (versions, git revision, start time) plus any device report.
        seconds: Wall time of the case.
    """
    v, info, cfg, ds = outcome.verdict, art.info, study.config, study.dataset
    row = {
        "case_id": case.id,
        "network": case.network,
        "family": art.spec.family,
        "technique": case.technique,
        "steps": " > ".join(art.conversion.steps),
        "compression_mode": cfg.compression_mode,
        "compression_notes": "; ".join(f"{k}={v}" for k, v in sorted(art.conversion.meta.items())) or None,
        "target": case.target,
        "status": v.status,
        "reason": " | ".join(line for line in v.reason.splitlines() if line.strip()),
        "fits": v.fits,
        "runs": v.runs,
        "model_bytes": info.model_bytes if info else None,
        "params": info.params if info else art.trained.meta.get("params"),
        "macs": info.macs if info else None,
        "ops": info.op_summary if info else None,
        "input_dtype": info.input_dtype if info else None,
        "weight_dtypes": info.weight_dtypes if info else None,
        "fit_budget_source": "estimated" if board.budget_is_estimate else "measured",
        "acc_keras": art.trained.meta.get("keras_accuracy"),
        "train_seconds": 0.0 if art.trained.from_cache else art.trained.meta.get("train_seconds"),
        "case_seconds": round(seconds, 3),
        "dataset": ds.name,
        "dataset_generated": ds.generated,
        "split": ds.split,
        "profile": cfg.profile,
        "seed": cfg.seed,
        "board": board.name,
    }
    row.update(outcome.figures)
    row.update({k: v for k, v in env.items() if k in COLUMN_NAMES})
    unknown = set(row) - set(COLUMN_NAMES)
    if unknown:
        raise ValueError(f"columns not in plugins/report/columns.py COLUMNS: {sorted(unknown)}")
    return row


def derive_energy_savings(rows: list[dict]) -> list[dict]:
    """Fills ``energy_saving_pct`` (the paper's Fig. 4) against the lite model of the same network.

    Compares net energies of rows with the same network, target, board and energy
    source; a row without a lite counterpart keeps an empty cell.
    """
    base = {
        (r["network"], r["target"], r["board"], r["energy_source"]): float(r["energy_mj_net"])
        for r in rows
        if r["technique"] == "lite" and r.get("energy_mj_net")
    }
    for r in rows:
        ref = base.get((r["network"], r["target"], r["board"], r["energy_source"]))
        if ref and r.get("energy_mj_net") and r["technique"] != "lite":
            r["energy_saving_pct"] = format_value(100.0 * (1.0 - float(r["energy_mj_net"]) / ref))
    return rows
