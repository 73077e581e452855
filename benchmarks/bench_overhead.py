"""Seconds tinyhil adds to a pytest run that did not ask for it: installed, tinyhil is a plugin of
every pytest run in the environment (its ``pytest11`` entry point declares the options), and
such a run must not cost more than :data:`BUDGET_S` for it.

Usage::

    python benchmarks/bench_overhead.py              # 10 runs of each case
    python benchmarks/bench_overhead.py --runs 30

Times, side by side and interleaved (so a busy machine slows both alike), each case as a fresh
``python -m pytest`` process, WITH tinyhil's entry-point plugin (the default where tinyhil is
installed) and WITHOUT it (``-p no:tinyhil.plugins.options``, pytest's way to block a plugin by
the name its entry point registers; the script checks that ``--help`` then lacks tinyhil's
options). The cases:

* ``pytest --help``: every plugin's options, declared and printed;
* one trivial test: a throwaway folder holding ``test_one.py`` (``assert 1 + 1 == 2``) and an
  empty ``pytest.ini`` (so pytest does not look for a configuration above it), run from that
  folder with ``-q -p no:cacheprovider``.

A warm-up run of each is not counted (it writes the bytecode caches). The table gives the median
and the minimum wall-clock seconds, the overhead (the median of the paired differences), and the
CPU seconds (user + system) of each column and their overhead, which other work on a loaded
machine changes less: when the load average is above the core count, the CPU overhead decides.
Then, for the trivial run, the modules that are imported only with tinyhil (``sys.modules`` after
``pytest.main``, with and without) and the import seconds ``python -X importtime`` gives them,
the slowest first: what to make lazy when the overhead is over budget; and the CPU seconds spent
inside tinyhil's code in that run (a profile hook's count), which the machine's load barely moves. The other
plugins of the environment (pytest-embedded, xdist, ...) load in both columns alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import resource  # CPU seconds of the child processes (POSIX)
except ImportError:  # Windows: wall clock only
    resource = None

PLUGIN = "tinyhil.plugins.options"  # the pytest11 entry point's name (pyproject.toml)
WITHOUT = ("-p", f"no:{PLUGIN}")
TINYHIL_OPTION = "--virtual-board"  # one of tinyhil's options, to tell whether the plugin loaded
BUDGET_S = 0.2
Timing = tuple[float, float]  # wall-clock seconds, CPU seconds
TRIVIAL_ARGS = ("-q", "-p", "no:cacheprovider")
# pytest.main in a process of its own, then the modules that run imported: a conftest-free probe
MODULES_PROBE = (
    "import sys, pytest\npytest.main(sys.argv[1:])\nprint('\\n__MODULES__', ' '.join(sorted(sys.modules)))\n"
)


def clean_env() -> dict[str, str]:
    """This environment without the variables that add plugins or options to every pytest run."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}


