"""The run's settings: every option's typed value, resolved and cross-checked once.

:func:`build_settings` turns the parsed options into one frozen :class:`Settings`
object: names are looked up in their registries (board, dataset, networks,
techniques), combinations are checked (a simulated meter needs the virtual board),
and the objects the pipeline, the targets and the reports take are built from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tinyhil.models.boards import Board, get_board
from tinyhil.models.cache import content_key
from tinyhil.models.compression import EXTENDED_SET, PAPER_SET, flatbuffer_steps, parse_technique, standalone
from tinyhil.models.datasets import DATASETS, load_dataset, load_windows
from tinyhil.models.datasets.npz import is_npz
from tinyhil.models.errors import TinyhilError, UnknownNameError
from tinyhil.models.model_files import is_flatbuffer_network, is_model_file, register_model_file
from tinyhil.models.networks import NETWORKS, check_builders, load_builders
from tinyhil.models.pipeline import StudyConfig
from tinyhil.plugins.bench.link.protocol import valid_model_id
from tinyhil.plugins.bench.measure.agreement import AgreementTest
from tinyhil.plugins.bench.measure.energy.settings import MeterSettings
from tinyhil.plugins.bench.measure.steps import HilSettings
from tinyhil.plugins.report.baseline import Tolerances
from tinyhil.plugins.report.expectations import DEFAULT_DIR as DEFAULT_EXPECTATIONS_DIR
from tinyhil.plugins.settings.option_values import OptionValues

TECHNIQUE_SETS = {"paper": PAPER_SET, "extended": EXTENDED_SET, "all": PAPER_SET + EXTENDED_SET}


class SettingsError(TinyhilError):
    """An option value that cannot be used; the message names the option and the fix."""


def split_ports(port: str | None) -> tuple[str, ...]:
    """``--port`` as a tuple: one port, or several separated by commas."""
    return tuple(p.strip() for p in port.split(",")) if port else ()


@dataclass(frozen=True)
class Settings:
    """Everything the options decide, resolved once at configure time.

    Attributes:
        options: Every option's resolved value, one typed attribute each
            (``options.device_windows``); what the option fixtures hand out
            (``--board`` gives the :class:`Board`, paths are Paths).
        study: What the pipeline shares across cases.
        board: The board profile the budgets come from (the first of ``boards``).
        networks: Network ids, in matrix order.
        techniques: Technique ids, in matrix order (split into steps in standalone mode).
        report_dir: Where the reports go.
        hil: Bench settings of the ESP32 target.
        meter: Energy meter settings.
        tolerances: Regression tolerances against ``--baseline``.
        port: pytest-embedded's ``--port`` (a board on the bench), or None.
        boards: Every board of ``--board`` (``esp32-wroom-32,esp32-wroom-32-ram``): the board is
            then an axis of the matrix; empty means ``(board,)``.
    """

    options: OptionValues
    study: StudyConfig
    board: Board
    networks: tuple[str, ...]
    techniques: tuple[str, ...]
    report_dir: Path
    hil: HilSettings
    meter: MeterSettings
    tolerances: Tolerances
    port: str | None = None
    boards: tuple[Board, ...] = ()
    board_ports: tuple[tuple[str, str], ...] = ()  # (board name, port) of --port name=port,…

    def port_of_board(self, name: str) -> str | None:
        """The serial port ``--port name=port,…`` gives a board of the run, or None."""
        return dict(self.board_ports).get(name)

    @property
    def all_boards(self) -> tuple[Board, ...]:
        return self.boards or (self.board,)

    @property
    def board_axis(self) -> bool:
        """True when the matrix runs every case on several boards (``--board a,b``)."""
        return len(self.all_boards) > 1

    def board_named(self, name: str) -> Board:
        """The run's board of that name (the first board for "", a case of a one-board run)."""
        return next((b for b in self.all_boards if b.name == name), self.board)

    def techniques_for(self, network: str) -> list[str]:
        """The techniques a network's cases run: all selected ones, or for a ready .tflite
        ``as_is`` and the selected ones that work on a flatbuffer (``lut4``)."""
        if not is_flatbuffer_network(NETWORKS.get(network)):
            return list(self.techniques)
        return list(dict.fromkeys(["as_is", *(t for t in self.techniques if flatbuffer_steps(t))]))

    @property
    def ports(self) -> tuple[str, ...]:
        """The boards of ``--port``: one, or several separated by commas (one per xdist worker)."""
        return split_ports(self.port)

    @property
    def virtual_board(self) -> bool:
        return self.options.virtual_board

    @property
    def firmware_host(self) -> bool:
        """True when the virtual board is the firmware's own code built for Linux (``--tflm-source``)."""
        return self.options.tflm_source is not None

    @property
    def places(self) -> tuple[str, ...]:
        """The labgrid places of ``--labgrid-places`` (one board each)."""
        return split_ports(self.options.labgrid_places)

    @property
    def board_configured(self) -> bool:
        """True when hil cases have something to run on: the virtual board, a port or a labgrid place."""
        return self.virtual_board or bool(self.port) or bool(self.places)

    def figures_key(self, marker: str, technique: str, board: Board | None = None) -> str:
        """A hash of every setting that changes the figures of a case with this marker and technique.

        The study's settings for every case (the teacher only where the technique distills);
        the bench and energy settings too for ``hil`` cases. Recorded in each row
        (``settings_key``) and compared by ``--resume``.
        """
        c = self.study
        distills = any(step.technique.name == "distill" for step in parse_technique(technique))
        study = {**asdict(c), "data_dir": str(c.data_dir or ""), "cache_dir": None}
        if not distills:
            del study["teacher"]
        inputs: dict[str, Any] = {"study": study, "board": asdict(board or self.board)}
        if marker == "hil":
            hil = asdict(self.hil)
            del hil["retries"], hil["timeout_s"]  # how hard to try, not what is measured
            o = self.options
            inputs.update(hil=hil, meter=asdict(self.meter), fault=o.virtual_fault)
            if self.firmware_host:  # which TFLM and kernels the host build runs
                inputs.update(firmware_host=[str(o.tflm_source), str(o.esp_nn_source), str(o.host_build_bits)])
        return content_key(inputs)[:16]

    def resume_values(self, marker: str, technique: str, board: Board | None = None) -> dict[str, Any]:
        """What a kept row of a case must hold for ``--resume`` to skip the case."""
        c = self.study
        board = board or self.board
        return {
            "settings_key": self.figures_key(marker, technique, board),
            "dataset": c.dataset,
            "split": c.split,
            "profile": c.profile,
            "seed": c.seed,
            "board": board.name,
            "compression_mode": c.compression_mode,
        }


