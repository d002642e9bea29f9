"""The fault suite writes its own report: every scenario records what went in, what came out,
what was lost and what was doubled (any loss or duplicate fails its test). `make reliability`
runs the suite and writes docs/reliability.md from the records; `make test` writes nothing in
the working tree (the report goes where PLANTLAKE_RELIABILITY_REPORT names, when it is set)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPORT_ENV = "PLANTLAKE_RELIABILITY_REPORT"
HEADER = """# Reliability

Written by the fault suite (`tests/faults/`, marker `faults`, part of `make test`) when
`make reliability` runs it: one row per scenario, as that test measured it. "Lost" and "duplicates" are counted by id
in the curated output against what the source sent; any non-zero value fails its test.

| scenario | data in | data out | lost | duplicates | counted as | notes |
|---|---|---|---|---|---|---|
"""


@dataclass
class Row:
    scenario: str
    data_in: int
    data_out: int
    lost: int
    duplicates: int
    unit: str
    note: str = ""

    def line(self) -> str:
        cells = [self.scenario, f"{self.data_in:,}", f"{self.data_out:,}", str(self.lost), str(self.duplicates),
                 self.unit, self.note]
        return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


_ROWS: dict[str, Row] = {}


def record(scenario: str, **numbers) -> None:
    """Record a scenario's accounting: record(scenario, data_in=, data_out=, lost=, duplicates=, unit=, note=)."""
    row = Row(scenario, **numbers)
    assert row.lost == 0 and row.duplicates == 0, row
    _ROWS[scenario] = row


@pytest.fixture
def reliability():
    return record


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    target = os.environ.get(REPORT_ENV)
    if not _ROWS or not target:
        return
    report = Path(target)
    kept = {}
    if report.exists():  # a slice of the suite keeps the rows of scenarios it did not run
        for line in report.read_text().splitlines():
            m = re.match(r"\| ([^|]+?) \| [\d,]+ \|", line)
            if m:
                kept[m.group(1)] = line
    kept.update({name: row.line() for name, row in _ROWS.items()})
    report.write_text(HEADER + "\n".join(kept[k] for k in sorted(kept)) + "\n")
