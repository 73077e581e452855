"""How a model reaches the board's ``model`` partition before ``model …%`` loads it."""

from __future__ import annotations

import csv
import struct
import tempfile
import time
from pathlib import Path
from typing import Protocol

from tinyhil import resources
from tinyhil.plugins.bench.link.device import DeviceClient
from tinyhil.plugins.bench.link.windows import windows_file

PARTITIONS_CSV = resources.firmware("partitions.csv")


class ModelDelivery(Protocol):
    source: str  # what model …% loads from: "partition" or "upload"

    def write(self, model: bytes, client: DeviceClient) -> None: ...

    def write_windows(self, image: bytes, client: DeviceClient) -> bool:
        """Writes a windows partition image (:mod:`tinyhil.plugins.bench.link.windows`); False
        when this board's windows can only travel with each case."""
        ...


def model_partition(csv_path: Path = PARTITIONS_CSV) -> tuple[int, int]:
    """``(offset, size)`` of the ``model`` partition in the firmware's partition table.

    Raises:
        ValueError: when the table has no ``model`` partition or gives it no offset.
    """
    with open(csv_path) as f:
        rows = list(csv.reader(line for line in f if line.strip() and not line.lstrip().startswith("#")))
    for row in rows:
        cells = [c.strip() for c in row]
        if cells and cells[0] == "model":
            if not cells[3]:
                raise ValueError(f"{csv_path}: give the model partition an explicit offset so esptool can write it")
            return int(cells[3], 0), int(cells[4], 0)
    raise ValueError(f"{csv_path} has no partition named 'model'")


PARTITION_ENTRY = struct.Struct(
    "<2sBBII16sI"
)  # ESP-IDF's partition table: magic, type, subtype, offset, size, label, flags


def partition_from_table(table: bytes, name: str = "model") -> tuple[int, int]:
    """``(offset, size)`` of a partition in a binary partition table, as ESP-IDF's build writes it
    (``partition_table/partition-table.bin``) and the bootloader reads it.

    Raises:
        ValueError: when no entry has that label.
    """
    for start in range(0, len(table) - PARTITION_ENTRY.size + 1, PARTITION_ENTRY.size):
        magic, _type, _subtype, offset, size, label, _flags = PARTITION_ENTRY.unpack_from(table, start)
        if magic != b"\xaa\x50":  # the MD5 entry (0xebeb) or the erased end (0xffff)
            break
        if label.rstrip(b"\0").decode(errors="replace") == name:
            return offset, size
    raise ValueError(f"the partition table has no partition named '{name}'")


def build_model_partition(app, name: str = "model") -> tuple[int, int]:
    """``(offset, size)`` of the ``model`` partition (or another, by ``name``) in the partition
    table of the build pytest-embedded flashed (``dut.app``, an ``IdfApp``): the board's layout,
    whatever the repository's ``partitions.csv`` says now.

    Raises:
        ValueError: naming the build when its partition table is missing or has no such partition.
    """
    args = app.flash_args
    rel = (args.get("partition_table") or args.get("partition-table") or {}).get("file", "")
    path = Path(app.binary_path) / rel
    if not rel or not path.is_file():
        raise ValueError(
            f"the firmware build {app.binary_path} has no partition table ({path}); rebuild it with idf.py"
        )
    try:
        return partition_from_table(path.read_bytes(), name)
    except ValueError as e:
        raise ValueError(f"{path}: {e}; the firmware was built with another partitions.csv: rebuild it") from None


class UploadDelivery:
    """Over the serial link itself (``db model``, then ``model upload``): for a board that
    pytest-embedded does not flash, such as one a labgrid exporter publishes with only its
    serial port (``--embedded-services serial``). The model must fit the board's RAM."""

    source = "upload"

    def write(self, model: bytes, client: DeviceClient) -> None:
        client.send_data("model", model)

    def write_windows(self, image: bytes, client: DeviceClient) -> bool:
        return False  # nothing flashes this board: its windows travel with each case


class FlashFileDelivery:
    """The virtual board's model partition is a file; writing it stands for esptool."""

    source = "partition"

    def __init__(self, flash_file: Path, baud: int = 0):
        self.flash_file, self.baud = Path(flash_file), baud

    def write(self, model: bytes, client: DeviceClient) -> None:
        self.flash_file.write_bytes(model)
        if self.baud:  # esptool at that rate, 10 bits a byte (its compression not modelled)
            time.sleep(len(model) * 10 / self.baud)

    def write_windows(self, image: bytes, client: DeviceClient) -> bool:
        windows_file(self.flash_file).write_bytes(image)
        if self.baud:
            time.sleep(len(image) * 10 / self.baud)
        return True


class EsptoolDelivery:
    """Writes the model into the ``model`` partition with esptool, through pytest-embedded's serial.

    esptool resets the board into the bootloader, writes, and resets it once more (its
    ``--after hard-reset``); the firmware's boot banner is read afterwards, so each case starts
    on a freshly booted board.
    """

    source = "partition"

    def __init__(
        self, serial, offset: int, size: int, boot_timeout_s: float = 15.0, windows: tuple[int, int] | None = None
    ):
        self.serial, self.offset, self.size, self.boot_timeout_s = serial, offset, size, boot_timeout_s
        self.windows = windows  # (offset, size) of the build's windows partition; None: it has none

    def write(self, model: bytes, client: DeviceClient) -> None:
        if len(model) > self.size:
            raise ValueError(f"model {len(model)} B > model partition {self.size} B")
        self._write_flash(model, self.offset, client)

    def write_windows(self, image: bytes, client: DeviceClient) -> bool:
        if self.windows is None or len(image) > self.windows[1]:
            return False
        self._write_flash(image, self.windows[0], client)
        return True

    def _write_flash(self, data: bytes, offset: int, client: DeviceClient) -> None:
        import esptool
        from pytest_embedded_serial_esp.serial import EspSerial

        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(data)
            f.flush()

            @EspSerial.use_esptool()
            def _write(serial):
                # at pytest-embedded's --esptool-baud (921600 by default, as it flashes the app):
                # esptool raises the rate after its stub loads; use_esptool puts the console's back
                baud = getattr(serial, "esptool_baud", None)
                argv = ["--baud", str(baud)] if baud else []
                # one reset: esptool's own --after (it resets an external esp too, esptool 5.6's teardown)
                esptool.main([*argv, "--after", "hard-reset", "write-flash", hex(offset), f.name], esp=serial.esp)

            _write(self.serial)
        client.wait_boot(self.boot_timeout_s)
