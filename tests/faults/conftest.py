"""The fault suite writes its own report: every scenario records what went in, what came out,
what was lost and what was doubled, and the session writes docs/reliability.md from that."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT

REPORT = ROOT / "docs" / "reliability.md"
HEADER = """# Reliability

Written by the fault suite (`tests/faults/`, marker `faults`, part of `make test`) each time it
runs: one row per scenario, as that test measured it. "Lost" and "duplicates" are counted by id
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
    if not _ROWS:
        return
    kept = {}
    if REPORT.exists():  # a slice of the suite keeps the rows of scenarios it did not run
        for line in REPORT.read_text().splitlines():
            m = re.match(r"\| ([^|]+?) \| [\d,]+ \|", line)
            if m:
                kept[m.group(1)] = line
    kept.update({name: row.line() for name, row in _ROWS.items()})
    REPORT.write_text(HEADER + "\n".join(kept[k] for k in sorted(kept)) + "\n")
