"""Every option's resolved value as a typed attribute, named like the option (``--virtual-baud``
-> ``virtual_baud``), so a misspelt option is an attribute error a linter or type checker
reads, not a key error halfway through a run."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinyhil.models.boards import Board


@dataclass(frozen=True)
class OptionValues:
    """The value of every option (:data:`tinyhil.plugins.settings.table.OPTIONS`) after resolution:
    names looked up (``board`` is the :class:`Board`, ``networks`` and ``techniques`` are
    expanded), folders and files are Paths (None where the option is empty), flags are bools.
    Each option's fixture hands out its attribute here."""

    # study
    networks: tuple[str, ...]
    networks_from: str
    techniques: tuple[str, ...]
    compression_mode: str
    teacher: str
    dataset: str
    data_dir: Path | None
    split: str
    profile: str
    train_jobs: int
    seed: int
    board: Board
    model_cache: Path
    # report
    report_dir: Path
    resume: bool
    update_expectations: bool
    expectations_dir: Path
    # regression
    baseline: Path | None
    tol_accuracy: float
    tol_arena: float
    tol_model: float
    tol_latency: float
    tol_energy: float
    # bench
    virtual_board: bool
    labgrid_places: str
    labgrid_coordinator: str
    tflm_source: Path | None
    esp_nn_source: Path | None
    host_build_bits: str
    virtual_baud: int
    virtual_fault: str
    device_windows: int | str
    inferences: int
    warmup: int
    hil_retries: int
    device_timeout: float
    min_agreement: float
    max_disagreement: float
    agreement_confidence: float
    model_ids: str
    save_traces: bool
    # energy
    energy: str
    daq_device: str
    daq_shunt_channel: str
    daq_supply_channel: str
    daq_shunt_range: float
    daq_supply_range: float
    daq_marker_channel: str
    daq_trigger: str
    daq_trigger_source: str
    shunt_ohms: float
    supply_volts: float
    sample_rate: float
    pre_roll_ms: float
    idle_ms: int
    timing_rule: str
    energy_tolerance: float
    replay_dir: Path | None

    @classmethod
    def from_names(cls, values: dict[str, Any]) -> OptionValues:
        """From option name (``virtual-baud``) -> resolved value, one entry per option.

        Raises:
            TypeError: when an option of the table has no attribute here, or the other way round.
        """
        given = {name.replace("-", "_"): value for name, value in values.items()}
        declared = {f.name for f in fields(cls)}
        if given.keys() != declared:
            raise TypeError(
                "the option table and OptionValues disagree: "
                f"options without an attribute {sorted(given.keys() - declared)}, "
                f"attributes without an option {sorted(declared - given.keys())}"
            )
        return cls(**given)