def expand_networks(raw: str) -> list[str]:
    """Network ids from ``--networks``: ids, family names, ``all``, or model files (.tflite, .keras, .h5).

    Raises:
        SettingsError: for an unknown name or an empty selection.
    """
    families: dict[str, list[str]] = {}
    for net in NETWORKS.names():
        families.setdefault(NETWORKS.get(net).family, []).append(net)
    known = NETWORKS.names()
    out: list[str] = []
    for token in _tokens(raw):
        if is_model_file(token):
            try:
                out.append(register_model_file(token).id)
            except TinyhilError as e:
                raise SettingsError(str(e)) from None
        elif token == "all":
            out += known
        elif token in families:
            out += families[token]
        elif token in known:
            out.append(token)
        else:
            choices = ", ".join(sorted(known) + sorted(families) + ["all"])
            raise SettingsError(f"--networks: unknown network {token!r}; known networks: {choices}")
    if not out:
        raise SettingsError(f"--networks selects nothing; give at least one of: {', '.join(known)}")
    return list(dict.fromkeys(out))


def expand_techniques(raw: str, mode: str) -> list[str]:
    """Technique ids from ``--techniques``, each parsed once; standalone mode splits pipelines.

    Raises:
        SettingsError: for an unknown step, a malformed pipeline or an empty selection.
    """
    out: list[str] = []
    for token in _tokens(raw):
        ids = TECHNIQUE_SETS.get(token, [token])
        for tid in ids:
            try:
                parse_technique(tid)
            except TinyhilError as e:
                raise SettingsError(
                    f"--techniques: {e}; or one of the sets {', '.join(TECHNIQUE_SETS)}; "
                    "join steps with +, as in prune50+full_int"
                ) from None
            except ValueError as e:
                raise SettingsError(f"--techniques: {e}") from None
        out += ids
    if not out:
        raise SettingsError(f"--techniques selects nothing; give technique ids or one of: {', '.join(TECHNIQUE_SETS)}")
    return standalone(out) if mode == "standalone" else list(dict.fromkeys(out))


