"""OPC UA server unreachable: the task fails cleanly for Airflow to retry, and the retry publishes
exactly what an undisturbed run publishes, node by node and timestamp by timestamp."""

from __future__ import annotations

import shutil

import pytest

from connectors.opcua import SourceUnavailable
from plantlake.config import load_config
from plantlake.runner import run_source
from simulators.net import free_port
from tests.conftest import ROOT
from tests.integration.test_opcua import END, START, assert_matches_truth, curated, setup  # noqa: F401 - fixture

pytestmark = pytest.mark.faults


def _content(lake_root):
    t = curated(lake_root).drop_columns(["ingested_at", "run_id"])
    return t.sort_by([("asset_id", "ascending"), ("tag", "ascending"), ("ts", "ascending")])


def test_an_unreachable_server_fails_cleanly_and_the_retry_equals_an_undisturbed_run(setup, monkeypatch,  # noqa: F811
                                                                                     reliability):
    start, tmp = setup
    sim = start()
    # the undisturbed run, in a lake of its own
    (tmp / "undisturbed").mkdir()
    shutil.copy(ROOT / "plant.yaml", tmp / "undisturbed" / "plant.yaml")
    reference = run_source("opcua_plant", START, END, config=load_config(tmp / "undisturbed" / "plant.yaml"))
    expected = _content(tmp / "undisturbed" / "lake")

    cfg = load_config(tmp / "plant.yaml")
    port = free_port()  # the server is down (nothing listens here)
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", f"opcua://127.0.0.1:{port}/plantsim")
    with pytest.raises(SourceUnavailable, match="unreachable"):
        run_source("opcua_plant", START, END, config=cfg)
    assert not list((tmp / "lake" / "curated").rglob("*.parquet"))  # nothing half-published
    # Airflow retries once the server is back
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", f"opcua://127.0.0.1:{sim.port}/plantsim")
    retried = run_source("opcua_plant", START, END, config=cfg)
    got = _content(tmp / "lake")
    assert got.equals(expected)
    assert_matches_truth(curated(tmp / "lake"), START, END)
    assert retried.published == reference.published == 86 * 360
    keys = {(r["asset_id"], r["tag"], r["ts"]) for r in got.select(["asset_id", "tag", "ts"]).to_pylist()}
    reliability("OPC UA server unreachable, then the retry", data_in=reference.published, data_out=len(keys),
                lost=reference.published - len(keys), duplicates=got.num_rows - len(keys),
                unit="node/timestamp pairs", note="SourceUnavailable names the endpoint; the retry equals an undisturbed run")
