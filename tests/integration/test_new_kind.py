"""A new source kind is one folder and one registry line: `tests/data/new_kind` holds a kind
packaged outside plantlake (its folder, and the entry point a pip install would register), and
with it on the path the site config accepts the kind, the CLI runs it and its rows publish."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.dataset as ds
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration
KIND = ROOT / "tests" / "data" / "new_kind"
SOURCE = """
  - name: parts_counter
    kind: counter
    every_s: 120
    tags:
      - {ref: parts, asset: assembly/line1/press1, tag: parts_made}
"""


def _plantlake(plant_dir, *args: str, extra: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(KIND)] if extra else []) + os.pathsep + str(ROOT)}
    return subprocess.run([sys.executable, "-m", "plantlake", "--config", str(plant_dir / "plant.yaml"), *args],
                          cwd=plant_dir, env=env, capture_output=True, text=True, timeout=300)


def test_a_kind_from_its_own_folder_and_entry_point_runs_like_the_built_in_ones(plant_dir):
    cfg = plant_dir / "plant.yaml"
    text = cfg.read_text()
    cfg.write_text(text.replace("\nsources:\n", "\nsources:" + SOURCE, 1))
    assert "kind: counter" in cfg.read_text()

    done = _plantlake(plant_dir, "run", "parts_counter", "--start", "2026-03-02T09:00:00+00:00",
                      "--end", "2026-03-02T10:00:00+00:00", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert (summary["kind"], summary["raw_rows"], summary["published"], summary["quarantined"]) == ("counter", 30, 30, 0)
    rows = ds.dataset(plant_dir / "lake" / "curated" / "sensor_readings", partitioning="hive").to_table().to_pylist()
    assert sorted(r["value"] for r in rows) == [float(i) for i in range(30)]
    assert {(r["source"], r["source_name"], r["asset_id"], r["tag"]) for r in rows} == {
        ("counter", "parts_counter", "acme/shenzhen/assembly/line1/press1", "parts_made")}

    # without the kind installed, the same config names the kind it does not know
    unknown = _plantlake(plant_dir, "config", "check", extra=False)
    assert unknown.returncode == 2
    assert "sources[0]: Input tag 'counter' found using 'kind' does not match any of the expected tags" in unknown.stderr
