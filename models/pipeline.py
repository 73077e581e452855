"""One case, as data: network spec -> trained model -> compressed .tflite -> inspection -> export.

:class:`Study` holds what the cases of one run share (the dataset, the trained models) so
that each network trains once per run, and on disk once per content hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from models.cache import DEFAULT_CACHE_DIR
from models.compression import Conversion, ConversionContext, convert, parse_technique, representative_windows
from models.datasets import Dataset, load_dataset
from models.export import ExportInfo, export_c
from models.inspection import ModelInfo, inspect_tflite
from models.networks import NETWORKS, NetworkSpec, get_network
from models.training import PROFILES, TrainedModel, library_versions, train


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
        if network not in self._trained:
            c = self.config
            extra = {"progress": self.progress} if self.progress else {}
            self._trained[network] = train(get_network(network), self.dataset, c.profile, c.seed, c.cache_dir, **extra)
        return self._trained[network]

    def artifacts(self, network: str, technique: str, export_dir: Path | None = None) -> CaseArtifacts:
        """Builds (or takes from the cache) one case's model and files.

        Args:
            network: Table 1 id.
            technique: Registered technique.
            export_dir: If given, the .tflite and the C pair are written there.

        Raises:
            UnknownNameError: for an unknown network or technique.
        """
        spec = get_network(network)
        steps = parse_technique(technique)
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
            profile=PROFILES.get(c.profile),
            seed=c.seed,
            teacher=lambda: self.trained(teacher_id).model,
            key_extras={"teacher": self.trained(teacher_id).key} if distills else {},
        )
        conv = convert(technique, tm.model, tm.key, ctx, c.cache_dir, label=network, steps=steps)
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
        from models.tflm import QuantParams, tflm_version

        out_dir.mkdir(parents=True, exist_ok=True)
        tfl = out_dir / f"{art.key}.tflite"
        tfl.write_bytes(art.conversion.tflite)
        info, ds, v = art.info, self.dataset, library_versions()
        export = ExportInfo(
            art.spec.id,
            art.technique,
            ds.input_shape,
            ds.n_classes,
            QuantParams(info.input_dtype, *info.input_quant),
            QuantParams(info.output_dtype, *info.output_quant),
            ds.standardizer.mean,
            ds.standardizer.std,
            generator=f"tensorflow {v['tensorflow']}, tf_keras {v['tf_keras']}, tflite-micro {tflm_version()}, "
            f"dataset {ds.name} ({ds.split} split, seed {self.config.seed}), profile {self.config.profile}",
        )
        files = {"tflite": tfl}
        files["header"], files["source"] = export_c(art.conversion.tflite, export, out_dir / art.key, "g_model")
        (out_dir / f"{art.key}.json").write_text(
            json.dumps({"training": art.trained.meta, "conversion_error": art.conversion.error}, indent=1)
        )
        return files
