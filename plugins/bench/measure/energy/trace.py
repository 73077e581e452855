"""A capture: shunt and supply voltages and the marker, and its ``.npz`` / ``.csv`` files."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class EnergyError(Exception):
    """A trace that cannot give an energy figure, or a meter that cannot capture one."""


@dataclass
class Trace:
    """A capture: shunt and supply voltages and the marker, at a fixed sample rate.

    Attributes:
        sample_rate_hz: Samples per second per channel.
        v_shunt: Volts across the shunt.
        v_dut: Volts at the DUT's supply pin (after the shunt).
        marker: Marker samples: bool (digital line) or volts (analog input).
        meta: Shunt ohms, source (measured/replayed/simulated), channel names, case id.
    """

    sample_rate_hz: float
    v_shunt: np.ndarray
    v_dut: np.ndarray
    marker: np.ndarray
    meta: dict = field(default_factory=dict)

    def save(self, path: Path) -> Path:
        """Writes ``.npz`` (default) or ``.csv`` (columns t_s, v_shunt_v, v_dut_v, marker)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".csv":
            with open(path, "w", newline="") as f:
                f.write(f"# tinyhil trace {json.dumps({'sample_rate_hz': self.sample_rate_hz, **self.meta})}\n")
                w = csv.writer(f)
                w.writerow(["t_s", "v_shunt_v", "v_dut_v", "marker"])
                t = np.arange(len(self.v_shunt)) / self.sample_rate_hz
                for row in zip(t, self.v_shunt, self.v_dut, self.marker.astype(float), strict=True):
                    w.writerow([f"{v:.9g}" for v in row])
        else:
            np.savez_compressed(
                path,
                v_shunt=self.v_shunt,
                v_dut=self.v_dut,
                marker=self.marker,
                sample_rate_hz=self.sample_rate_hz,
                meta=json.dumps(self.meta),
            )
        return path

    @classmethod
    def load(cls, path: Path) -> Trace:
        """Reads a trace written by :meth:`save` (or by hand in the same CSV layout).

        Raises:
            EnergyError: naming the file and what is wrong with it.
        """
        path = Path(path)
        if not path.exists():
            raise EnergyError(f"trace {path} does not exist; record it on the bench with --save-traces")
        try:
            if path.suffix == ".csv":
                text = path.read_text()
                first = text.splitlines()[0] if text else ""
                meta = json.loads(first.split("tinyhil trace", 1)[1]) if first.startswith("# tinyhil trace") else {}
                body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
                data = np.genfromtxt(io.StringIO(body), delimiter=",", names=True)
                rate = float(meta.pop("sample_rate_hz", 0) or 1.0 / np.median(np.diff(data["t_s"])))
                return cls(rate, data["v_shunt_v"], data["v_dut_v"], data["marker"], meta)
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    float(z["sample_rate_hz"]), z["v_shunt"], z["v_dut"], z["marker"], json.loads(str(z["meta"]))
                )
        except (KeyError, ValueError, OSError, IndexError) as e:
            raise EnergyError(
                f"trace {path} is not a tinyhil trace ({e}); expected columns t_s,v_shunt_v,v_dut_v,marker"
            ) from None
