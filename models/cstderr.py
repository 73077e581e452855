"""Capture what native code (TFLM, the TFLite converter) prints on the C-level stderr."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


class Captured:
    """Holds the captured text once the ``with`` block has ended."""

    text: str = ""


@contextlib.contextmanager
def capture_c_stderr() -> Iterator[Captured]:
    """Redirects file descriptor 2 to a temporary file for the duration of the block.

    Python's ``sys.stderr`` is left alone; only what native libraries write to fd 2 is
    caught. Nests correctly with pytest's own fd capture because fd 2 is restored to
    whatever it was before.
    """
    out = Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            try:
                sys.stderr.flush()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            tmp.seek(0)
            out.text = tmp.read().decode("utf-8", "replace")
