"""tinyhil as a user gets it: a wheel installed into a fresh environment, used from a project
of their own that has its own ``models`` and ``plugins`` packages and tests.

The heavy packages (TensorFlow, tflite-micro, pytest) come from this environment
(``--system-site-packages``); tinyhil itself only from the wheel (``--no-deps --no-index``).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import tflite_micro

from tinyhil import resources

ROOT = Path(__file__).resolve().parents[2]
SINE = Path(tflite_micro.__path__[0]) / "python" / "tflite_micro" / "sine_float.tflite"


def _run(argv, cwd, env=None, timeout=600):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        ROOT,
    )
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("tinyhil-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory, wheel) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    assert _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], venv).returncode == 0
    py = venv / "bin" / "python"
    r = _run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], venv)
    assert r.returncode == 0, r.stderr
    return py


@pytest.fixture(scope="module")
def user_project(tmp_path_factory) -> Path:
    proj = tmp_path_factory.mktemp("userproj")
    for name, value in (("models", "X = 1"), ("plugins", "Y = 2")):
        (proj / name).mkdir()
        (proj / name / "__init__.py").write_text(value + "\n")
    (proj / "pytest.ini").write_text("[pytest]\npythonpath = .\n")  # the project's packages importable by its tests
    (proj / "tests").mkdir()
    (proj / "tests" / "test_mine.py").write_text(
        "from models import X\nfrom plugins import Y\n\n\ndef test_mine():\n    assert X + Y == 3\n"
    )
    (proj / "tests" / "test_untouched.py").write_text(
        "import os\nimport sys\n\n\ndef test_an_installed_tinyhil_changes_nothing_here():\n"
        "    assert 'TF_USE_LEGACY_KERAS' not in os.environ  # tinyhil.models would select tf_keras\n"
        "    assert not [m for m in sys.modules if m.startswith('tinyhil.models')]\n"
        "    assert not [f for f in sys.meta_path if type(f).__module__.startswith('tinyhil')]\n"
    )
    (proj / "tests" / "test_tinyhil.py").write_text("from tinyhil.study import test_case  # noqa: F401\n")
    (proj / "sine_float.tflite").write_bytes(SINE.read_bytes())
    return proj


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "TF_USE_LEGACY_KERAS")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def test_wheel_holds_one_import_name_and_every_runtime_file(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"tinyhil"}, tops
    for needed in (
        "tinyhil/firmware/components/tinyhil_core/commands.def",
        "tinyhil/firmware/components/tinyhil_core/test/vectors.tsv",
        "tinyhil/firmware/main/ops.def",
        "tinyhil/firmware/main/Kconfig.projbuild",
        "tinyhil/firmware/partitions.csv",
        "tinyhil/firmware/CMakeLists.txt",
        "tinyhil/models/data/profiles.json",
        "tinyhil/models/data/boards/esp32-wroom-32.json",
        "tinyhil/models/data/expectations/esp32-wroom-32/",
    ):
        assert any(n.startswith(needed) for n in names), needed
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: tensorflow" in meta and "Requires-Dist: tflite-micro" in meta


def test_every_package_folder_is_in_the_wheel_list():
    """A sub-package added under models/ or plugins/ but not listed in pyproject.toml would be
    missing from the wheel while the checkout still works."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    for top, name in (("models", "tinyhil.models"), ("plugins", "tinyhil.plugins")):
        for init in (ROOT / top).rglob("__init__.py"):
            dotted = ".".join([name, *init.parent.relative_to(ROOT / top).parts])
            assert dotted in listed, f"{dotted} is not in pyproject.toml's [tool.setuptools] packages"


