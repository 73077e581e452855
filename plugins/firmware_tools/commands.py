"""The firmware's command list, read from the file the firmware is built from.

``firmware/components/tinyhil_core/commands.def`` holds one
``TINYHIL_COMMAND(name, Handler, "one-line help")`` line per command, in the order ``help%``
lists them. The firmware expands it into its dispatch table; reading the same file here keeps
the host's idea of the commands (the virtual board's, for one) from drifting from the firmware's.
"""

from __future__ import annotations

import re
from pathlib import Path

from tinyhil import resources

COMMANDS_DEF = resources.firmware("components", "tinyhil_core", "commands.def")

_ENTRY = re.compile(r'TINYHIL_COMMAND\(\s*(\w+)\s*,\s*\w+\s*,\s*"([^"\\]*)"\s*\)')


def xmacro_entries(path: Path, macro: str, entry: re.Pattern, form: str) -> list[re.Match]:
    """The entries of an X-macro file the firmware is built from, one match per line.

    Args:
        path: The file.
        macro: The macro's name; lines that do not start with it are comments or blank.
        entry: What a whole entry line must match.
        form: The entry's form, for the error message.

    Raises:
        ValueError: The file holds no entry, or one this parser cannot read (the C
            preprocessor might still accept it, and the two lists would differ).
        OSError: The file cannot be read.
    """
    found = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text.startswith(macro):
            continue
        match = entry.fullmatch(text)
        if match is None:
            raise ValueError(f"{path}:{number}: expected {form}, got {text!r}")
        found.append(match)
    if not found:
        raise ValueError(f"{path}: no {form} entry")
    return found


def firmware_commands(path: Path = COMMANDS_DEF) -> list[tuple[str, str]]:
    """The commands of a ``commands.def`` file.

    Args:
        path: The X-macro file to read; the firmware's own by default.

    Returns:
        ``(name, help)`` per command, in the file's order (the order of ``help%``).

    Raises:
        ValueError, OSError: as :func:`xmacro_entries`.
    """
    entries = xmacro_entries(path, "TINYHIL_COMMAND", _ENTRY, 'TINYHIL_COMMAND(name, Handler, "help")')
    return [(e[1], e[2]) for e in entries]
