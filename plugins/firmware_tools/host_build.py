"""Builds the firmware for Linux: its own command loop, model runner and protocol core
with the host board layer (board_host.cc), linked against TFLM compiled from the source
folder you point at. The result is the virtual board ``--virtual-board=firmware`` runs.

    python -m tinyhil.plugins.firmware_tools.host_build --tflm PATH/esp-tflite-micro [--esp-nn PATH/esp-nn] [--bits 32]

``--tflm`` is an esp-tflite-micro source folder (a release of espressif/esp-tflite-micro, or
the ``managed_components/espressif__esp-tflite-micro`` an ``idf.py build`` leaves); nothing
of it is copied into this repository. With ``--esp-nn`` (an espressif/esp-nn folder) the
build uses esp-tflite-micro's ESP-NN kernels over ESP-NN's generic C code, as a plain ESP32
build does; without it, TFLM's reference kernels. ``--bits 32`` (the default when the
compiler can: ``gcc-multilib``/``g++-multilib`` on Debian) builds a 32-bit binary, whose
arena figures are those of a 32-bit core such as the ESP32's. Objects are kept under
``--out`` and rebuilt only when their source or flags change. Prints the binary's path last.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from tinyhil import resources
from tinyhil.plugins.firmware_tools.config import FIRMWARE, kconfig_defaults

HERE = FIRMWARE / "host"
DEFAULT_OUT = resources.host_build_root()

# esp-tflite-micro's CMakeLists.txt builds these besides the kernels (signal processing and
# the micro frontend left out: no op of firmware/main/ops.def needs them).
TFLM_CORE = [
    "tensorflow/lite/micro/debug_log.cc",
    "tensorflow/lite/micro/flatbuffer_utils.cc",
    "tensorflow/lite/micro/memory_helpers.cc",
    "tensorflow/lite/micro/micro_allocation_info.cc",
    "tensorflow/lite/micro/micro_allocator.cc",
    "tensorflow/lite/micro/micro_context.cc",
    "tensorflow/lite/micro/micro_interpreter_context.cc",
    "tensorflow/lite/micro/micro_interpreter_graph.cc",
    "tensorflow/lite/micro/micro_interpreter.cc",
    "tensorflow/lite/micro/micro_log.cc",
    "tensorflow/lite/micro/micro_op_resolver.cc",
    "tensorflow/lite/micro/micro_profiler.cc",
    "tensorflow/lite/micro/micro_resource_variable.cc",
    "tensorflow/lite/micro/micro_time.cc",
    "tensorflow/lite/micro/micro_utils.cc",
    "tensorflow/lite/micro/recording_micro_allocator.cc",
    "tensorflow/lite/micro/system_setup.cc",
    "tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc",
    "tensorflow/lite/micro/memory_planner/linear_memory_planner.cc",
    "tensorflow/lite/micro/arena_allocator/non_persistent_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/arena_allocator/persistent_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/arena_allocator/recording_single_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.cc",
    "tensorflow/lite/kernels/kernel_util.cc",
    "tensorflow/lite/core/c/common.cc",
    "tensorflow/lite/core/api/flatbuffer_conversions.cc",
    "tensorflow/lite/core/api/tensor_utils.cc",
    "tensorflow/lite/kernels/internal/common.cc",
    "tensorflow/lite/kernels/internal/quantization_util.cc",
    "tensorflow/lite/kernels/internal/portable_tensor_utils.cc",
    "tensorflow/lite/kernels/internal/tensor_utils.cc",
    "tensorflow/lite/kernels/internal/tensor_ctypes.cc",
    "tensorflow/lite/kernels/internal/reference/portable_tensor_utils.cc",
    "tensorflow/compiler/mlir/lite/core/api/error_reporter.cc",
    "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
]
# The kernels ESP-NN replaces (esp-tflite-micro's CMakeLists.txt removes them for kernels/esp_nn/).
ESP_NN_REPLACES = ["add.cc", "conv.cc", "depthwise_conv.cc", "fully_connected.cc", "mul.cc", "pooling.cc", "softmax.cc"]
TFLM_INCLUDES = [
    "",
    "third_party/gemmlowp",
    "third_party/flatbuffers/include",
    "third_party/ruy",
    "third_party/kissfft",
]
# As ESP-IDF and esp-tflite-micro build C++ (TFLM relies on it: its private operator delete).
NO_EXCEPTIONS = ["-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"]
TFLM_FLAGS = ["-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON", "-O2", "-w", *NO_EXCEPTIONS]
FIRMWARE_SOURCES = [
    FIRMWARE / "main" / "main.cc",
    FIRMWARE / "main" / "model_runner.cc",
    FIRMWARE / "main" / "guarded_arena.cc",
    FIRMWARE / "main" / "stored_windows.cc",
    FIRMWARE / "main" / "model_check.cc",
    FIRMWARE / "main" / "board_info.cc",
    FIRMWARE / "components" / "tinyhil_core" / "tinyhil_core.cc",
    HERE / "board_host.cc",
]
# tinyhil's own code is held to warnings as errors, as on the ESP32 (ESP-IDF builds with -Werror=all).
FIRMWARE_FLAGS = [
    "-DTF_LITE_STATIC_MEMORY",
    "-O2",
    *NO_EXCEPTIONS,
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
]


class BuildError(Exception):
    """A folder that is not what it should be, or a compiler that fails."""


def tflm_version(tflm: Path) -> str:
    manifest = tflm / "idf_component.yml"
    if manifest.is_file():
        m = re.search(r'^version:\s*"?([^"\s]+)', manifest.read_text(), re.M)
        if m:
            return m.group(1)
    return "unknown"


def check_folders(tflm: Path, esp_nn: Path | None) -> None:
    if not (tflm / "tensorflow/lite/micro/micro_interpreter.cc").is_file():
        raise BuildError(
            f"--tflm {tflm}: no tensorflow/lite/micro/micro_interpreter.cc there. Point it at an esp-tflite-micro "
            "source folder (git clone https://github.com/espressif/esp-tflite-micro, or the "
            "managed_components/espressif__esp-tflite-micro an idf.py build of firmware/ leaves)."
        )
    missing = [p for p in TFLM_CORE if not (tflm / p).is_file()]
    if missing:
        raise BuildError(f"--tflm {tflm}: not the esp-tflite-micro layout this build knows (missing {missing[0]})")
    if esp_nn is not None and not (esp_nn / "include" / "esp_nn.h").is_file():
        raise BuildError(f"--esp-nn {esp_nn}: no include/esp_nn.h there; point it at an espressif/esp-nn folder")


def write_sdkconfig(path: Path) -> None:
    lines = ["// Generated by plugins/firmware_tools/host_build.py from Kconfig.projbuild and sdkconfig.defaults."]
    for key, value in sorted(kconfig_defaults().items()):
        if value == "y":
            lines.append(f"#define CONFIG_{key} 1")
        elif value != "n":
            lines.append(f"#define CONFIG_{key} {value}")
    text = "\n".join(lines) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def can_build_32bit(cxx: str) -> bool:
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "probe.cc"
        src.write_text('#include <cstdio>\nint main() { std::puts("x"); }\n')
        r = subprocess.run([cxx, "-m32", str(src), "-o", str(Path(d) / "probe")], capture_output=True)
        return r.returncode == 0


def sources(tflm: Path, esp_nn: Path | None) -> list[tuple[Path, list[str]]]:
    """Every source with the flags it builds with."""
    kernels = tflm / "tensorflow/lite/micro/kernels"
    tflm_inc = [f"-I{tflm / d}" for d in TFLM_INCLUDES]
    # with ESP-NN, esp-tflite-micro's kernels also include ESP-IDF's esp_timer.h: firmware/host/include has it
    nn_inc = [f"-I{esp_nn / 'include'}", f"-I{esp_nn / 'src/common'}", f"-I{HERE / 'include'}"] if esp_nn else []
    cxx = ["-std=c++17", *TFLM_FLAGS, *tflm_inc, *nn_inc] + (["-DESP_NN"] if esp_nn else [])
    out = [(tflm / p, cxx) for p in TFLM_CORE]
    out += [(p, cxx) for p in sorted((tflm / "tensorflow/lite/micro/tflite_bridge").glob("*.cc"))]
    for p in sorted(kernels.glob("*.cc")):
        if esp_nn is None or p.name not in ESP_NN_REPLACES:
            out.append((p, cxx))
    if esp_nn is not None:
        out += [(p, cxx) for p in sorted((kernels / "esp_nn").glob("*.cc"))]
        c_flags = ["-std=c11", "-O2", "-w", *nn_inc]
        for p in sorted((esp_nn / "src").rglob("*.c")):
            if p.stem.endswith(("_ansi", "_opt")):  # the generic C code (no esp32s3 / esp32p4 assembly)
                out.append((p, c_flags))
    return out


class _Compile(NamedTuple):
    """One source to compile: the compiler's command line without ``-o``, and its object."""

    argv: list[str]
    obj: Path
    src: Path


