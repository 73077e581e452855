"""The virtual board's inference commands: ``infer`` in tinyhil's and EEMBC's forms, ``results``, ``opprofile``.

Its figures are the timing model's: tinyhil's ``infer`` reports the simulated cycles of each
run, EEMBC's moves the simulated clock on by them between its two ``m-lap-us``.
"""

from __future__ import annotations

import numpy as np

from tinyhil.plugins.bench.boards.virtual_core import BoardCore
from tinyhil.plugins.bench.link.protocol import (
    InferRequest,
    ProtocolError,
    format_dequantized_results,
    format_results,
    resolve_infer,
)


class InferCommands(BoardCore):
    """``infer``, ``results`` and ``opprofile`` on the loaded model."""

    def cmd_infer(self, *args):
        try:
            request = resolve_infer(args, self.last_input)
        except ProtocolError as e:
            self.error(str(e))
            return None
        if self.loaded is None:
            self.error("infer: no model")
            return None
        if request.form == "eembc":
            return self._infer_eembc(request)
        if self.input is None:
            self.error("infer: no input")
            return None
        return self._infer_tinyhil(request.runs, request.warmup)

    def _infer_tinyhil(self, n: int, w: int) -> bool | None:
        """tinyhil's infer: W warm-ups, then N runs with the cycles of each."""
        if self.inject_fault() is False:
            return False
        for _ in range(w):
            self.loaded.invoke(self.input)
        total = self.loaded.cycles_per_inference
        for i in range(n):
            out = self.loaded.invoke(self.input)
            self.send(f"m-lap-cycles-{i}-{total}")
        self.send(f"m-cpu-mhz-{self.board.cpu_mhz}")
        self.send(format_results(out, str(out.dtype)))
        return None

    def _infer_eembc(self, request: InferRequest) -> bool | None:
        """EEMBC's infer: the db buffer becomes the input, W warm-ups, N runs between two m-lap-us."""
        if self.last_input == "eembc":
            if not self._input_from_db():
                return None
        elif self.input is None:
            self.error("infer: no input")
            return None
        if self.inject_fault() is False:
            return False
        self.send(f"m-warmup-start-{request.warmup}")
        for _ in range(request.warmup):
            self.loaded.invoke(self.input)
        self.send("m-warmup-done")
        self.send(f"m-infer-start-{request.runs}")
        start = self.clock_us()
        for _ in range(request.runs):
            out = self.loaded.invoke(self.input)
        # the window lasts what the timing model says, whatever the host's TFLM took
        end = start + round(request.runs * self.loaded.cycles_per_inference / self.board.cpu_mhz)
        self.advance_clock_to(end)
        self.send(f"m-lap-us-{start}")
        self.send(f"m-lap-us-{end}")
        self.send("m-infer-done")
        self.send(self._dequantized(out))
        return None

    def _input_from_db(self) -> bool:
        """Makes EEMBC's db buffer the input; False (after the error line) when it is incomplete or the wrong size."""
        if not self.db.complete:
            size = len(self.db.data) if self.db.data is not None else 0
            self.error(f"infer: db load incomplete: {self.db.received} of {size} bytes")
            return False
        want = self.loaded.input_bytes
        if len(self.db.data) != want:
            self.error(f"db: input is {len(self.db.data)} bytes, the model takes {want}")
            return False
        self.input = bytes(self.db.data)
        return True

    def _dequantized(self, out: np.ndarray) -> str:
        """EEMBC's results: the output in floats, whatever the model's dtype."""
        if out.dtype.kind == "f" or self.loaded.qout is None:
            return format_results(out, "float32")
        return format_dequantized_results(out, self.loaded.qout.scale, self.loaded.qout.zero_point)

    def cmd_results(self):
        if self.loaded is None:
            self.error("results: no model")
            return
        self.send(self._dequantized(self.loaded.output()))

    def cmd_opprofile(self):
        if self.loaded is None or self.input is None:
            self.error("opprofile: no model or input")
            return
        self.loaded.invoke(self.input)
        for i, (tag, cycles) in enumerate(self.loaded.op_cycles):
            self.send(f"m-op-{i}-{tag}-{cycles}")
