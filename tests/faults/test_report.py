"""The fault suite's report: `make test` leaves the tracked docs/reliability.md alone; the report
is written only where PLANTLAKE_RELIABILITY_REPORT names (what `make reliability` sets)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.faults
ONE = "tests/faults/test_fuzz.py::test_any_file_bytes_are_probed_without_raising"


def _run(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ONE], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_the_suite_writes_its_report_only_where_it_is_asked_to(tmp_path):
    tracked = ROOT / "docs" / "reliability.md"
    before = tracked.read_bytes()
    env = {k: v for k, v in os.environ.items() if k != "PLANTLAKE_RELIABILITY_REPORT"}
    _run(env)
    assert tracked.read_bytes() == before
    report = tmp_path / "reliability.md"
    _run({**env, "PLANTLAKE_RELIABILITY_REPORT": str(report)})
    assert report.read_text().splitlines()[-1].startswith("| fuzzed image files (any bytes) | 300 | 300 | 0 | 0 |")
    assert tracked.read_bytes() == before
