"""``python -m tinyhil``: what an installed tinyhil carries, for a bench user.

python -m tinyhil firmware            # where the ESP-IDF project is
python -m tinyhil firmware DIR        # write the ESP-IDF project into DIR, to build and flash
python -m tinyhil version
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from tinyhil import __version__, resources

# ESP-IDF outputs that a checkout's firmware folder may hold: never copied
_BUILD_OUTPUTS = ("build", "build_*", "sdkconfig", "sdkconfig.old", "managed_components", "__pycache__", "__init__.py")


def write_firmware(dest: Path) -> Path:
    """Copies the ESP-IDF project into ``dest`` (a new or empty folder).

    Raises:
        SystemExit: when ``dest`` exists and is not an empty folder.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SystemExit(f"tinyhil: {dest} exists and is not an empty folder: name a new folder")
    shutil.copytree(resources.firmware(), dest, ignore=shutil.ignore_patterns(*_BUILD_OUTPUTS), dirs_exist_ok=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyhil", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    fw = sub.add_parser("firmware", help="print where the ESP-IDF project is, or write it into DIR")
    fw.add_argument("dest", nargs="?", type=Path, help="a new or empty folder to write the project into")
    sub.add_parser("version", help="print tinyhil's version")
    args = ap.parse_args(argv)
    if args.command == "version":
        print(f"tinyhil {__version__}")
        return 0
    if args.dest is None:
        print(resources.firmware())
        return 0
    dest = write_firmware(args.dest)
    print(f"tinyhil: the ESP-IDF project is in {dest}; build it with:")
    print(f"  cd {dest} && idf.py -B build_esp32_default set-target esp32 build")
    print(f"then run the bench with --app-path={dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