def build(
    tflm: Path,
    esp_nn: Path | None,
    bits: int,
    out: Path,
    jobs: int,
    cxx: str = "g++",
    cc: str = "gcc",
    log: Callable[[str], None] = print,
) -> Path:
    """Compiles what changed and links ``<out>/tinyhil-firmware``; returns its path.

    Raises:
        BuildError: a folder that is not esp-tflite-micro / esp-nn, or a compile or link error.
    """
    check_folders(tflm, esp_nn)
    out.mkdir(parents=True, exist_ok=True)
    write_sdkconfig(out / "sdkconfig.h")
    arch = ["-m32"] if bits == 32 else []
    version = tflm_version(tflm)
    own = firmware_flags(tflm, esp_nn, out, version)
    tflm_objects, tflm_todo = _plan(sources(tflm, esp_nn), arch, out, cc=cc, cxx=cxx)
    # tinyhil's own sources include its headers and X-macro tables: newer ones rebuild them too
    own_objects, own_todo = _plan(
        [(p, own) for p in FIRMWARE_SOURCES], arch, out, cc=cc, cxx=cxx, also_newer_than=_newest_firmware_header(out)
    )
    todo = tflm_todo + own_todo
    (out / "obj").mkdir(exist_ok=True)
    n_sources = len(tflm_objects) + len(own_objects)
    log(f"tinyhil host build: {n_sources} sources, {len(todo)} to compile ({bits}-bit, -j {jobs}) in {out}")
    _compile(todo, jobs, log)
    library = _archive(tflm_objects, out / "libtflm.a")
    binary = _link([cxx, *arch], own_objects, library, out / "tinyhil-firmware")
    (out / "build-info.txt").write_text(
        f"esp-tflite-micro {version} from {tflm}\nesp-nn {esp_nn or 'none (reference kernels)'}\nbits {bits}\n"
    )
    return binary


