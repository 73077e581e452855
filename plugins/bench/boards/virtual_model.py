"""The virtual board's ``model`` command: load a model from the partition or the last upload,
and the boot model (``firmware/PROTOCOL.md``, "Boot"): the last model loaded from the partition,
kept in a file beside the flash file and loaded again at boot, as the firmware keeps it in NVS."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from tinyhil.plugins.bench.boards.virtual_core import BoardCore
from tinyhil.plugins.bench.boards.virtual_memory import PLACES, DoesNotFit
from tinyhil.plugins.bench.boards.virtual_runner import LoadedModel, LoadRefused, load_model
from tinyhil.plugins.bench.link.protocol import DEFAULT_MODEL_ID, crc32, parse_decimal, valid_model_id

BOOT_MODEL_TAG = "tinyhil-boot-model"
BOOT_MODEL_VERSION = "1"


@dataclass(frozen=True)
class BootModel:
    """The model a board loads at boot, as ``model partition <length> <crc> <arena> <place>%`` took it.

    Both virtual boards keep it in ``<flash file>.boot-model``, one line:
    ``tinyhil-boot-model 1 <ready|loading> <id> <len> <crc32 hex> <arena|auto> <flash|ram>``
    (``firmware/host/board_host.cc`` reads and writes the same file).

    Attributes:
        length: Bytes of the partition the model takes.
        crc: Their CRC-32.
        arena: ``auto`` or the arena in bytes, as given.
        place: ``flash`` or ``ram``.
        model_id: The model id ``profile%`` presents.
        loading: Set while the boot loads it; still set at the next boot, the load crashed the board.
    """

    length: int
    crc: int
    arena: str
    place: str
    model_id: str = DEFAULT_MODEL_ID
    loading: bool = False

    def line(self) -> str:
        state = "loading" if self.loading else "ready"
        return f"{BOOT_MODEL_TAG} {BOOT_MODEL_VERSION} {state} {self.model_id} {self.length} {self.crc:08x} {self.arena} {self.place}\n"

    @classmethod
    def parse(cls, text: str) -> BootModel | None:
        """The line's boot model, or None when it is not a line a board wrote."""
        words = text.split()
        if len(words) != 8 or words[:2] != [BOOT_MODEL_TAG, BOOT_MODEL_VERSION] or words[2] not in ("ready", "loading"):
            return None
        length, arena = parse_decimal(words[4]), parse_decimal(words[6])
        try:
            crc = int(words[5], 16)
        except ValueError:
            return None
        if length is None or (words[6] != "auto" and not arena) or words[7] not in PLACES:
            return None
        return cls(length, crc, words[6], words[7], words[3], words[2] == "loading")