def test_users_own_models_and_plugins_packages_are_unaffected(venv_python, user_project, tmp_path):
    # python -m pytest (the project folder first on sys.path) ...
    mine = ["tests/test_mine.py", "tests/test_untouched.py"]
    r = _run([str(venv_python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *mine], user_project, _env())
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout + r.stderr
    # ... and pytest as a console script (its own folder first on sys.path)
    script = tmp_path / "bin" / "pytest"
    script.parent.mkdir()
    script.write_text("import sys\nimport pytest\n\nsys.exit(pytest.console_main())\n")
    r = _run([str(venv_python), str(script), "-q", "-p", "no:cacheprovider", *mine], user_project, _env())
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout + r.stderr
    # no bare name leaks from the install
    probe = (
        "import importlib.util as u, tinyhil; print(u.find_spec('models'), u.find_spec('plugins'), tinyhil.__file__)"
    )
    r = _run([str(venv_python), "-c", probe], tmp_path, _env())
    none_models, none_plugins, where = r.stdout.split()
    assert (none_models, none_plugins) == ("None", "None"), r.stdout
    assert where.startswith(str(venv_python.parent.parent)), where


def test_the_study_runs_from_the_users_project(venv_python, user_project):
    # the option's value after a space, an existing folder: parsed as the option's value
    (user_project / "out").mkdir(exist_ok=True)
    argv = [str(venv_python), "-m", "pytest", "-p", "tinyhil.study", "-p", "no:cacheprovider", "-m", "offline"]
    argv += [f"--networks={user_project / 'sine_float.tflite'}", "--report-dir", "out", "--model-cache", "cache"]
    r = _run(argv, user_project, _env(), timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    with open(user_project / "out" / "results.csv", newline="") as f:
        rows = {row["case_id"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"sine_float-as_is-host"}  # the same id as in tinyhil's own checkout
    assert rows["sine_float-as_is-host"]["status"] == "ok"
    assert rows["sine_float-as_is-host"]["git_rev"].startswith("tinyhil ")  # the installed code, not a checkout


def test_a_study_run_without_the_case_module_says_why(venv_python, tmp_path):
    (tmp_path / "test_other.py").write_text("def test_x():\n    pass\n")
    argv = [str(venv_python), "-m", "pytest", "-p", "tinyhil.study", "-p", "no:cacheprovider", "-m", "offline"]
    r = _run(argv, tmp_path, _env())
    assert "no study case was collected" in r.stdout and "from tinyhil.study import test_case" in r.stdout, r.stdout


def test_the_firmware_project_comes_with_the_install(venv_python, tmp_path):
    r = _run([str(venv_python), "-m", "tinyhil", "firmware", str(tmp_path / "fw")], tmp_path, _env())
    assert r.returncode == 0, r.stderr
    shipped = sorted(p.relative_to(resources.firmware()) for p in resources.firmware().rglob("*") if p.is_file())
    written = sorted(p.relative_to(tmp_path / "fw") for p in (tmp_path / "fw").rglob("*") if p.is_file())
    assert Path("main/CMakeLists.txt") in written and Path("main/idf_component.yml") in written
    assert set(written) <= set(shipped)
    r = _run([str(venv_python), "-m", "tinyhil", "firmware", str(tmp_path / "fw")], tmp_path, _env())
    assert r.returncode != 0 and "not an empty folder" in r.stderr


def test_a_second_checkout_runs_its_own_code_or_says_which_it_would_use(tmp_path):
    """With this checkout installed editable, pytest pointed at another checkout from outside it
    would import this one's tinyhil while recording the other's git revision."""
    other = tmp_path / "clone2"
    other.mkdir()
    for name in ("models", "plugins", "tinyhil", "firmware"):
        shutil.copytree(ROOT / name, other / name, ignore=shutil.ignore_patterns("__pycache__", "build*"))
    for name in ("pyproject.toml", "conftest.py", "pytest.ini"):
        shutil.copy(ROOT / name, other / name)
    (other / "tests").mkdir()
    (other / "tests" / "test_matrix.py").write_text("from tinyhil.study import test_case  # noqa: F401\n")
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "offline"]
    outside = _run([*argv, str(other / "tests")], tmp_path, _env())
    assert outside.returncode == 4, outside.stdout + outside.stderr
    assert f"rootdir is the tinyhil checkout {other}" in outside.stderr and "pip install -e" in outside.stderr
    inside = _run(argv, other, _env())  # from inside it, its own tinyhil is imported
    assert inside.returncode == 0 and "C_1-lite-host" in inside.stdout, inside.stdout + inside.stderr
