"""`plantlake lake migrate` on a lake written by the last plantlake that kept plain Parquet (the
commit before the Delta tables, run from `git archive` in a subprocess): the demo's lake, with a
compacted day, becomes Delta tables holding exactly the rows it held (the golden snapshot of the
demo), and a rerun of a migrated interval replaces its own rows instead of adding a second copy."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from pyarrow.dataset import field as pc_field

from plantlake.core.lake import Lake
from plantlake.core.views import connect
from plantlake.pipeline.migrate import BACKUP, migrate
from plantlake.pipeline.runner import run_source
from schemas import get_table
from tests import golden
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

#: the last commit whose lake is plain Parquet with JSON manifests
PRE_DELTA = "d201b8ea80456bc4e20ba9c87621948788b3b1d0"

OLD_DEMO = """
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from plantlake.app.demo import run_demo
from plantlake.core.config import load_config
from plantlake.core.lake import Lake
from plantlake.pipeline.compaction import compact_day
from schemas import get_table

folder = Path(sys.argv[1])
cfg = load_config(folder / "plant.yaml")
run_demo(cfg, config_path=folder / "plant.yaml", now=datetime(2026, 3, 2, 12, 30, tzinfo=UTC))
compact_day(Lake(folder / "lake"), get_table("sensor_readings"), date(2026, 3, 2))
"""


def _old_tree(into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", PRE_DELTA], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def test_a_plain_parquet_lake_migrates_in_place_with_every_row_and_owner(tmp_path, plant_dir):
    old = _old_tree(tmp_path / "old")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PLANTLAKE"))}
    env.update(PYTHONPATH=str(old), AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}",
               AIRFLOW__CORE__DAGS_FOLDER=str(old / "dags"))
    current = (plant_dir / "plant.yaml").read_text()
    (plant_dir / "plant.yaml").write_text((old / "plant.yaml").read_text())  # the site config of that plantlake
    done = subprocess.run([sys.executable, "-c", OLD_DEMO, str(plant_dir)], cwd=old, env=env,
                          capture_output=True, text=True, timeout=600)
    (plant_dir / "plant.yaml").write_text(current)
    assert done.returncode == 0, done.stderr[-3000:]
    lake = Lake(plant_dir / "lake")
    assert (lake.state_dir / "published").is_dir()  # the old layout, with its manifests
    compacted = sorted(p.name for p in (lake.root / "curated" / "sensor_readings" / "date=2026-03-02").iterdir())
    assert compacted == ["historian_export__compacted.parquet", "mqtt_plant__compacted.parquet",
                         "opcua_plant__compacted.parquet"]

    migrated = migrate(lake)
    by_folder = {m.folder: m for m in migrated}
    assert {"curated/sensor_readings", "curated/production_orders", "curated/inspection_images",
            "products/order_context", "quarantine/inspection_images", "_quality/quality_results"} <= set(by_folder)
    assert all(m.digest_matches and m.rows_before == m.rows_after > 0 for m in migrated)
    assert (lake.root / BACKUP / "curated" / "sensor_readings").is_dir()  # the old files, kept aside
    assert not (lake.state_dir / "published").exists() and not (lake.state_dir / "locks").exists()
    # every table holds what the demo's lake holds (the same snapshot test_demo checks), but for the
    # columns added since that plantlake: null until the products are rebuilt
    golden.check(lake.root, ROOT / "tests" / "data" / "golden" / "demo.json",
                 predates={"products/image_training_set": {"sensor_traces", "alarms"},
                           "products/order_context": {"alarms"}, "curated/events": None})
    # owners came from the manifests: an interval's rows are its own; a compacted day's are the
    # source's, of no one interval (the old compaction merged them), which a rerun's key scope covers
    def owners(table: str) -> set[tuple[str, str]]:
        t = lake.dataset(get_table(table)).to_table(columns=["_source", "_interval"])
        return set(zip(t["_source"].to_pylist(), t["_interval"].to_pylist(), strict=True))

    assert owners("sensor_readings") == {("historian_export", "compacted"), ("mqtt_plant", "compacted"),
                                         ("opcua_plant", "compacted")}
    assert owners("inspection_images") == {("camera_images", f"20260302T{h:02d}0000Z_20260302T{h + 1:02d}0000Z")
                                           for h in (9, 10, 11)}
    assert ("products", "20260302T000000Z_20260303T000000Z") in owners("order_context")
    sensor = get_table("sensor_readings")
    before = lake.read(sensor).num_rows
    again = migrate(lake)
    assert again == []  # a second migrate finds Delta tables only

    # a rerun of a migrated interval with today's plantlake replaces that interval's own rows
    from plantlake.core.config import load_config

    images = get_table("inspection_images")
    hour = lake.dataset(images).to_table(filter=pc_field("_interval") == "20260302T100000Z_20260302T110000Z").num_rows
    total = lake.read(images).num_rows
    rerun = run_source("camera_images", datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 11, tzinfo=UTC),
                       config=load_config(plant_dir / "plant.yaml"), lake=lake)
    assert rerun.tables["inspection_images"].published == hour > 0  # published again, not dropped as known
    con = connect(lake)
    assert con.execute("select count(*), count(distinct image_id) from inspection_images").fetchone() == (total, total)
    assert lake.read(sensor).num_rows == before
