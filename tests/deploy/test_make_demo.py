"""`make demo` as a new user runs it: in a clean copy of the repository (what git tracks, nothing
generated), through the Makefile, once on a machine where Mosquitto is out of reach and once with
it. The environment holds no Airflow or plantlake settings of the test session; the venv is the
one `make` built for this run (the copy would build the same one)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from simulators.broker import MOSQUITTO
from tests.conftest import ROOT

pytestmark = pytest.mark.deploy


def clean_copy(dest: Path) -> Path:
    """The files a fresh clone of this work tree would hold (tracked and new, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def make_demo(repo: Path, *, mosquitto: bool) -> subprocess.CompletedProcess:
    venv = Path(sys.prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PLANTLAKE", "LAKE_ROOT"))}
    # out of reach: not on PATH and not in /usr/sbin (PLANTLAKE_MOSQUITTO=none also keeps make from installing it)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (Path(p) / "mosquitto").exists() or mosquitto)
    if not mosquitto:
        env["PLANTLAKE_MOSQUITTO"] = "none"
    assert mosquitto or shutil.which("mosquitto", path=env["PATH"]) is None
    # -o: the venv counts as built (it is this one), so make does not reinstall the project from the copy
    return subprocess.run(["make", "demo", f"VENV={venv}", "-o", f"{venv}/.installed"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)


def lake_counts(repo: Path) -> dict[str, int]:
    """Row counts as an analyst reads them after `make demo`: through the catalog's views."""
    con = duckdb.connect(str(repo / "lake" / "catalog.duckdb"), read_only=True)
    out = {}
    for src, n in con.execute("select source, count(*) from sensor_readings group by 1").fetchall():
        out[f"sensor_readings/{src}"] = n
    for table in ("curated/inspection_images", "curated/quality_inspections", "products/order_context",
                  "products/image_training_set", "curated/production_orders"):
        out[table] = con.execute(f'select count(*) from "{table.split("/")[1]}"').fetchone()[0]  # noqa: S608 - constants
    return out


@pytest.mark.parametrize("mosquitto", [False, True], ids=["mosquitto-out-of-reach", "with-mosquitto"])
def test_make_demo_in_a_clean_copy(tmp_path, mosquitto):
    if mosquitto and MOSQUITTO is None:
        pytest.fail("make test installs Mosquitto; it is missing here (apt-get install mosquitto)")
    repo = clean_copy(tmp_path / "plantlake")
    done = make_demo(repo, mosquitto=mosquitto)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    counts = lake_counts(repo)
    for table in ("sensor_readings/csv", "sensor_readings/opcua", "curated/inspection_images",
                  "curated/quality_inspections", "curated/production_orders", "products/order_context",
                  "products/image_training_set"):
        assert counts.get(table, 0) > 0, (table, counts, out[-2000:])
    assert (repo / "lake/_report/index.html").exists() and (repo / "lake/catalog.duckdb").exists()
    if mosquitto:
        assert counts.get("sensor_readings/mqtt", 0) > 0 and "NOT RUN" not in out, counts
        assert "mqtt_plant: 3 hourly intervals" in out
    else:  # left out, loudly, with the fix; everything else still ran
        assert "sensor_readings/mqtt" not in counts
        assert "mqtt_plant: NOT RUN: this machine has no MQTT broker (Mosquitto). `make demo` as root installs it" in out
        assert "1 source(s) NOT RUN on this machine: mqtt_plant" in out
        assert "NO MQTT broker" in out
        for ran in ("historian_export", "opcua_plant", "camera_images", "erp"):
            assert f"{ran}: 3 hourly intervals" in out
