"""Checks the firmware against real ESP-IDF and esp-tflite-micro sources, without building it.

    python -m tinyhil.plugins.firmware_tools.idf_check --idf-path $IDF_PATH --tflm PATH/esp-tflite-micro [--target T]

For a bench user with ESP-IDF installed, ``--tflm`` is the
``firmware/managed_components/espressif__esp-tflite-micro`` the first ``idf.py build``
leaves (the default when it exists). ``--target`` is ``esp32``, ``esp32s3``, ``esp32c3`` or
``all`` (the default): steps 2-4 run per target. What it checks, each a line of its report:

1. versions: ESP-IDF meets ``firmware/main/idf_component.yml``'s ``idf`` requirement, and
   the esp-tflite-micro folder is the release that manifest pins;
2. Kconfig: ESP-IDF's own ``kconfgen`` (PyPI ``esp-idf-kconfig``) reads ESP-IDF's Kconfig
   tree for that ``IDF_TARGET`` with ``firmware/main/Kconfig.projbuild``, ``firmware/sdkconfig.defaults``
   and ``firmware/sdkconfig.defaults.<target>``; every option of those files must exist and
   take the value written, every ``CONFIG_…`` the firmware's sources use must exist, and stdout
   must end lines in CRLF (``firmware/PROTOCOL.md`` relies on the console's conversion);
3. partitions: ESP-IDF's ``gen_esp32part.py`` accepts the target's table
   (``CONFIG_PARTITION_TABLE_CUSTOM_FILENAME``) for its flash size, and the ``model`` and
   ``windows`` partitions are 64 KiB aligned (the MMU maps 64 KiB pages) and inside the flash;
4. compile: every firmware source compiles (``-fsyntax-only``, warnings as errors) against
   the target's ESP-IDF include folders, the ``sdkconfig.h`` of step 2 and the TFLM headers.
   The compiler is ESP-IDF's ``xtensa-esp-elf-g++`` (``riscv32-esp-elf-g++`` for the C3) when
   it is on PATH, else Debian's ``arm-none-eabi-g++`` (32-bit, newlib, as the chips' toolchains)
   with the target compiler's predefined macros; for the C3, Debian's ``riscv64-unknown-elf-g++``
   when it has a C++ library (a ``skip`` line says why not). Nothing is linked or run.

Exits 1 when a check fails, naming the file and the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tinyhil.plugins.firmware_tools.host_build import FIRMWARE, TFLM_INCLUDES, tflm_version

MANIFEST = FIRMWARE / "main" / "idf_component.yml"
SOURCES = [
    FIRMWARE / "main" / "main.cc",
    FIRMWARE / "main" / "model_runner.cc",
    FIRMWARE / "main" / "guarded_arena.cc",
    FIRMWARE / "main" / "stored_windows.cc",
    FIRMWARE / "main" / "model_check.cc",
    FIRMWARE / "main" / "board_info.cc",
    FIRMWARE / "main" / "board_esp32.cc",
    FIRMWARE / "components" / "tinyhil_core" / "tinyhil_core.cc",
]
# The targets the firmware is built for: each has its sdkconfig.defaults.<target> and a board profile.
TARGETS = ("esp32", "esp32s3", "esp32c3")
ARCH = {"esp32": "xtensa", "esp32s3": "xtensa", "esp32c3": "riscv"}
ALL_TARGETS = (
    "esp32",
    "esp32s2",
    "esp32s3",
    "esp32c2",
    "esp32c3",
    "esp32c5",
    "esp32c6",
    "esp32c61",
    "esp32h2",
    "esp32h4",
    "esp32p4",
)
# include folders that are not the target's, or that shadow others when all are on the path
# (the other architecture's folders are added per target: see include_dirs)
SKIP_INCLUDES = re.compile(
    r"/(linux|test|test_apps|host_test|FreeRTOS-Kernel-SMP|sim|bt|openthread|lwip|mbedtls|wpa_supplicant)(/|$)"
)
# what xtensa-esp-elf-gcc and riscv32-esp-elf-gcc (-march=rv32imc_zicsr_zifencei -mabi=ilp32)
# predefine and ESP-IDF's build adds, for a compiler that is not theirs
XTENSA_DEFINES = ["-D__XTENSA__=1", "-D__XTENSA_EL__=1", "-D__XTENSA_WINDOWED_ABI__=1"]
RISCV_DEFINES = [
    "-D__riscv=1",
    "-D__riscv_xlen=32",
    "-D__riscv_mul=1",
    "-D__riscv_div=1",
    "-D__riscv_muldiv=1",
    "-D__riscv_compressed=1",
    "-D__riscv_float_abi_soft=1",
    "-D__riscv_cmodel_medlow=1",
]
RISCV_MARCH = ["-march=rv32imc_zicsr_zifencei", "-mabi=ilp32"]
IDF_DEFINES = ["-DESP_PLATFORM", "-D_GNU_SOURCE", "-D_POSIX_READER_WRITER_LOCKS"]
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-Wno-sign-compare"]


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failed: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"ok    {text}")
        print(self.lines[-1], flush=True)

    def skip(self, text: str) -> None:
        self.lines.append(f"skip  {text}")
        print(self.lines[-1], flush=True)

    def fail(self, text: str) -> None:
        self.failed += 1
        self.lines.append(f"FAIL  {text}")
        print(self.lines[-1], flush=True)


def idf_version(idf: Path) -> tuple[int, int, int]:
    text = (idf / "tools" / "cmake" / "version.cmake").read_text()
    parts = [re.search(rf"IDF_VERSION_{k}\s+(\d+)", text) for k in ("MAJOR", "MINOR", "PATCH")]
    return tuple(int(p.group(1)) for p in parts)  # type: ignore[union-attr]


def manifest_pins() -> tuple[str, str]:
    """(``idf`` requirement, esp-tflite-micro pin) of firmware/main/idf_component.yml."""
    text = MANIFEST.read_text()
    idf = re.search(r"idf:\s*\n\s*version:\s*\"?([^\"\n]+)", text)
    tflm = re.search(r"espressif/esp-tflite-micro:\s*\"?([^\"\n]+)", text)
    return (idf.group(1).strip() if idf else ""), (tflm.group(1).strip() if tflm else "")


def check_versions(idf: Path, tflm: Path, report: Report) -> None:
    major, minor, patch = idf_version(idf)
    need, pin = manifest_pins()
    m = re.match(r">=\s*(\d+)\.(\d+)", need)
    if m and (major, minor) < (int(m.group(1)), int(m.group(2))):
        report.fail(f"ESP-IDF {major}.{minor}.{patch} is older than idf_component.yml's idf {need}")
    else:
        report.ok(f"ESP-IDF {major}.{minor}.{patch} meets idf_component.yml's idf {need}")
    have = tflm_version(tflm)
    wanted = pin.removeprefix("==").strip()
    if have != wanted:
        report.fail(f"--tflm {tflm} is esp-tflite-micro {have}; {MANIFEST.relative_to(FIRMWARE.parent)} pins {pin}")
    else:
        report.ok(f"esp-tflite-micro {have} is the release idf_component.yml pins ({pin})")


def defaults_files(target: str) -> list[Path]:
    """sdkconfig.defaults, then sdkconfig.defaults.<target> when there is one, as ESP-IDF reads them."""
    files = [FIRMWARE / "sdkconfig.defaults", FIRMWARE / f"sdkconfig.defaults.{target}"]
    return [f for f in files if f.is_file()]


def run_kconfgen(idf: Path, target: str, out: Path) -> dict:
    """sdkconfig.h and sdkconfig.json as an ESP-IDF build of firmware/ generates them."""
    comps = sorted((idf / "components").iterdir())
    kconfigs = [c / "Kconfig" for c in comps if (c / "Kconfig").is_file()]
    projbuilds = [c / "Kconfig.projbuild" for c in comps if (c / "Kconfig.projbuild").is_file()]
    projbuilds.append(FIRMWARE / "main" / "Kconfig.projbuild")
    renames = [r for c in comps for r in (c / "sdkconfig.rename", c / f"sdkconfig.rename.{target}") if r.is_file()]
    (out / "kconfigs.in").write_text("".join(f'source "{k}"\n' for k in kconfigs))
    (out / "kconfigs_projbuild.in").write_text("".join(f'source "{k}"\n' for k in projbuilds))
    major, minor, patch = idf_version(idf)
    env = {
        "COMPONENT_KCONFIGS": "",
        "COMPONENT_KCONFIGS_PROJBUILD": "",
        "COMPONENT_SDKCONFIG_RENAMES": ";".join(map(str, renames)),
        "IDF_TARGET": target,
        "IDF_TOOLCHAIN": "gcc",
        "IDF_VERSION": f"{major}.{minor}.{patch}",
        "IDF_INIT_VERSION": f"{major}.{minor}.{patch}",
        "IDF_ENV_FPGA": "",
        "IDF_PATH": str(idf),
        "COMPONENT_KCONFIGS_SOURCE_FILE": str(out / "kconfigs.in"),
        "COMPONENT_KCONFIGS_PROJBUILD_SOURCE_FILE": str(out / "kconfigs_projbuild.in"),
    }
    (out / "config.env").write_text(json.dumps(env))
    argv = [
        *(sys.executable, "-m", "kconfgen", "--list-separator=semicolon"),
        *("--kconfig", str(idf / "Kconfig"), "--sdkconfig-rename", str(idf / "sdkconfig.rename")),
        *(arg for f in defaults_files(target) for arg in ("--defaults", str(f))),
        *("--env-file", str(out / "config.env")),
        *("--output", "header", str(out / "sdkconfig.h"), "--output", "json", str(out / "sdkconfig.json")),
    ]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kconfgen failed: {r.stderr[-2000:]}")
    return json.loads((out / "sdkconfig.json").read_text())


def kconfig_symbols(idf: Path) -> set[str]:
    """Every option any Kconfig file of ESP-IDF or the firmware declares, visible or not."""
    files = [idf / "Kconfig", FIRMWARE / "main" / "Kconfig.projbuild", *(idf / "components").rglob("Kconfig*")]
    names: set[str] = set()
    for f in files:
        if f.is_file():
            names.update(re.findall(r"^\s*(?:menu)?config\s+(\w+)", f.read_text(errors="replace"), flags=re.M))
    return names


def check_kconfig(config: dict, symbols: set[str], report: Report, target: str = "esp32") -> None:
    wrong = []
    written: dict[str, tuple[str, str]] = {}  # the last file's value wins, as in ESP-IDF
    for f in defaults_files(target):
        for raw in f.read_text().splitlines():
            m = re.match(r"CONFIG_(\w+)=(.*)", raw.strip())
            if m:
                written[m.group(1)] = (m.group(2).strip().strip('"'), f.name)
    for name, (value, where) in written.items():
        if name not in config:
            wrong.append(f"{where}: CONFIG_{name} is not an ESP-IDF option")
            continue
        got = config[name]
        want = {"y": True, "n": False}.get(value, value)
        if isinstance(got, int) and not isinstance(got, bool) and isinstance(want, str):
            want = int(want, 0)
        if got != want:
            wrong.append(f"{where}: CONFIG_{name}={value} did not take (it is {got}: a 'depends on' not met?)")
    names = " + ".join(f.name for f in defaults_files(target))
    if wrong:
        for w in wrong:
            report.fail(w)
    else:
        report.ok(f"every option of {names} exists in ESP-IDF's Kconfig for {target} and takes its value")
    used = sorted({n for src in SOURCES for n in re.findall(r"\bCONFIG_(\w+)", src.read_text())})
    unknown = [n for n in used if n not in config and n not in symbols]  # hidden by 'depends on' is fine
    if unknown:
        report.fail(f"the firmware uses options no Kconfig defines: {', '.join('CONFIG_' + n for n in unknown)}")
    else:
        report.ok(f"the {len(used)} CONFIG_ options the firmware's sources use all exist")
    crlf = [k for k in ("NEWLIB_STDOUT_LINE_ENDING_CRLF", "LIBC_STDOUT_LINE_ENDING_CRLF") if k in config]
    if crlf and config[crlf[0]]:
        report.ok(f"stdout ends lines in CRLF (CONFIG_{crlf[0]}), as firmware/PROTOCOL.md says")
    else:
        report.fail("stdout's line ending is not CRLF (or its option is gone): update firmware/PROTOCOL.md's Framing")


def check_partitions(idf: Path, config: dict, report: Report) -> None:
    table = FIRMWARE / str(config.get("PARTITION_TABLE_CUSTOM_FILENAME") or "partitions.csv")
    gen = idf / "components" / "partition_table" / "gen_esp32part.py"
    flash = str(config.get("ESPTOOLPY_FLASHSIZE", "4MB"))
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(
            [sys.executable, str(gen), "--flash-size", flash, str(table), str(Path(d) / "partitions.bin")],
            capture_output=True,
            text=True,
        )
    if r.returncode != 0:
        report.fail(f"gen_esp32part.py refuses {table.name} for {flash}: {(r.stderr or r.stdout).strip()[-600:]}")
    else:
        report.ok(f"ESP-IDF's gen_esp32part.py accepts {table.name} for {flash} of flash")
    flash_bytes = int(flash.removesuffix("MB")) << 20
    found = set()
    for line in table.read_text().splitlines():
        cells = [c.strip() for c in line.split(",")]
        if cells and cells[0] in ("model", "windows"):
            name, offset, size = cells[0], int(cells[3], 0), int(cells[4], 0)
            found.add(name)
            if offset % 0x10000:
                report.fail(
                    f"the {name} partition's offset {offset:#x} is not 64 KiB aligned (esptool writes it there)"
                )
            elif offset + size > flash_bytes:
                report.fail(f"the {name} partition ends at {offset + size:#x}, past the {flash} flash")
            else:
                report.ok(f"{name} partition at {offset:#x}, {size:#x} bytes: 64 KiB aligned, inside {flash}")
    for name in sorted({"model", "windows"} - found):
        report.fail(f"{table.name} has no {name} partition (firmware/PROTOCOL.md)")


def include_dirs(idf: Path, target: str) -> list[Path]:
    comps = idf / "components"
    arch = ARCH.get(target, "xtensa")
    other_arch = re.compile(r"/(riscv)(/|$)" if arch == "xtensa" else r"/(xtensa)(/|$)")
    others = [t for t in ALL_TARGETS if t != target]
    found = []
    for d in sorted(comps.rglob("include")):
        rel = "/" + str(d.relative_to(comps))
        if not d.is_dir() or SKIP_INCLUDES.search(rel) or other_arch.search(rel):
            continue
        # another target's folder (esp32 is a prefix of the others: match whole names)
        if any(re.search(rf"[/_]{t}(/|_|$)", rel) for t in others):
            continue
        found.append(d)
    extra = [
        comps / "freertos" / "config" / "include" / "freertos",
        comps / "freertos" / "FreeRTOS-Kernel" / "portable" / arch / "include" / "freertos",
        comps / "esp_rom" / target / "include" / target,
        comps / "esp_rom" / target,
        comps / "soc" / target,
        comps / "soc" / target / "register",
        comps / "esp_hw_support" / "include" / "soc",
        comps / "esp_system" / "port" / "public_compat",
    ]
    libc = [comps / c / "platform_include" for c in ("newlib", "esp_libc") if (comps / c / "platform_include").is_dir()]
    return libc + found + [d for d in extra if d.is_dir()]


def common_requirements(idf: Path, target: str = "esp32") -> set[str]:
    """The components every ESP-IDF component may include without naming them (build.cmake's requires_common)."""
    text = (idf / "tools" / "cmake" / "build.cmake").read_text()
    lists = re.findall(r"set\(requires_common\s+([^)]*)\)", text)
    chosen = next((entry for entry in lists if "cxx" in entry.split()), lists[-1] if lists else "")
    return set(chosen.split()) | {ARCH.get(target, "xtensa")}


def check_requirements(idf: Path, target: str, report: Report) -> None:
    """Each ESP-IDF header the firmware includes belongs to a component firmware/main/CMakeLists.txt
    names in PRIV_REQUIRES, or to one every component gets (ESP-IDF hides the others' headers)."""
    cmake = (FIRMWARE / "main" / "CMakeLists.txt").read_text()
    m = re.search(r"PRIV_REQUIRES\s+([^)]*)\)", cmake)
    listed = set(m.group(1).split()) if m else set()
    missing_components = sorted(c for c in listed - {"tinyhil_core"} if not (idf / "components" / c).is_dir())
    if missing_components:
        report.fail(f"firmware/main/CMakeLists.txt requires components ESP-IDF does not have: {missing_components}")
    allowed = listed | common_requirements(idf, target)
    dirs = include_dirs(idf, target)
    unlisted: dict[str, str] = {}
    for src in SOURCES[:4]:  # firmware/main's sources
        for header in re.findall(r'^#include\s+[<"]([^>"]+)[>"]', src.read_text(), flags=re.M):
            owner = next((d for d in dirs if (d / header).is_file()), None)
            if owner is None or header == "sdkconfig.h":
                continue  # the C/C++ library, TFLM, the firmware's own, or the build's generated config
            component = owner.relative_to(idf / "components").parts[0]
            if component not in allowed:
                unlisted[header] = component
    if unlisted:
        report.fail(
            "firmware/main/CMakeLists.txt: add to PRIV_REQUIRES "
            + ", ".join(f"{c} (for {h})" for h, c in sorted(unlisted.items()))
        )
    elif not missing_components:
        report.ok(
            f"every ESP-IDF header firmware/main includes comes from a component it requires ({len(listed)} named)"
        )


def has_cxx_library(cxx: str, arch: list[str]) -> bool:
    """Whether ``cxx`` finds the C++ and C library headers the firmware includes."""
    probe = "#include <cstdint>\n#include <cstdio>\n#include <cstring>\n"
    r = subprocess.run([cxx, *arch, "-x", "c++", "-fsyntax-only", "-"], input=probe, capture_output=True, text=True)
    return r.returncode == 0


def compiler(target: str = "esp32", report: Report | None = None) -> tuple[str, list[str]]:
    """The compiler and its architecture flags: ESP-IDF's own for the target when on PATH, else a
    stand-in with the target compiler's predefined macros (the stand-in is named in the report)."""
    if ARCH.get(target, "xtensa") == "riscv":
        if shutil.which("riscv32-esp-elf-g++"):
            return "riscv32-esp-elf-g++", RISCV_MARCH
        debian = "riscv64-unknown-elf-g++"
        if shutil.which(debian) and has_cxx_library(debian, RISCV_MARCH):
            return debian, RISCV_MARCH
        why = (
            f"Debian's {debian} (gcc-riscv64-unknown-elf) has no C++ or C library headers for "
            "-march=rv32imc -mabi=ilp32 (<cstdint> not found; Debian packages no libstdc++ nor newlib for it)"
            if shutil.which(debian)
            else f"no RISC-V C++ compiler ({debian}: apt-get install gcc-riscv64-unknown-elf; or ESP-IDF's riscv32-esp-elf-g++)"
        )
        if shutil.which("arm-none-eabi-g++"):
            if report is not None:
                report.skip(
                    f"compile with a RISC-V compiler ({target}): {why}; the sources are compiled instead with "
                    "arm-none-eabi-g++ (32-bit, newlib) and RISC-V's predefined macros against the "
                    f"{target} include folders: a check of the sources and ESP-IDF's headers, not of RISC-V code generation"
                )
            return "arm-none-eabi-g++", RISCV_DEFINES
        raise RuntimeError(f"no compiler for {target}: {why}, and no arm-none-eabi-g++ to stand in")
    for name in ("xtensa-esp-elf-g++", "xtensa-esp32-elf-g++"):
        if shutil.which(name):
            return name, ["-mlongcalls"]
    if shutil.which("arm-none-eabi-g++"):
        return "arm-none-eabi-g++", XTENSA_DEFINES
    raise RuntimeError(
        "no cross compiler: install ESP-IDF (xtensa-esp-elf-g++) or Debian's gcc-arm-none-eabi "
        "and libstdc++-arm-none-eabi-newlib"
    )


def check_compile(idf: Path, tflm: Path, target: str, config: dict, sdkconfig_dir: Path, report: Report) -> None:
    cxx, arch = compiler(target, report)
    major, minor, patch = idf_version(idf)
    if config.get("LIBC_PICOLIBC") and cxx == "arm-none-eabi-g++":
        report.skip(
            f"compile: ESP-IDF {major}.{minor} builds against its own picolibc, whose headers Debian's "
            "arm-none-eabi toolchain does not match; run this check where ESP-IDF's xtensa-esp-elf-g++ is on PATH "
            "(. $IDF_PATH/export.sh)"
        )
        return
    esp_nn = int((tflm / "tensorflow/lite/micro/kernels/esp_nn").is_dir())  # as firmware/main/CMakeLists.txt
    flags = [
        "-std=gnu++17",
        "-fsyntax-only",
        "-fno-rtti",
        "-fno-exceptions",
        *arch,
        *IDF_DEFINES,
        f'-DIDF_VER="v{major}.{minor}.{patch}"',
        "-DTF_LITE_STATIC_MEMORY",
        f'-DTINYHIL_ESP_TFLITE_MICRO_VERSION="{tflm_version(tflm)}"',
        f"-DTINYHIL_ESP_NN={esp_nn}",
        *WARNINGS,
        f"-I{sdkconfig_dir}",
        f"-I{FIRMWARE / 'main'}",
        f"-I{FIRMWARE / 'components' / 'tinyhil_core'}",
        *[f"-I{d}" for d in include_dirs(idf, target)],
        *[f"-I{tflm / d}" for d in TFLM_INCLUDES],
    ]
    for src in SOURCES:
        r = subprocess.run([cxx, *flags, str(src)], capture_output=True, text=True)
        name = src.relative_to(FIRMWARE.parent)
        if r.returncode != 0:
            errors = [line for line in r.stderr.splitlines() if "error" in line][:6]
            report.fail(f"{name} does not compile with {cxx}:\n      " + "\n      ".join(errors))
        else:
            how = cxx if cxx.startswith(("xtensa", "riscv")) else f"{cxx} and {ARCH.get(target, 'xtensa')}'s macros"
            report.ok(f"{name} compiles against ESP-IDF {major}.{minor}.{patch} ({target}) with {how}, -Werror")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tinyhil.plugins.firmware_tools.idf_check", description=__doc__.split("\n\n")[0]
    )
    managed = FIRMWARE / "managed_components" / "espressif__esp-tflite-micro"
    ap.add_argument("--idf-path", type=Path, default=None, help="ESP-IDF folder (default: $IDF_PATH)")
    ap.add_argument("--tflm", type=Path, default=managed if managed.is_dir() else None, help="esp-tflite-micro folder")
    ap.add_argument(
        "--target",
        choices=(*TARGETS, "all"),
        default="all",
        help="the target to check, each with its sdkconfig.defaults.<target> (default: all)",
    )
    args = ap.parse_args(argv)
    idf = args.idf_path or (Path(os.environ["IDF_PATH"]) if os.environ.get("IDF_PATH") else None)
    if idf is None or not (idf / "tools" / "cmake" / "version.cmake").is_file():
        ap.error(
            f"--idf-path {idf}: not an ESP-IDF folder (tools/cmake/version.cmake missing); give --idf-path or set IDF_PATH"
        )
    if args.tflm is None or not (args.tflm / "tensorflow/lite/micro/micro_interpreter.h").is_file():
        ap.error(
            f"--tflm {args.tflm}: not an esp-tflite-micro folder (tensorflow/lite/micro/micro_interpreter.h missing)"
        )
    idf, tflm = idf.resolve(), args.tflm.resolve()
    report = Report()
    check_versions(idf, tflm, report)
    symbols = kconfig_symbols(idf)
    counts = []
    for target in TARGETS if args.target == "all" else (args.target,):
        print(f"\n== {target} ==", flush=True)
        first = len(report.lines)
        check_target(idf, tflm, target, symbols, report)
        lines = report.lines[first:]
        counts.append(
            f"{target}: {sum(x.startswith('ok') for x in lines)} passed, "
            f"{sum(x.startswith('skip') for x in lines)} skipped, {sum(x.startswith('FAIL') for x in lines)} failed"
        )
    skipped = sum(line.startswith("skip") for line in report.lines)
    print("\n" + "\n".join(counts))
    print(f"\n{len(report.lines) - report.failed - skipped} passed, {skipped} skipped, {report.failed} failed")
    return 1 if report.failed else 0


def check_target(idf: Path, tflm: Path, target: str, symbols: set[str], report: Report) -> None:
    """Kconfig, partitions, includes and the compile check of one target."""
    with tempfile.TemporaryDirectory(prefix=f"tinyhil-idf-check-{target}-") as d:
        try:
            config = run_kconfgen(idf, target, Path(d))
        except RuntimeError as e:
            report.fail(f"{target}: {e}")
            return
        check_kconfig(config, symbols, report, target)
        check_partitions(idf, config, report)
        check_requirements(idf, target, report)
        try:
            check_compile(idf, tflm, target, config, Path(d), report)
        except RuntimeError as e:
            report.fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