def _tokens(raw: str) -> list[str]:
    return [t.strip() for t in raw.split(",") if t.strip()]


def _path(raw: str) -> Path | None:
    return Path(raw).expanduser() if raw else None


def _model_ids(raw: str) -> dict[str, str]:
    """``net=id,net=id`` from ``--model-ids``, each id of the form the firmware accepts."""
    pairs = {}
    for token in _tokens(raw):
        net, sep, model_id = token.partition("=")
        if not sep or not valid_model_id(model_id.strip()):
            raise SettingsError(
                f"--model-ids: {token!r} is not network=id with an id of 1-31 characters of A-Z a-z 0-9 . _ -"
            )
        pairs[net.strip()] = model_id.strip()
    return pairs


def _check_report_dir(path: Path) -> None:
    """Creates ``path`` and writes a probe there, so an unusable folder stops the run before any case."""
    if path.exists() and not path.is_dir():
        raise SettingsError(f"--report-dir {path} is a file; give a folder (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".tinyhil-write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise SettingsError(
            f"--report-dir {path} cannot be written ({e.strerror or e}); give a folder you can write to"
        ) from None
    for name in ("results.csv", "junit.xml"):
        if (path / name).is_dir():
            raise SettingsError(
                f"--report-dir {path}: {path / name} is a folder, where the run writes its {name}; "
                "remove it or give another --report-dir"
            )


def _check_model_cache(path: Path) -> None:
    """A cache path that is a file stops the run before any case (a read-only folder is fine:
    it serves the entries it holds)."""
    if path.exists() and not path.is_dir():
        raise SettingsError(
            f"--model-cache {path} is a file; give a folder (it is created if missing), or remove the file"
        )


def _check_labgrid(values: dict[str, Any], port: str | None) -> None:
    places = split_ports(values["labgrid-places"])
    if not places:
        return
    if not all(places) or len(set(places)) != len(places):
        raise SettingsError(
            f"--labgrid-places {values['labgrid-places']!r}: distinct place names separated by commas, one per xdist worker"
        )
    if port or values["virtual-board"] or values["tflm-source"]:
        raise SettingsError(
            "--labgrid-places gives the boards: drop --port (and ESPPORT), --virtual-board and --tflm-source"
        )


def _check_host_build(values: dict[str, Any], port: str | None) -> None:
    """``--tflm-source`` (and ``--esp-nn-source``) name folders the firmware host build can use;
    the firmware host build is a virtual board."""
    from tinyhil.plugins.firmware_tools.host_build import BuildError, check_folders

    tflm, esp_nn = _path(values["tflm-source"]), _path(values["esp-nn-source"])
    values["tflm-source"], values["esp-nn-source"] = tflm, esp_nn
    if esp_nn and not tflm:
        raise SettingsError("--esp-nn-source goes with --tflm-source (the esp-tflite-micro folder to build against)")
    if not tflm:
        return
    if port:
        raise SettingsError(
            f"--tflm-source runs the firmware built for Linux, not a board: drop --port {port} or --tflm-source"
        )
    try:
        check_folders(tflm.resolve(), esp_nn.resolve() if esp_nn else None)
    except BuildError as e:
        raise SettingsError(str(e)) from None
    values["virtual-board"] = True


def _check_energy(values: dict[str, Any]) -> None:
    kind, virtual = values["energy"], values["virtual-board"]
    if kind == "simulated" and not virtual:
        raise SettingsError(
            "--energy simulated only goes with --virtual-board: a real board needs --energy nidaqmx or joulescope"
        )
    if kind == "nidaqmx" and virtual:
        raise SettingsError("--energy nidaqmx measures a real board: drop --virtual-board, or use --energy simulated")
    if kind == "joulescope" and virtual:
        raise SettingsError(
            "--energy joulescope measures a real board: drop --virtual-board, or use --energy simulated"
        )
    if values["min-agreement"] > 1:
        raise SettingsError(f"--min-agreement is a share from 0 to 1, got {values['min-agreement']:g}")
    if kind == "replay" and not values["replay-dir"]:
        raise SettingsError("--energy replay needs --replay-dir=FOLDER (traces written by --save-traces)")


def build_settings(values: dict[str, Any], port: str | None = None) -> Settings:
    """Resolves the parsed option values (option name -> typed value) into :class:`Settings`.

    Raises:
        SettingsError: naming the option, the value and what it accepts.
    """
    values = dict(values)
    _check_port_list(port)
    boards = _look_up_names(values)
    board_ports = _board_ports(port, boards)
    if len(boards) > 1 and values["labgrid-places"]:
        raise SettingsError(
            f"--board {values['board']!r}: several boards run offline, on the virtual boards and on a bench "
            "(--port NAME=PORT,…); a labgrid farm takes one board a run: run once per board"
        )
    networks = expand_networks(values["networks"])
    techniques = expand_techniques(values["techniques"], values["compression-mode"])
    _check_labgrid(values, port)
    _check_host_build(values, port)
    if values["tflm-source"] and not values["esp-nn-source"]:
        # the firmware host build then runs TFLM's reference kernels
        boards = tuple(b.with_kernels("reference") for b in boards)
    board = boards[0]
    _check_energy(values)
    values.update(board=board, networks=tuple(networks), techniques=tuple(techniques), **_paths(values))
    _check_report_dir(values["report-dir"])
    _check_model_cache(values["model-cache"])
    _check_user_networks(networks, values)
    options = OptionValues.from_names(values)
    study, meter, hil = _study_config(options), _meter_settings(options), _hil_settings(options)
    return Settings(
        options=options,
        study=study,
        board=board,
        networks=options.networks,
        techniques=options.techniques,
        report_dir=options.report_dir,
        hil=hil,
        meter=meter,
        tolerances=_tolerances(options),
        port=port,
        boards=boards,
        board_ports=board_ports,
    )


def _board_ports(port: str | None, boards: tuple[Board, ...]) -> tuple[tuple[str, str], ...]:
    """``--port esp32s3=/dev/ttyACM0,esp32=/dev/ttyUSB0``: each board of ``--board`` on its port,
    named by the board's name or its chip. Several boards on a bench need it (a plain list of
    ports says nothing of which board is where); one board keeps taking ``--port PORT``.

    Raises:
        SettingsError: a name that is no board of the run (or two boards of that chip), a board
            without a port, or several boards given plain ports.
    """
    entries = split_ports(port)
    named = [e for e in entries if "=" in e]
    if not named:
        if entries and len(boards) > 1:
            example = ",".join(f"{b.chip}=/dev/ttyUSB{i}" for i, b in enumerate(boards))
            raise SettingsError(
                f"--port {port!r} with several boards: say which board is on which port, --port {example}"
            )
        return ()
    if len(named) != len(entries):
        raise SettingsError(f"--port {port!r}: give every port as BOARD=PORT, or a single port for a single board")
    out: dict[str, str] = {}
    for entry in named:
        name, _, where = (x.strip() for x in entry.partition("="))
        matches = [b for b in boards if name in (b.name, b.chip)]
        if len(matches) != 1 or not where:
            known = ", ".join(sorted({b.name for b in boards} | {b.chip for b in boards}))
            why = "names two boards of this run" if len(matches) > 1 else "is no board of this run"
            raise SettingsError(f"--port {entry!r}: {name!r} {why}; name a board or a chip of --board: {known}")
        if matches[0].name in out:
            raise SettingsError(f"--port {port!r}: {matches[0].name} is given two ports")
        out[matches[0].name] = where
    missing = [b.name for b in boards if b.name not in out]
    if missing:
        raise SettingsError(f"--port {port!r}: no port for {', '.join(missing)}; give each board of --board its port")
    return tuple(out.items())


def _check_port_list(port: str | None) -> None:
    if port and "," in port:
        ports = split_ports(port)
        if not all(ports) or len(set(ports)) != len(ports):
            raise SettingsError(
                f"--port {port!r}: several boards are written as distinct ports separated by commas, "
                "one per xdist worker (--port /dev/ttyUSB0,/dev/ttyUSB1 -n 2)"
            )


def _board(name: str) -> Board:
    """``--board``: a built-in profile, or a file of one's own; an unknown name says both."""
    try:
        return get_board(name)
    except UnknownNameError as e:
        raise SettingsError(
            f"tinyhil: --board: {e}; or give a board of your own as --board=my-board.json "
            "(the keys of tinyhil.models.boards' schema, as in any file of models/data/boards)"
        ) from None


def _look_up_names(values: dict[str, Any]) -> tuple[Board, ...]:
    """Looks up the boards, dataset and teacher, and loads ``--networks-from`` (whose networks
    ``--networks`` may then name); returns the boards."""
    try:
        boards = _boards(values["board"], values)
        if is_npz(values["dataset"]):
            load_windows(values["dataset"])  # a wrong file or layout stops the run here, not per case
        else:
            DATASETS.get(values["dataset"])
        if values["teacher"] != "largest":
            NETWORKS.get(values["teacher"])
    except TinyhilError as e:
        raise SettingsError(str(e)) from None
    if values["networks-from"]:
        try:
            load_builders(Path(values["networks-from"]))
        except TinyhilError as e:
            raise SettingsError(str(e)) from None
    return boards


def _boards(raw: str, values: dict[str, Any]) -> tuple[Board, ...]:
    """``--board``: one board, or several separated by commas (the board becomes an axis of the
    matrix); each a built-in profile or a file. Several boards run offline cases, and bench cases
    on the virtual boards (one per board); a bench of real boards takes one board a run."""
    names = [n.strip() for n in str(raw).split(",")]
    if not all(names):
        raise SettingsError(f"--board {raw!r}: give board names separated by commas, none empty")
    boards = tuple(_board(n) for n in names)
    seen: dict[str, str] = {}
    for n, b in zip(names, boards, strict=True):
        if b.name in seen:
            raise SettingsError(f"--board {raw!r}: {seen[b.name]!r} and {n!r} are the same board, {b.name}")
        seen[b.name] = n
    return boards


def _check_user_networks(networks: list[str], values: dict[str, Any]) -> None:
    """Builds the selected networks of ``--networks-from`` once on the run's dataset, so that a
    builder that raises or returns no usable model stops the run here, not in every case."""
    if not values["networks-from"]:
        return
    try:
        ds = load_dataset(values["dataset"], values["split"], values["data-dir"], values["seed"])
        check_builders(networks, ds.input_shape, ds.n_classes)
    except TinyhilError as e:
        raise SettingsError(str(e)) from None


def _paths(values: dict[str, Any]) -> dict[str, Path | None]:
    """The folder and file options as Paths; an empty one is None (``--expectations-dir``: the shipped folder)."""
    return {
        "data-dir": _path(values["data-dir"]),
        "model-cache": Path(values["model-cache"]),
        "report-dir": Path(values["report-dir"]),
        "expectations-dir": _path(values["expectations-dir"]) or DEFAULT_EXPECTATIONS_DIR,
        "baseline": _path(values["baseline"]),
        "replay-dir": _path(values["replay-dir"]),
    }


def _study_config(o: OptionValues) -> StudyConfig:
    return StudyConfig(
        dataset=o.dataset,
        split=o.split,
        data_dir=o.data_dir,
        profile=o.profile,
        seed=o.seed,
        teacher=o.teacher,
        compression_mode=o.compression_mode,
        cache_dir=o.model_cache,
    )


def _meter_settings(o: OptionValues) -> MeterSettings:
    pre_roll_s = o.pre_roll_ms / 1000
    return MeterSettings(
        kind=o.energy,
        shunt_ohms=o.shunt_ohms,
        supply_volts=o.supply_volts,
        sample_rate_hz=o.sample_rate,
        device=o.daq_device,
        shunt_channel=o.daq_shunt_channel,
        supply_channel=o.daq_supply_channel,
        shunt_range_v=o.daq_shunt_range,
        supply_range_v=o.daq_supply_range,
        marker_channel=o.daq_marker_channel,
        trigger=o.daq_trigger,
        trigger_source=o.daq_trigger_source,
        pre_roll_s=pre_roll_s,
        post_roll_s=pre_roll_s,
        replay_dir=str(o.replay_dir or ""),
        timing_rule=o.timing_rule,
        tolerance=o.energy_tolerance,
        idle_ms=o.idle_ms,
    )


def _hil_settings(o: OptionValues) -> HilSettings:
    return HilSettings(
        device_windows=o.device_windows,
        inferences=o.inferences,
        warmup=o.warmup,
        retries=o.hil_retries,
        timeout_s=o.device_timeout,
        seed=o.seed,
        min_agreement=o.min_agreement,
        agreement=AgreementTest(o.max_disagreement, o.agreement_confidence),
        model_ids=_model_ids(o.model_ids),
    )


def _tolerances(o: OptionValues) -> Tolerances:
    return Tolerances(
        accuracy=o.tol_accuracy,
        arena=o.tol_arena,
        model=o.tol_model,
        latency=o.tol_latency,
        energy=o.tol_energy,
    )
