"""The README and docs/ stay true to the code: every CSV column and option is documented (an
option in its group, with its default), every relative link resolves, every ``python -m``
module and benchmark script exists, and the README's commands run as written."""

import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.unit.subrun import ROOT
from tinyhil.plugins.report.columns import COLUMN_NAMES
from tinyhil.plugins.settings.table import GROUPS, OPTIONS

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
FIRST_COMMANDS = [
    "pip install -r requirements.txt -e . && python -m pytest -m offline",
    "pip install -r requirements.txt -e . && python -m pytest -n 2",
]
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(page) -> str:
    """The page without its fenced code blocks: a link or heading inside one is just text."""
    return FENCE.sub("", page.read_text())


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", _prose(page), flags=re.M)}


def _documented_options() -> dict[str, dict[str, str]]:
    """docs/options.md: group -> {option name: its default cell}, from the ``## tinyhil <group>``
    sections' ``| `--name` | meaning | default |`` rows."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in (DOCS / "options.md").read_text().splitlines():
        heading = re.match(r"^## (.+)$", line)
        if heading:
            group = re.fullmatch(r"tinyhil (\w+)", heading.group(1))
            current = sections.setdefault(group.group(1), {}) if group else None
            continue
        row = re.match(r"^\| `--([a-z0-9-]+)` \| .* \| ([^|]+) \|$", line)
        if row and current is not None:
            current[row.group(1)] = row.group(2).strip()
    return sections


def _default_matches(option, cell: str) -> bool:
    if option.is_flag:
        return cell == "off"
    if option.default == "":
        return cell.startswith("empty")
    return cell.startswith(f"`{option.default}`")


def test_the_readme_starts_with_the_two_commands():
    first_block = FENCE.search((ROOT / "README.md").read_text()).group(0)
    assert first_block.splitlines()[1:-1] == FIRST_COMMANDS


def test_every_csv_column_is_documented_in_order():
    documented = re.findall(r"^\| `(\w+)` \|", (DOCS / "csv-columns.md").read_text(), flags=re.M)
    missing = sorted(set(COLUMN_NAMES) - set(documented))
    assert not missing, f"columns docs/csv-columns.md does not name: {missing}"
    assert documented == COLUMN_NAMES, "docs/csv-columns.md lists columns in another order, or twice"


def test_every_option_is_documented_in_its_group_with_its_default():
    sections = _documented_options()
    assert set(sections) == set(GROUPS), f"docs/options.md's groups: {sorted(sections)}; --help's: {sorted(GROUPS)}"
    missing = [f"--{o.name} ({o.group})" for o in OPTIONS if o.name not in sections[o.group]]
    assert not missing, f"options docs/options.md does not list in their group: {missing}"
    wrong = [
        f"--{o.name}: {sections[o.group][o.name]!r}, default {o.default!r}"
        for o in OPTIONS
        if not _default_matches(o, sections[o.group][o.name])
    ]
    assert not wrong, f"defaults docs/options.md states wrongly: {wrong}"
    known = {(o.group, o.name) for o in OPTIONS}
    stale = [f"--{name} ({group})" for group, rows in sections.items() for name in rows if (group, name) not in known]
    assert not stale, f"docs/options.md lists options that do not exist (or in another group): {stale}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(page):
    broken = []
    for target in LINK.findall(_prose(page)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_names_a_module_or_script_that_exists(page):
    text = page.read_text()
    missing = []
    for module in sorted({m.rstrip(".") for m in re.findall(r"\bpython -m ([\w.]+)", text)}):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations is not None:  # a package runs its __main__
            spec = importlib.util.find_spec(f"{module}.__main__")
        if spec is None:
            missing.append(f"python -m {module}")
    for script in sorted(set(re.findall(r"\bpython ((?:[\w-]+/)*[\w-]+\.py)\b", text))):
        if not (ROOT / script).is_file():
            missing.append(f"python {script}")
    assert not missing, f"{page.name} names what does not run: {missing}"


def test_the_readme_commands_run_as_written():
    """The README's 'Bring your own' block, each line run as it is written, from the repository."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Bring your own model, data and board.*?```\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in commands:
        argv = shlex.split(command)
        assert argv[:2] == ["python", "-m"]
        done = subprocess.run(
            [sys.executable, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the sentence may wrap anywhere: whitespace between its words is any run of spaces or newlines
    claimed = re.search(r"The second\s+gives\s+(\d+)\s+cases\s+\(measured\s+here:\s+(\d+)\s+passed", readme)
    assert claimed and claimed.group(1) == claimed.group(2), "the README states the case count it measured"
    assert f"{claimed.group(2)} passed" in done.stdout  # the README's figure is what the command gives