class ModelCommands(BoardCore):
    """``model <partition|upload> <len> <crc32> <arena|auto> <flash|ram>``, as the firmware's
    ``model_runner.cc`` loads: the previous model is freed first, whatever comes of the new one.
    ``model`` alone unloads it, and forgets the boot model."""

    def cmd_model(self, *args):
        if not args:  # model%: no model, and none at the next boot either
            self._unload()
            self._forget_boot_model()
            self.send("m-model-unloaded")
            return
        source, length, crc, arena, place = args  # another count: TypeError, bad arguments
        n, want = int(length), int(crc, 16)
        if n <= 0:
            raise ValueError(f"length must be > 0, got {n}")
        if arena != "auto" and int(arena) <= 0:
            raise ValueError(f"arena must be auto or > 0 bytes, got {arena}")
        # the boot model is forgotten before the load (_unload): a load that crashed the board is not tried at boot
        error = self._load(source, n, want, arena, place)
        if error is not None:
            self.error(error)
            return
        if source == "partition":  # an upload's bytes are gone after a reset: only the partition's comes back
            self._remember(BootModel(n, want, "auto" if arena == "auto" else str(int(arena)), place))
        self._report_model(n, self.arena_bytes, self.loaded)

    def _load(self, source: str, n: int, want: int, arena: str, place: str) -> str | None:
        """Loads as ``model`` does, the previous model unloaded first; the error text, or None."""
        self._unload()
        try:
            data = self._model_bytes(source, n)
            if len(data) < n or crc32(data) != want:
                return f"model: crc mismatch: got {crc32(data):08x} expected {want:08x}"
            if place not in PLACES:
                raise ValueError(f"place must be flash or ram, got {place}")
            arena_bytes = self.heap.place_model(n, place, arena)
            loaded = load_model(data, arena_bytes, self.board.simulation, self.board.kernels, self.board.chip)
        except DoesNotFit as e:
            return str(e)
        except LoadRefused as e:
            for line in e.log:
                self.send(line + "\r")  # MicroPrintf ends its lines in \r\n: the console makes it \r\r\n
            return e.error
        self.heap.take(arena_bytes)
        self.loaded, self.arena_bytes = loaded, arena_bytes
        self.in_place_upload = source == "upload" and place == "flash"  # runs from the upload buffer
        return None

    def _unload(self) -> None:
        self.loaded = self.input = None  # as the firmware: a new model needs a new input
        self.in_place_upload = False
        self.heap.free_model()
        self.model_id = DEFAULT_MODEL_ID  # a new model is a new case: not the previous case's id
        if self.boot_model is not None:  # the boot model goes with the model it stands for
            self._forget_boot_model()

    def _model_bytes(self, source: str, n: int) -> bytes:
        """Up to ``n`` bytes of the source (fewer when it holds fewer).

        Raises:
            DoesNotFit: ``n`` is more than the partition holds.
            ValueError: an unknown source.
        """
        if source == "partition":
            return self.partition.read(n)
        if source == "upload":
            return (self.upload or b"")[:n]
        raise ValueError(f"source must be partition or upload, got {source}")

    def _report_model(self, n: int, arena_bytes: int, loaded: LoadedModel) -> None:
        qin, qout = loaded.qin, loaded.qout
        self.send(f"m-model-bytes-{n}")
        self.send(f"m-arena-bytes-{arena_bytes}")
        # tflite-micro's Python runtime has no arena_used_bytes(): both lines give its bisection
        self.send(f"m-arena-used-bytes-{loaded.arena_used_bytes}")
        self.send(f"m-arena-min-bytes-{loaded.arena_used_bytes}")
        self.send(f"m-input-[{qin.dtype},{loaded.input_bytes},{qin.scale:.9g},{qin.zero_point}]")
        self.send(f"m-output-[{qout.dtype},{loaded.output_count},{qout.scale:.9g},{qout.zero_point}]")
        self.send(f"m-heap-free-{self.heap.free_bytes}")
        self.send(f"m-heap-largest-{self.heap.largest_block_bytes}")

    # -- the boot model -----------------------------------------------------------
    @property
    def boot_model_file(self) -> Path:
        return self.partition.path.with_name(self.partition.path.name + ".boot-model")

    def _save_boot_model(self, model: BootModel) -> bool:
        tmp = self.boot_model_file.with_name(self.boot_model_file.name + ".tmp")
        try:
            with open(tmp, "w") as f:
                f.write(model.line())
                f.flush()
                os.fsync(f.fileno())  # written through, as NVS commits before a power cut
            tmp.replace(self.boot_model_file)  # whole, or not at all
        except OSError:
            return False
        return True

    def _read_boot_model(self) -> BootModel | None:
        try:
            return BootModel.parse(self.boot_model_file.read_text())
        except (OSError, UnicodeDecodeError):
            return None

    def _forget_boot_model(self) -> None:
        self.boot_model = None
        self.boot_model_file.unlink(missing_ok=True)

    def _remember(self, model: BootModel) -> None:
        """Keeps the loaded model (from the partition) as the boot model, with the current model id."""
        model = replace(model, model_id=self.model_id, loading=False)
        self.boot_model = model if self._save_boot_model(model) else None
        if self.boot_model is None:  # a log line, not an error: the model is loaded, the next boot will not have it
            self.send("tinyhil: cannot keep the model for the next boot")

    def model_id_changed(self) -> None:
        """``model_id <id>``: the boot model presents the same id after the next boot."""
        if self.boot_model is not None and self.boot_model.model_id != self.model_id:
            self._remember(self.boot_model)

    def load_boot_model(self) -> None:
        """At boot: loads the boot model as ``model partition …`` did, the partition's CRC checked again;
        ``m-boot-model-[…]``, or ``e-[boot model: …]`` and forgotten. A load that crashed the last boot
        (its mark still set) is not tried again."""
        model = self._read_boot_model()
        if model is None:
            self.boot_model_file.unlink(missing_ok=True)  # none, or not a file a board wrote
            return
        if model.loading or model.length == 0 or not valid_model_id(model.model_id):
            shown = model.model_id if valid_model_id(model.model_id) else DEFAULT_MODEL_ID
            self._forget_boot_model()
            self.error(f"boot model: {shown} did not finish loading at the last boot; forgotten")
            return
        self._save_boot_model(replace(model, loading=True))
        error = self._load("partition", model.length, model.crc, model.arena, model.place)
        if error is not None:
            self._forget_boot_model()
            self.error(f"boot model: {error.removeprefix('model: ')}; {model.model_id} forgotten")
            return
        self.model_id = model.model_id
        self._remember(model)
        self.send(f"m-boot-model-[{model.model_id},{model.length},{model.crc:08x},{model.arena},{model.place}]")