def firmware_flags(tflm: Path, esp_nn: Path | None, out: Path, version: str) -> list[str]:
    """The flags tinyhil's own sources build with: its headers, TFLM's, and the versions it reports."""
    return [
        "-std=c++17",
        *FIRMWARE_FLAGS,
        f"-I{out}",
        f"-I{FIRMWARE / 'main'}",
        f"-I{FIRMWARE / 'components' / 'tinyhil_core'}",
        *[f"-I{tflm / d}" for d in TFLM_INCLUDES],
        f'-DTINYHIL_ESP_TFLITE_MICRO_VERSION="{version}"',
        f"-DTINYHIL_ESP_NN={1 if esp_nn else 0}",
    ]


def _newest_firmware_header(out: Path) -> float:
    """The modification time of the newest header, X-macro table or generated sdkconfig.h."""
    return max(p.stat().st_mtime for p in [*FIRMWARE.rglob("*.h"), *FIRMWARE.rglob("*.def"), out / "sdkconfig.h"])


def _plan(
    units: list[tuple[Path, list[str]]],
    arch: list[str],
    out: Path,
    *,
    cc: str,
    cxx: str,
    also_newer_than: float = float("-inf"),
) -> tuple[list[Path], list[_Compile]]:
    """Every unit's object, and the compiles of the objects older than their source.

    An object's name holds a hash of its command line, so a change of flags is a new object.

    Args:
        units: Sources with their flags.
        arch: Word-size flags of both compilers and the linker.
        out: The build folder (objects go to its ``obj``).
        cc: The C compiler, for ``.c`` sources.
        cxx: The C++ compiler, for the others.
        also_newer_than: An object older than this modification time is rebuilt too.

    Returns:
        The objects in the units' order, and the compiles that are due.
    """
    objects: list[Path] = []
    todo: list[_Compile] = []
    for src, flags in units:
        argv = [cc if src.suffix == ".c" else cxx, *arch, *flags, "-c", str(src)]
        key = hashlib.sha256("\0".join(argv).encode()).hexdigest()[:16]
        obj = out / "obj" / f"{src.stem}-{key}.o"
        objects.append(obj)
        newest = max(src.stat().st_mtime, also_newer_than)
        if not obj.is_file() or obj.stat().st_mtime < newest:
            todo.append(_Compile(argv, obj, src))
    return objects, todo


