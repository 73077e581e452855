"""The host's reply reader under 100,000 random replies: a board that sends anything at all
ends a command with a typed DeviceError (or a valid answer), never with an exception the
bench path does not expect (IndexError, ValueError, KeyError...)."""

import numpy as np
import pytest

from tests.unit.links import ScriptedLink
from tinyhil.plugins.bench.link.device import DeviceClient, DeviceError

# Lines a board sends, whole or cut short, and bytes a noisy link adds.
PIECES = [
    "m-ready",
    "m-boot-tinyhil",
    "m-protocol-1",
    "m-info-fw-1",
    "m-info-cpu-mhz-240",
    "m-info-cpu-mhz-x",
    "m-info-reset-reason-panic",
    "m-db-ready-",
    "m-db-ready-16",
    "m-db-ok-16-0000abcd",
    "m-lap-cycles-0-1000",
    "m-lap-cycles-0-",
    "m-lap-cycles--5",
    "m-lap-us-100",
    "m-lap-us-",
    "m-cpu-mhz-240",
    "m-cpu-mhz-",
    "m-results-[1,2,3]",
    "m-results-[",
    "m-results-[nan,inf,-0]",
    "m-results-[int8,3,0.1,0]",
    "m-model-bytes-100",
    "m-arena-bytes-1",
    "m-arena-used-bytes-",
    "m-input-[int8,1152,0.05,-3]",
    "m-input-[int8,x,,]",
    "m-output-[int8,6,0.00390625,-128]",
    "m-output-[]",
    "m-heap-free-1",
    "m-heap-largest-",
    "e-[infer: no model]",
    "e-[",
    "Guru Meditation Error: Core  0 panic'ed",
    "\x00\x07\xff",
    "ets Jun  8 2016 00:22:57",
    "",
    "m-",
    "m-ready-",
]


COMMANDS = [
    lambda c: c.sync(),
    lambda c: c.infer(3, 0),
    lambda c: c.infer_window(5000),
    lambda c: c.load_model("partition", b"TFL3" * 8, "auto", "flash"),
    lambda c: c.command("name"),
    lambda c: c.profile(),
    lambda c: c.wait_boot(1),
]


@pytest.mark.parametrize("command", range(len(COMMANDS)))
def test_random_replies_end_in_a_typed_error_or_an_answer(command):
    rng = np.random.default_rng(command)
    unexpected = []
    for _ in range(100_000 // len(COMMANDS)):
        lines = [PIECES[i] for i in rng.integers(0, len(PIECES), rng.integers(0, 12))]
        if rng.random() < 0.3:  # cut one line short, as a dropped byte would
            k = int(rng.integers(0, len(lines))) if lines else 0
            if lines:
                lines[k] = lines[k][: int(rng.integers(0, len(lines[k]) + 1))]
        client = DeviceClient(ScriptedLink(lines), timeout_s=0.01)
        try:
            COMMANDS[command](client)
        except DeviceError:
            pass
        except Exception as e:  # noqa: BLE001 - what this test looks for
            unexpected.append((type(e).__name__, str(e)[:80], lines))
    assert not unexpected, f"{len(unexpected)} replies raised untyped errors, e.g. {unexpected[:3]}"
