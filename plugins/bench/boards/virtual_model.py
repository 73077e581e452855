"""The virtual board's ``model`` command: load a model from the partition or the last upload."""

from __future__ import annotations

from tinyhil.plugins.bench.boards.virtual_core import BoardCore
from tinyhil.plugins.bench.boards.virtual_memory import PLACES, DoesNotFit
from tinyhil.plugins.bench.boards.virtual_runner import LoadedModel, LoadRefused, load_model
from tinyhil.plugins.bench.link.protocol import DEFAULT_MODEL_ID, crc32


class ModelCommands(BoardCore):
    """``model <partition|upload> <len> <crc32> <arena|auto> <flash|ram>``, as the firmware's
    ``model_runner.cc`` loads: the previous model is freed first, whatever comes of the new one."""

    def cmd_model(self, source, length, crc, arena, place):
        n, want = int(length), int(crc, 16)
        if n <= 0:
            raise ValueError(f"length must be > 0, got {n}")
        if arena != "auto" and int(arena) <= 0:
            raise ValueError(f"arena must be auto or > 0 bytes, got {arena}")
        self._unload()
        try:
            data = self._model_bytes(source, n)
            if len(data) < n or crc32(data) != want:
                self.error(f"model: crc mismatch: got {crc32(data):08x} expected {want:08x}")
                return
            if place not in PLACES:
                raise ValueError(f"place must be flash or ram, got {place}")
            arena_bytes = self.heap.place_model(n, place, arena)
            loaded = load_model(data, arena_bytes, self.board.simulation, self.board.kernels)
        except DoesNotFit as e:
            self.error(str(e))
            return
        except LoadRefused as e:
            for line in e.log:
                self.send(line + "\r")  # MicroPrintf ends its lines in \r\n: the console makes it \r\r\n
            self.error(e.error)
            return
        self.heap.take(arena_bytes)
        self.loaded = loaded
        self.in_place_upload = source == "upload" and place == "flash"  # runs from the upload buffer
        self._report_model(n, arena_bytes, loaded)

    def _unload(self) -> None:
        self.loaded = self.input = None  # as the firmware: a new model needs a new input
        self.in_place_upload = False
        self.heap.free_model()
        self.model_id = DEFAULT_MODEL_ID  # a new model is a new case: not the previous case's id

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
