"""Mutated protocol lines for a board, and a driver that sends them and watches for panics.

The lines start from the firmware's own command table (``commands.def``) and the forms
PROTOCOL.md gives, with their numbers, lengths, CRCs, arenas and words mutated: signs,
overflows, zero, the limits and one past them, hex where decimal is wanted, blanks, missing
and extra arguments, unknown words, over-long lines. A command that announces a payload
(``m-db-ready-N``, ``m-classify-ready-N``) gets N bytes: random, or the right ones. A
``model`` line is sometimes given the real length and CRC of the model in the partition,
so its arena and placement reach TFLM.

A panic is a boot banner the host did not ask for (``reset`` asks for one) or a process that
ended; a hang is a command with no ``m-ready`` within the time limit.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

from tinyhil.plugins.firmware_tools.commands import firmware_commands

NUMBERS = [
    "0", "1", "2", "5", "16", "100", "512", "1000", "1001", "2765", "60000", "60001", "1000000",
    "1000001", "4294967295", "4294967296", "18446744073709551616", "-1", "-0", "+1", "0x10",
    "1e3", "07", " 1", "1.5", "", "abc", "%", "\t",
]  # fmt: skip
WORDS = ["input", "model", "load", "print", "partition", "upload", "flash", "ram", "auto", "x", "-"]
# Numbers these commands take and act on for that long: a line keeps those up to the first
# figure, or above the second (refused at once); between, it gets the first (60 s of idle or
# 1e6 inferences are no fault, only slow).
LIMITED = {"idle": (5, 60_000), "infer": (20, 1_000_000)}
MAX_PAYLOAD = 4096


@dataclass
class FuzzReport:
    lines: int = 0
    panics: list[str] = field(default_factory=list)  # the line before each unasked-for boot
    hangs: list[str] = field(default_factory=list)
    errors: int = 0  # e-[…] answers
    loads: int = 0  # model lines that reached TFLM (real length and CRC)


def mutated_lines(count: int, seed: int, model: bytes) -> list[str]:
    """``count`` lines, reproducible from ``seed``."""
    rng = random.Random(seed)
    names = [name for name, _ in firmware_commands() if name != "reset"] + ["reset", "fly", "db", "DB", ""]
    crc = f"{zlib.crc32(model) & 0xFFFFFFFF:08x}"
    lines = []
    for _ in range(count):
        name = rng.choice(names)
        if name == "model" and rng.random() < 0.02:  # the real model: arena and place reach TFLM
            arena = rng.choice(["auto", *NUMBERS[:12], str(rng.randrange(1, 40_000))])
            lines.append(f"model partition {len(model)} {crc} {arena} {rng.choice(['flash', 'ram', 'x'])}")
            continue
        args = []
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7])):
            roll = rng.random()
            if roll < 0.55:
                args.append(rng.choice(NUMBERS))
            elif roll < 0.8:
                args.append(rng.choice(WORDS))
            elif roll < 0.9:
                args.append(f"{rng.getrandbits(32):08x}")
            else:
                args.append("".join(rng.choice("abcdef0123456789-_.[]%") for _ in range(rng.randrange(1, 40))))
        if name in LIMITED:
            quick, refused = LIMITED[name]
            args = [a if not a.isdigit() or int(a) <= quick or int(a) > refused else str(quick) for a in args]
        line = " ".join([name, *args]).strip()
        if rng.random() < 0.01:
            line = line + " " + "y" * rng.randrange(100, 300)  # past the 127-character line
        lines.append(line.replace("%", "") or "x")
    return lines


def _answers(link, timeout_s: float) -> bool:
    """Whether the board answers ``version`` after a hang (whatever it was waiting for ended)."""
    from tinyhil.plugins.bench.link.replies import DeviceTimeout

    link.write(b"%version%")
    try:
        while link.read_line(timeout_s).strip() != "m-ready":
            pass
    except DeviceTimeout:
        return False
    return True


def drive(link, lines: list[str], model: bytes, alive, timeout_s: float = 20.0) -> FuzzReport:
    """Sends each line with ``%`` and reads to ``m-ready``; answers payload requests.

    Args:
        link: The board's serial link (``write``, ``read_line``).
        lines: From :func:`mutated_lines`.
        model: The model in the partition (a payload is sometimes it).
        alive: Returns False once the board's process ended.
        timeout_s: Time for one command's answer before it counts as a hang.
    """
    from tinyhil.plugins.bench.link.replies import DeviceTimeout

    rng = random.Random(len(lines))
    report = FuzzReport()
    for line in lines:
        report.lines += 1
        link.write(line.encode() + b"%")
        words = line.split(" ")
        expect_boot, booted = words[0] == "reset", False
        if line.startswith("model partition") and f" {len(model)} " in line:
            report.loads += 1
        try:
            while True:
                got = link.read_line(timeout_s).strip()
                if got == "m-boot-tinyhil":
                    if not expect_boot:  # a panic: counted, then read to the banner's m-ready
                        report.panics.append(line)
                        expect_boot = True
                    booted = True
                elif got.startswith("e-["):
                    report.errors += 1
                    expect_boot = booted  # a refused reset boots nothing
                elif got.startswith("m-db-ready-"):
                    n = int(got.removeprefix("m-db-ready-"))
                    link.write(model if n == len(model) and rng.random() < 0.3 else rng.randbytes(min(n, MAX_PAYLOAD)))
                elif got.startswith("m-classify-ready-"):
                    count, size = (int(w) if w.isdigit() else 0 for w in (words + ["0", "0"])[1:3])
                    link.write(rng.randbytes(min(count * size, MAX_PAYLOAD)))
                elif got == "m-ready" and (booted or not expect_boot):
                    break  # (reset answers m-ready before its banner)
        except DeviceTimeout:
            if not alive():
                report.panics.append(line)
                break
            report.hangs.append(line)
            if not _answers(link, timeout_s):  # busy for good (idle -1 was 49 days): stop here
                break
        if not alive():
            report.panics.append(line)
            break
    return report