def _compile(todo: list[_Compile], jobs: int, log: Callable[[str], None]) -> None:
    """Runs the compiles, ``jobs`` at a time.

    Raises:
        BuildError: the first compile that fails, with the end of its compiler's output.
    """

    def compile_one(item: _Compile) -> str | None:
        r = subprocess.run([*item.argv, "-o", str(item.obj)], capture_output=True, text=True)
        return None if r.returncode == 0 else f"{item.src}:\n{r.stderr[-4000:]}"

    done = 0
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for error in pool.map(compile_one, todo):
            if error:
                raise BuildError(f"compile failed: {error}")
            done += 1
            if done % 25 == 0 or done == len(todo):
                log(f"  {done}/{len(todo)} compiled")


def _archive(objects: list[Path], library: Path) -> Path:
    """TFLM as a library, as ESP-IDF links a component: only the objects the firmware needs
    come in (kernel_runner.cc and the other test helpers do not).

    Raises:
        BuildError: when ``ar`` fails.
    """
    library.unlink(missing_ok=True)
    r = subprocess.run(["ar", "rcs", str(library), *map(str, objects)], capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"ar failed:\n{r.stderr[-4000:]}")
    return library


def _link(linker: list[str], objects: list[Path], library: Path, binary: Path) -> Path:
    """Links tinyhil's own objects against the TFLM library.

    Raises:
        BuildError: when the link fails.
    """
    r = subprocess.run(
        [*linker, *map(str, objects), str(library), "-o", str(binary), "-lm"], capture_output=True, text=True
    )
    if r.returncode != 0:
        raise BuildError(f"link failed:\n{r.stderr[-4000:]}")
    return binary


def resolve_bits(requested: str, cxx: str = "g++") -> int:
    """``auto`` is 32 when the compiler can build 32-bit, else 64.

    Raises:
        BuildError: for ``32`` on a compiler without 32-bit support, or no compiler.
    """
    if shutil.which(cxx) is None:
        raise BuildError(f"no C++ compiler '{cxx}' (Debian: apt-get install g++ g++-multilib)")
    if requested == "auto":
        return 32 if can_build_32bit(cxx) else 64
    if requested == "32" and not can_build_32bit(cxx):
        raise BuildError(f"'{cxx}' cannot build 32-bit programs (Debian: apt-get install g++-multilib)")
    return int(requested)


def cached_build_dir(tflm: Path, esp_nn: Path | None, bits: int, root: Path = DEFAULT_OUT) -> Path:
    """One build folder per source folders and word size (``firmware/host/build/…``, git-ignored)."""
    key = hashlib.sha256(f"{tflm.resolve()}\0{esp_nn.resolve() if esp_nn else ''}".encode()).hexdigest()[:12]
    return root / f"{bits}bit-{'esp-nn' if esp_nn else 'reference'}-{key}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tinyhil.plugins.firmware_tools.host_build", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--tflm", required=True, type=Path, help="esp-tflite-micro source folder")
    ap.add_argument("--esp-nn", type=Path, help="esp-nn source folder: build with ESP-NN's C kernels")
    ap.add_argument("--bits", choices=["auto", "32", "64"], default="auto", help="32 when the compiler can (auto)")
    ap.add_argument(
        "--out",
        type=Path,
        help=f"build folder (Default: the one pytest --tflm-source uses for these sources, under {DEFAULT_OUT})",
    )
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    cxx = os.environ.get("CXX", "g++")
    try:
        bits = resolve_bits(args.bits, cxx)
        tflm, esp_nn = args.tflm.resolve(), args.esp_nn.resolve() if args.esp_nn else None
        out = args.out or cached_build_dir(tflm, esp_nn, bits)  # one folder per key: pytest reuses its objects
        binary = build(tflm, esp_nn, bits, out, args.jobs, cxx)
    except BuildError as e:
        print(f"tinyhil host build: {e}", file=sys.stderr)
        return 1
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
