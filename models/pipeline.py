"""One case, as data: network spec -> trained model -> compressed .tflite -> inspection -> export.

:class:`Study` holds what the cases of one run share (the dataset, the trained models) so
that each network trains once per run, and on disk once per content hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tinyhil.models.boards import Board, check_flash
from tinyhil.models.cache import DEFAULT_CACHE_DIR, CacheNotWritable
from tinyhil.models.compression import (
    Conversion,
    ConversionContext,
    convert,
    flatbuffer_steps,
    parse_technique,
    representative_windows,
)
from tinyhil.models.datasets import Dataset, Standardizer, load_dataset
from tinyhil.models.export import ExportInfo, export_c
from tinyhil.models.inspection import ModelInfo, inspect_tflite
from tinyhil.models.model_files import (
    data_fits,
    flatbuffer_model,
    is_flatbuffer_network,
    is_keras_file_network,
    load_keras_file,
)
from tinyhil.models.networks import NETWORKS, NetworkSpec, get_network
from tinyhil.models.training import PROFILES, TrainedModel, library_versions, train, training_recipe
from tinyhil.models.verdict import Verdict


@dataclass(frozen=True)
class StudyConfig:
    """What every case of a run shares.

    Attributes:
        dataset: Registered dataset name.
        split: ``paper`` or ``subjects``.
        data_dir: Where a recorded dataset lives.
        profile: Training profile.
        seed: Seeds data generation, split, training and calibration sampling.
        cache_dir: Cache root for trained models and conversions.
        teacher: Distillation teacher: ``largest`` (the largest network of the same
            family in Table 1) or a network id.
        compression_mode: ``cascading`` or ``standalone`` (recorded with the results).
    """

    dataset: str = "synthetic-har"
    split: str = "paper"
    data_dir: Path | None = None
    profile: str = "quick"
    seed: int = 0
    cache_dir: Path = DEFAULT_CACHE_DIR
    teacher: str = "largest"
    compression_mode: str = "cascading"


def case_key(network: str, technique: str) -> str:
    """``network-technique``: what a case is, whatever the target (the expectations file's key)."""
    return f"{network}-{technique}"


@dataclass
class CaseArtifacts:
    """Everything a target needs to judge one network x technique."""

    spec: NetworkSpec
    technique: str
    trained: TrainedModel
    conversion: Conversion
    info: ModelInfo | None
    files: dict[str, Path] = field(default_factory=dict)
    verdict: Verdict | None = None  # reached before any target: the case deploys nothing

    @property
    def key(self) -> str:
        """``network-technique``: the case id without its target."""
        return case_key(self.spec.id, self.technique)


class Study:
    """Lazily loads the dataset and trains each network at most once per process."""

    def __init__(self, config: StudyConfig, progress=None):
        PROFILES.get(config.profile)  # fail fast on a bad profile
        self.config = config
        self.progress = progress  # receives training progress lines; None: stderr
        self._dataset: Dataset | None = None
        self._trained: dict[str, TrainedModel] = {}

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            c = self.config
            self._dataset = load_dataset(c.dataset, c.split, c.data_dir, c.seed)
        return self._dataset

    def trained(self, network: str) -> TrainedModel:
        """The trained model of ``network``: trained (once, cached), or loaded from the user's file."""
        if network not in self._trained:
            c, spec = self.config, get_network(network)
            if is_flatbuffer_network(spec):
                self._trained[network] = flatbuffer_model(spec)
            elif is_keras_file_network(spec):
                self._trained[network] = load_keras_file(spec, self.dataset)
            else:
                extra = {"progress": self.progress} if self.progress else {}
                self._trained[network] = train(spec, self.dataset, c.profile, c.seed, c.cache_dir, **extra)
        return self._trained[network]

    def artifacts(
        self, network: str, technique: str, export_dir: Path | None = None, board: Board | None = None
    ) -> CaseArtifacts:
        """Builds (or takes from the cache) one case's model and files.

        A case that cannot get its model gets a verdict instead: a ready .tflite larger
        than ``board``'s model partition (judged from its size, before it is read), or a
        read-only cache that lacks the model (a ``convert_error`` naming the cache).

        Args:
            network: Table 1 id.
            technique: Registered technique.
            export_dir: If given, the .tflite and the C pair are written there.
            board: The board the case is judged against (None: no judgement here).

        Raises:
            UnknownNameError: for an unknown network or technique.
        """
        spec = get_network(network)
        steps = parse_technique(technique)
        if board is not None and is_flatbuffer_network(spec):
            too_large = _oversize_file(spec, technique, board)
            if too_large is not None:
                return too_large
        try:
            return self._artifacts(spec, technique, steps, export_dir)
        except CacheNotWritable as e:
            conv = Conversion(technique, None, str(e), 0.0, steps=[s.label for s in steps])
            return CaseArtifacts(spec, technique, _not_available(spec, str(e)), conv, None)

    def _artifacts(self, spec: NetworkSpec, technique: str, steps: list, export_dir: Path | None) -> CaseArtifacts:
        network = spec.id
        tm = self.trained(network)
        ds = self.dataset
        c = self.config
        teacher_id = self.teacher_for(spec)
        distills = any(s.technique.name == "distill" for s in steps)
        ctx = ConversionContext(
            ds.input_shape,
            representative_windows(ds.x_train, c.seed),
            x_train=ds.x_train,
            y_train=ds.y_train,
            spec=spec,
            profile=training_recipe(c.profile, spec),
            seed=c.seed,
            teacher=lambda: self.trained(teacher_id).model,
            key_extras={"teacher": self.trained(teacher_id).key} if distills else {},
        )
        if is_flatbuffer_network(spec):
            # a ready .tflite: no converter; only the steps that work on a flatbuffer
            steps = flatbuffer_steps(technique)
            if steps is None:
                raise ValueError(f"{network} is a .tflite: {technique} needs a Keras model; use as_is or lut<bits>")
        conv = convert(technique, tm, tm.key, ctx, c.cache_dir, label=network, steps=steps)
        if distills:
            conv.meta.setdefault("teacher", teacher_id)
        art = CaseArtifacts(spec, technique, tm, conv, inspect_tflite(conv.tflite, network) if conv.ok else None)
        if export_dir is not None and conv.ok:
            art.files = self.export(art, export_dir)
        return art

    def teacher_for(self, spec: NetworkSpec) -> str:
        """The distillation teacher of ``spec``: ``--teacher`` or the family's largest network."""
        if self.config.teacher != "largest":
            return get_network(self.config.teacher).id
        family = [NETWORKS.get(n) for n in NETWORKS.names() if NETWORKS.get(n).family == spec.family]
        return max(family, key=lambda n: n.size_rank).id

    def export(self, art: CaseArtifacts, out_dir: Path) -> dict[str, Path]:
        """Writes ``<case>.tflite`` and the C source/header pair for the firmware."""
        from tinyhil.models.tflm import QuantParams, tflm_version

        out_dir.mkdir(parents=True, exist_ok=True)
        tfl = out_dir / f"{art.key}.tflite"
        tfl.write_bytes(art.conversion.tflite)
        info, ds, v = art.info, self.dataset, library_versions()
        # a user's model may not take this dataset's inputs: then its inputs go in as they are
        scaling = ds.standardizer if data_fits(info, ds) else Standardizer.identity(info.input_shape[-1])
        export = ExportInfo(
            art.spec.id,
            art.technique,
            info.input_shape[1:],
            info.output_shape[-1],
            QuantParams(info.input_dtype, *info.input_quant),
            QuantParams(info.output_dtype, *info.output_quant),
            scaling.mean,
            scaling.std,
            generator=f"tensorflow {v['tensorflow']}, tf_keras {v['tf_keras']}, tflite-micro {tflm_version()}, "
            f"dataset {ds.name} ({ds.split} split, seed {self.config.seed}), profile {self.config.profile}",
        )
        files = {"tflite": tfl}
        files["header"], files["source"] = export_c(art.conversion.tflite, export, out_dir / art.key, "g_model")
        (out_dir / f"{art.key}.json").write_text(
            json.dumps({"training": art.trained.meta, "conversion_error": art.conversion.error}, indent=1)
        )
        return files


def _not_available(spec: NetworkSpec, why: str) -> TrainedModel:
    """The trained model of a case that never got one: loading it raises ``why``."""

    def load():
        raise RuntimeError(why)

    return TrainedModel(key="", meta={}, from_cache=True, load=load)


def _oversize_file(spec: NetworkSpec, technique: str, board: Board) -> CaseArtifacts | None:
    """A ``flash_overflow`` case for a ready .tflite whose file alone is larger than the board's
    model partition, judged from its size: the file is not read, parsed, cached or exported.

    Only for techniques that keep the flatbuffer as it is (``as_is``); LUT compression
    may bring a large file under the partition, so it is converted and judged as usual.
    """
    steps = flatbuffer_steps(technique) or []
    if not steps or any(s.technique.name != "as_is" for s in steps):
        return None
    path = Path(spec.params["path"])
    size = path.stat().st_size
    flash = check_flash(board, size)
    if flash is None:
        return None
    reason = f"{flash.reason} (judged from the size of {path}: not parsed, converted or exported)"
    conv = Conversion(technique, None, None, 0.0, steps=[s.label for s in steps])
    trained = TrainedModel(
        key=spec.params["sha256"], path=path, meta={"source": str(path)}, from_cache=True, load=path.read_bytes
    )
    return CaseArtifacts(
        spec, technique, trained, conv, ModelInfo(model_bytes=size), verdict=Verdict(flash.status, reason, False, False)
    )
