"""The report folder as one run's own: its lock, and JUnit moved in whole at the end.

A run takes ``<report-dir>/.tinyhil.lock`` (:mod:`tinyhil.plugins.report.lock`) once it is known to
run study cases; a second run on a held folder writes nothing there. pytest's junitxml (and
pytest-embedded, which rewrites the file) write JUnit beside its name
(:func:`tinyhil.plugins.report.whole_files.junit_beside`), and :meth:`ReportFolder.place_junit`
moves it in once every plugin is done with it, so a run that stopped early or found the disk
full leaves the last junit.xml whole.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from pathlib import Path

import pytest
from _pytest.junitxml import xml_key as junit_xml_key

from tinyhil.plugins.report.lock import ReportDirBusy, ReportLock, describe
from tinyhil.plugins.report.whole_files import JUNIT_KEY, why_not_written


class ReportFolder:
    """One run's hold on its report folder (on the controller; an xdist worker holds nothing).

    Args:
        config: The run's pytest config.
        report_dir: ``--report-dir``.
        end_failures: Why -> end-of-run files that could not be written; JUnit's failure goes there.
    """

    def __init__(self, config: pytest.Config, report_dir: Path, end_failures: dict[str, list[str]]):
        self.config, self.report_dir, self.end_failures = config, report_dir, end_failures
        self.controller = not hasattr(config, "workerinput")
        self.lock = ReportLock(report_dir)
        self.refused = False  # another run holds the folder: this one writes nothing there
        paths = config.stash.get(JUNIT_KEY, None) if self.controller else None
        self.junit_tmp: Path | None = Path(paths[0]) if paths else None  # where junitxml writes
        self.junit_final: str | None = paths[1] if paths else None  # --junitxml's name
        self.junit_error: OSError | None = None  # junitxml's write failed (a full disk)
        self.junit_placed = False
        self.tests_reported = 0  # test reports seen: none means the run stopped before any test

    def claim(self) -> dict | None:
        """Takes the folder for this run; returns the lock a dead run left, if it took one over.

        Raises:
            pytest.UsageError: another live run holds the folder, or the lock cannot be written.
        """
        if self.lock.held or self.refused or not self.controller or self.config.option.collectonly:
            return None
        params = self.config.invocation_params
        try:
            return self.lock.acquire(shlex.join(["pytest", *params.args]), str(params.dir))
        except ReportDirBusy as e:
            self.refused = True
            raise pytest.UsageError(
                f"tinyhil: --report-dir {self.report_dir} is in use by {describe(e.holder)}: two runs in one "
                "folder would mix their results.csv and junit.xml. Wait for that run to end, or give this run "
                "another --report-dir"
            ) from None
        except OSError as e:
            self.refused = True
            raise pytest.UsageError(
                f"tinyhil: {why_not_written(self.lock.path, e)}; free some space or give another --report-dir"
            ) from None

    def place_junit(self) -> None:
        """Moves the JUnit file pytest wrote to its final name, once; on failure the old junit.xml
        stays. A run in which no test ran (it stopped at start-up, or selected none) keeps the old
        junit.xml too, as it keeps results.csv and the page: the folder does not contradict itself.
        In a folder another run holds, the file is removed and junitxml's plugin with it (so no
        line says a file was written)."""
        if self.junit_placed or self.junit_tmp is None:
            return
        self.junit_placed = True
        error = self.junit_error
        if error is None and not self.junit_tmp.exists():
            return
        xml = self.config.stash.get(junit_xml_key, None)
        try:
            if error is not None:
                raise error
            if self.refused or not self.tests_reported:
                if xml is not None:
                    del self.config.stash[junit_xml_key]
                    self.config.pluginmanager.unregister(xml)
                raise FileExistsError
            os.replace(self.junit_tmp, self.junit_final)
            if xml is not None:
                xml.logfile = os.path.abspath(self.junit_final)  # what pytest's "generated xml file" line shows
        except OSError as e:
            if not self.refused and self.tests_reported:
                self.end_failures.setdefault(why_not_written(self.report_dir, e), []).append("junit.xml")
            with contextlib.suppress(OSError):
                self.junit_tmp.unlink()

    def release(self) -> None:
        self.place_junit()  # a run without a terminal reporter (-p no:terminal) moves it here
        self.lock.release()
