"""The whole lake on S3-compatible object storage: `lake.root: s3://…` with its endpoint and
credentials from an Airflow connection, against moto's S3 server on loopback. The demo (every
source through its Airflow DAG, quality, products, report) runs into the bucket and holds exactly
what the local demo's lake holds (the same golden snapshot); raw landings, image blobs, state and
validation results are objects in the bucket, not files on the worker; a rerun changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from plantlake.app.demo import run_demo
from plantlake.core.config import load_config
from schemas import get_table
from tests import golden
from tests.conftest import ROOT, lake_content, lake_on_s3
from tests.servers import s3_server

pytestmark = [pytest.mark.integration, pytest.mark.s3]


def s3_site(plant_dir: Path, s3, monkeypatch) -> Path:
    """plant.yaml with its lake in the bucket, and the connection that reaches it."""
    cfg = plant_dir / "plant.yaml"
    cfg.write_text(lake_on_s3(cfg.read_text(), s3, "acme", plant_dir / "worker"))
    monkeypatch.setenv("AIRFLOW_CONN_PLANTLAKE_LAKE", s3.connection_uri)
    return cfg


def test_the_demo_runs_into_an_s3_lake_and_holds_what_the_local_one_does(plant_dir, monkeypatch):
    with s3_server() as s3:
        cfg_path = s3_site(plant_dir, s3, monkeypatch)
        cfg = load_config(cfg_path)
        summaries = run_demo(cfg, config_path=cfg_path, now=datetime(2026, 3, 2, 12, 30, tzinfo=UTC))
        assert {s.source for s in summaries} == {"historian_export", "opcua_plant", "mqtt_plant", "camera_images", "erp"}
        lake = cfg.open_lake()
        assert lake.remote and lake.uri == "s3://lake/acme"
        # every table holds what the local demo's lake holds
        golden.check(lake, ROOT / "tests" / "data" / "golden" / "demo.json", site=str(plant_dir))
        keys = s3.keys("acme/")
        prefixes = {k.split("/")[1] for k in keys}
        assert {"raw", "curated", "quarantine", "products", "images", "_quality", "_state"} <= prefixes
        images = [k for k in keys if k.startswith("acme/images/")]
        assert len(images) == lake.read(get_table("inspection_images")).num_rows > 0
        state = [k for k in keys if k.startswith("acme/_state/erp/")]
        assert state and all(k.endswith(".json") for k in state)
        results = [k for k in keys if k.startswith("acme/_quality/results/")]
        assert results and json.loads(lake.storage.get(results[0].removeprefix("acme/")))["suite"]
        # the worker's own folder holds only what is local by nature: no table, no raw, no blob, no state
        # (the tasks' lineage events are appended to a local file, as a deployment names one)
        local = {p.relative_to(plant_dir / "worker").parts[0] for p in (plant_dir / "worker").rglob("*") if p.is_file()}
        assert local <= {"_staging", "_cache", "_quality", "_report", "_lineage", "catalog.duckdb"}, local
        assert (plant_dir / "worker" / "_lineage" / "events.jsonl").stat().st_size > 0
        assert not (plant_dir / "lake").exists()
        # the report and the catalog work from the bucket
        assert (plant_dir / "worker" / "_report" / "index.html").exists()
        from plantlake.pipeline.catalog import query

        n = query(lake, "select count(*) as n from sensor_readings").to_pylist()[0]["n"]
        assert n == sum(s.tables["sensor_readings"].published for s in summaries if "sensor_readings" in s.tables)
        # a rerun of an hour changes nothing
        before = lake_content(lake)
        from plantlake.pipeline.runner import run_source

        again = run_source("camera_images", datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 11, tzinfo=UTC),
                           config=cfg)
        assert again.published > 0
        assert lake_content(lake)["inspection_images"] == before["inspection_images"]