def make_project(folder: Path) -> Path:
    """The trivial one-test project in ``folder``."""
    (folder / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    (folder / "pytest.ini").write_text("[pytest]\n")
    return folder


def _children_cpu_s() -> float:
    if resource is None:
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_seconds(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one process, which must succeed."""
    cpu_start, start = _children_cpu_s(), time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds, cpu_s = time.perf_counter() - start, _children_cpu_s() - cpu_start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (rc {done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, cpu_s


def check_disabling_works(cwd: Path, env: dict[str, str]) -> None:
    """Stops when ``-p no:PLUGIN`` does not remove tinyhil's options (the plugin's name changed),
    or when tinyhil is not installed (the two columns would time the same thing)."""
    pytest = [sys.executable, "-m", "pytest", "--help"]
    with_help = subprocess.run(pytest, cwd=cwd, env=env, capture_output=True, text=True).stdout
    without_help = subprocess.run([*pytest, *WITHOUT], cwd=cwd, env=env, capture_output=True, text=True).stdout
    if TINYHIL_OPTION not in with_help:
        raise SystemExit(f"pytest --help lists no {TINYHIL_OPTION}: tinyhil is not installed here (pip install -e .)")
    if TINYHIL_OPTION in without_help:
        raise SystemExit(f"-p no:{PLUGIN} left tinyhil's options in --help: its entry point has another name")


def time_cases(project: Path, runs: int, env: dict[str, str]) -> list[tuple[str, list[Timing], list[Timing]]]:
    """Per case: its name, the (wall, CPU) seconds of each run with tinyhil and without."""
    pytest = [sys.executable, "-m", "pytest"]
    cases = [("pytest --help", [*pytest, "--help"], project), ("one trivial test", [*pytest, *TRIVIAL_ARGS], project)]
    out = []
    for name, argv, cwd in cases:
        run_seconds(argv, cwd, env)  # warm-up: bytecode caches
        run_seconds([*argv, *WITHOUT], cwd, env)
        with_s, without_s = [], []
        for _ in range(runs):
            with_s.append(run_seconds(argv, cwd, env))
            without_s.append(run_seconds([*argv, *WITHOUT], cwd, env))
        out.append((name, with_s, without_s))
    return out


# The same run with a profile hook: the CPU seconds from entering tinyhil's code until leaving it
# (its imports, its hooks, its fixtures, with all they call; tinyhil's package itself is imported
# first, to find its folders). The hook slows every Python call a little: an upper bound.
PROFILE_PROBE = """
import importlib.util, os, sys, time
dirs = tuple(d + os.sep for name in ('tinyhil', 'tinyhil.models', 'tinyhil.plugins')
             for d in importlib.util.find_spec(name).submodule_search_locations)
import pytest
depth, start, total = 0, 0.0, 0.0
def hook(frame, event, arg):
    global depth, start, total
    if event not in ('call', 'return') or not frame.f_code.co_filename.startswith(dirs):
        return
    if event == 'call':
        start = time.process_time() if depth == 0 else start
        depth += 1
    else:
        depth -= 1
        total += time.process_time() - start if depth == 0 else 0.0
sys.setprofile(hook)
pytest.main(sys.argv[1:])
sys.setprofile(None)
print('\\n__TINYHIL_SECONDS__', total)
"""


def profiled_seconds(project: Path, env: dict[str, str]) -> float:
    """CPU seconds inside tinyhil's code in a trivial run (:data:`PROFILE_PROBE`): a figure the load
    of the machine barely moves."""
    argv = [sys.executable, "-c", PROFILE_PROBE, *TRIVIAL_ARGS]
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, check=True)
    return float(next(ln for ln in done.stdout.splitlines() if ln.startswith("__TINYHIL_SECONDS__")).split()[1])


def imported_modules(project: Path, env: dict[str, str], *extra: str) -> set[str]:
    """The modules a trivial run has imported when pytest.main returns."""
    argv = [sys.executable, "-c", MODULES_PROBE, *TRIVIAL_ARGS, *extra]
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, check=True)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("__MODULES__"))
    return set(line.split()[1:])


def import_seconds(project: Path, env: dict[str, str]) -> dict[str, float]:
    """Each module's own import seconds in a trivial run with tinyhil (``-X importtime``'s self column)."""
    argv = [sys.executable, "-X", "importtime", "-m", "pytest", *TRIVIAL_ARGS]
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, check=True)
    seconds = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        seconds[name.strip()] = int(self_us) / 1e6
    return seconds


def print_table(results: list[tuple[str, list[Timing], list[Timing]]], runs: int) -> tuple[float, float]:
    """The table.

    Returns:
        The largest overhead in wall-clock seconds and in CPU seconds: the median of the paired
        differences (run i with tinyhil minus run i without, back to back), which drift on a
        busy machine moves less than a difference of medians.
    """
    print(f"\n{runs} runs of each, interleaved; wall-clock seconds (median, min); overhead = median of")
    print("the paired differences; CPU = user + system seconds of the pytest process (medians)\n")
    print(
        "| case | with tinyhil (median, min s) | without (median, min s) | overhead (s) | CPU with / without / overhead (s) |"
    )
    print("|---|---|---|---|---|")
    worst_wall = worst_cpu = float("-inf")
    for name, with_t, without_t in results:
        wall_with, wall_without = [w for w, _ in with_t], [w for w, _ in without_t]
        overhead = statistics.median(a - b for a, b in zip(wall_with, wall_without, strict=True))
        cpu_overhead = statistics.median(a[1] - b[1] for a, b in zip(with_t, without_t, strict=True))
        worst_wall, worst_cpu = max(worst_wall, overhead), max(worst_cpu, cpu_overhead)
        cpu_with, cpu_without = statistics.median(c for _, c in with_t), statistics.median(c for _, c in without_t)
        print(
            f"| {name} | {statistics.median(wall_with):.3f}, {min(wall_with):.3f} "
            f"| {statistics.median(wall_without):.3f}, {min(wall_without):.3f} | {overhead:+.3f} "
            f"| {cpu_with:.3f} / {cpu_without:.3f} / {cpu_overhead:+.3f} |"
        )
    return worst_wall, worst_cpu


def verdict(wall_s: float, cpu_s: float, load: float | None, cores: int) -> tuple[str, bool]:
    """The closing line, and whether the budget holds. Wall clock is the budget's measure; on a
    machine busier than its cores it also counts the wait for a core, so the CPU seconds decide
    there (and the line says to measure again on an idle machine)."""
    figures = f"largest overhead {wall_s:+.3f} s wall clock, {cpu_s:+.3f} s CPU"
    busy = load is not None and load > cores
    if wall_s <= BUDGET_S and cpu_s <= BUDGET_S:
        return f"{figures}: within the {BUDGET_S} s budget", True
    if busy and cpu_s <= BUDGET_S:
        return (
            f"{figures}: CPU within the {BUDGET_S} s budget; the wall clock is not to be trusted on this "
            f"machine (load average {load:.1f} on {cores} cores): run again on an idle one",
            True,
        )
    return f"{figures}: OVER the {BUDGET_S} s budget", False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each case and column (Default: 10)")
    parser.add_argument("--top", type=int, default=15, help="slowest tinyhil-only imports to list (Default: 15)")
    args = parser.parse_args(argv)
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="tinyhil-overhead-") as tmp:
        project = make_project(Path(tmp))
        check_disabling_works(project, env)
        print(f"python {sys.version.split()[0]} at {sys.executable}; trivial project {project}")
        worst = print_table(time_cases(project, args.runs, env), args.runs)

        with_mods = imported_modules(project, env)
        without_mods = imported_modules(project, env, *WITHOUT)
        own = sorted(m for m in with_mods if m.split(".")[0] == "tinyhil")
        extra = with_mods - without_mods
        print(f"\ntinyhil modules imported by the trivial run: {len(own)}")
        for name in own:
            print(f"    {name}")
        seconds = import_seconds(project, env)
        slowest = sorted(((seconds.get(m, 0.0), m) for m in extra), reverse=True)
        print(
            f"modules imported only with tinyhil: {len(extra)} ({len(extra) - len(own)} of them not tinyhil's), "
            f"{sum(s for s, _ in slowest):.3f} s of import (-X importtime, self); the slowest:"
        )
        for s, name in slowest[: args.top]:
            print(f"    {s * 1000:8.1f} ms  {name}")
        print(
            f"CPU seconds inside tinyhil's code in the trivial run (its imports, hooks and fixtures, with all "
            f"they call; a profile hook's count): {profiled_seconds(project, env):.3f} s"
        )

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    line, holds = verdict(*worst, load, os.cpu_count() or 1)
    print(f"\n{line}")
    return 0 if holds else 1


if __name__ == "__main__":
    sys.exit(main())
