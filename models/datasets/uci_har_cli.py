"""``python -m tinyhil.models.datasets.uci_har_cli``: download, verify and check UCI-HAR.

A module of its own, so running it does not import (and register) the dataset twice.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyhil.models.datasets.uci_har import DEFAULT_DIR, OFFICIAL_URL, download, load
from tinyhil.models.errors import DatasetError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyhil.models.datasets.uci_har_cli", description="download, verify and check UCI-HAR"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="download, verify and unpack the official zip")
    dl.add_argument("--dest", type=Path, default=DEFAULT_DIR, help=f"cache directory (Default: {DEFAULT_DIR})")
    dl.add_argument("--url", default=OFFICIAL_URL, help="where to fetch from (Default: the UCI archive)")
    dl.add_argument("--sha256", help="expected sha256 of the zip (Default: not checked)")
    dl.add_argument("--retries", type=int, default=5, help="attempts (Default: 5)")
    chk = sub.add_parser("check", help="load a folder or zip and print what it holds")
    chk.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "download":
            print(download(args.dest, args.url, args.sha256, args.retries))
        else:
            w = load(args.path)
            print(f"{args.path}: {len(w.y)} windows, shape {w.x.shape[1:]}, {int(w.official_train.sum())} train")
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
