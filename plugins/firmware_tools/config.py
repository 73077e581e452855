"""The firmware's configuration as the host needs it: the defaults of its Kconfig options
(``firmware/main/Kconfig.projbuild`` then ``firmware/sdkconfig.defaults``, as an ESP32 build
of it gets them), and what a flashed build was configured with (its ``sdkconfig.json``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tinyhil import resources

FIRMWARE = resources.firmware()


def kconfig_defaults() -> dict[str, str]:
    """``CONFIG_TINYHIL_*`` and the target as an ESP32 build of firmware/ would set them:
    the defaults of firmware/main/Kconfig.projbuild, then firmware/sdkconfig.defaults."""
    values: dict[str, str] = {}
    name, in_choice = None, False
    for raw in (FIRMWARE / "main" / "Kconfig.projbuild").read_text().splitlines():
        line = raw.strip()
        if m := re.match(r"(config|choice)\s+(\w+)", line):
            name = m.group(2)
            in_choice = in_choice or m.group(1) == "choice"
            if m.group(1) == "config" and in_choice:
                values.setdefault(name, "n")
        elif line == "endchoice":
            in_choice = False
        elif (m := re.match(r"default\s+(\S+)", line)) and name:
            if in_choice and name not in values:  # the choice's default names the chosen config
                values[m.group(1)] = "y"
                values[name] = "chosen"
            else:
                values.setdefault(name, m.group(1))
    values = {k: v for k, v in values.items() if v != "chosen"}
    for raw in (FIRMWARE / "sdkconfig.defaults").read_text().splitlines():
        if m := re.match(r"CONFIG_(\w+)=(.*)", raw.strip()):
            values[m.group(1)] = m.group(2)
    return values


def console_baud(build_dir: Path | None = None) -> int:
    """``CONFIG_TINYHIL_UART_BAUD``: of the build in ``build_dir`` when it has its
    ``config/sdkconfig.json`` (the build flashed), else the firmware's default. The one
    place the protocol's rate is set; pytest-embedded's ``--baud`` overrides it."""
    config = Path(build_dir) / "config" / "sdkconfig.json" if build_dir else None
    if config is not None and config.is_file():
        value = json.loads(config.read_text()).get("TINYHIL_UART_BAUD")
        if value:
            return int(value)
    return int(kconfig_defaults()["TINYHIL_UART_BAUD"])
