"""The firmware's command list, read from the file the firmware is built from.

``firmware/components/tinyhil_core/commands.def`` holds one
``TINYHIL_COMMAND(name, Handler, "one-line help")`` line per command, in the order ``help%``
lists them. The firmware expands it into its dispatch table; reading the same file here keeps
the host's idea of the commands (the virtual board's, for one) from drifting from the firmware's.
"""

from __future__ import annotations

import re
from pathlib import Path

COMMANDS_DEF = Path(__file__).resolve().parents[2] / "firmware" / "components" / "tinyhil_core" / "commands.def"

_ENTRY = re.compile(r'TINYHIL_COMMAND\(\s*(\w+)\s*,\s*\w+\s*,\s*"([^"\\]*)"\s*\)')


def firmware_commands(path: Path = COMMANDS_DEF) -> list[tuple[str, str]]:
    """The commands of a ``commands.def`` file.

    Args:
        path: The X-macro file to read; the firmware's own by default.

    Returns:
        ``(name, help)`` per command, in the file's order (the order of ``help%``).

    Raises:
        ValueError: The file holds no ``TINYHIL_COMMAND`` entry, or an entry this parser cannot
            read (the C preprocessor might still accept it, and the two lists would differ).
        OSError: The file cannot be read.
    """
    commands: list[tuple[str, str]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text.startswith("TINYHIL_COMMAND"):
            continue
        entry = _ENTRY.fullmatch(text)
        if entry is None:
            raise ValueError(f'{path}:{number}: expected TINYHIL_COMMAND(name, Handler, "help"), got {text!r}')
        commands.append((entry[1], entry[2]))
    if not commands:
        raise ValueError(f'{path}: no TINYHIL_COMMAND(name, Handler, "help") entry')
    return commands
