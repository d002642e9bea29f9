"""OPC UA server unreachable: the task fails cleanly for Airflow to retry, and the retry publishes
exactly what an undisturbed run publishes, node by node and timestamp by timestamp."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from connectors.opcua.connector import SourceUnavailable
from plantlake.core.config import load_config
from plantlake.pipeline.runner import run_source
from simulators.net import free_port
from tests.conftest import ROOT, both_lakes, lake_content, on
from tests.integration.test_opcua import END, START, assert_matches_truth, curated, setup  # noqa: F401 - fixture

pytestmark = pytest.mark.faults


def _content(lake):
    t = curated(lake).drop_columns(["ingested_at", "run_id"])
    return t.sort_by([("asset_id", "ascending"), ("tag", "ascending"), ("ts", "ascending")])


@both_lakes
def test_an_unreachable_server_fails_cleanly_and_the_retry_equals_an_undisturbed_run(setup, monkeypatch,  # noqa: F811
                                                                                     reliability, lake_kind):
    start, tmp = setup
    sim = start()
    # the undisturbed run, in a lake of its own
    (tmp / "undisturbed").mkdir()
    shutil.copy(ROOT / "plant.yaml", tmp / "undisturbed" / "plant.yaml")
    reference = run_source("opcua_plant", START, END, config=load_config(tmp / "undisturbed" / "plant.yaml"))
    expected = _content(tmp / "undisturbed" / "lake")

    cfg = load_config(tmp / "plant.yaml")
    lake = cfg.open_lake()
    port = free_port()  # the server is down (nothing listens here)
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", f"opcua://127.0.0.1:{port}/plantsim")
    with pytest.raises(SourceUnavailable, match="unreachable"):
        run_source("opcua_plant", START, END, config=cfg)
    assert lake_content(lake) == {}  # nothing half-published
    # Airflow retries once the server is back
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", f"opcua://127.0.0.1:{sim.port}/plantsim")
    retried = run_source("opcua_plant", START, END, config=cfg)
    got = _content(lake)
    assert got.equals(expected)
    assert_matches_truth(curated(lake), START, END)
    readings = retried.tables["sensor_readings"].published
    assert readings == reference.tables["sensor_readings"].published == 86 * 360
    assert retried.tables["events"].published == reference.tables["events"].published > 0
    keys = {(r["asset_id"], r["tag"], r["ts"]) for r in got.select(["asset_id", "tag", "ts"]).to_pylist()}
    reliability(f"OPC UA server unreachable, then the retry{on(lake)}", data_in=readings, data_out=len(keys),
                lost=readings - len(keys), duplicates=got.num_rows - len(keys),
                unit="node/timestamp pairs", note="SourceUnavailable names the endpoint; the retry equals an undisturbed run")


@both_lakes
def test_a_server_restarted_during_the_history_read_costs_a_retry_and_nothing_else(setup, monkeypatch,  # noqa: F811
                                                                                    reliability, lake_kind):
    """The server goes down after answering part of a HistoryRead and comes back with its namespaces
    reordered (other vendors' namespaces registered first): the run fails without publishing, and
    the retry publishes exactly what the server historized."""
    import asyncio
    import threading

    start, tmp = setup
    sim = start()
    calls = {"n": 0}
    original = sim.store.read_node_history

    async def read_then_go_down(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 40:  # about half of the 86 nodes answered
            threading.Thread(target=sim.stop_thread, daemon=True).start()
            await asyncio.sleep(30)  # this answer never leaves: the server is going down
        return await original(*args, **kwargs)

    monkeypatch.setattr(sim.store, "read_node_history", read_then_go_down)
    cfg = load_config(tmp / "plant.yaml")
    lake = cfg.open_lake()
    with pytest.raises(SourceUnavailable) as err:  # retriable: Airflow retries the task
        run_source("opcua_plant", START, END, config=cfg)
    assert calls["n"] >= 40, err.value
    assert lake_content(lake) == {}  # nothing of the half-read hour published
    back = start(port=sim.port, namespaces_before=("urn:vendor:diagnostics", "urn:vendor:alarms"))
    assert back.ns == 4
    retried = run_source("opcua_plant", START, END, config=cfg)
    assert_matches_truth(curated(lake), START, END)
    got = curated(lake)
    keys = {(r["asset_id"], r["tag"], r["ts"]) for r in got.select(["asset_id", "tag", "ts"]).to_pylist()}
    assert retried.tables["sensor_readings"].published == len(keys) == 86 * 360
    reliability(f"OPC UA server restarted during a HistoryRead (namespaces reordered){on(lake)}", data_in=86 * 360,
                data_out=len(keys), lost=86 * 360 - len(keys), duplicates=got.num_rows - len(keys),
                unit="node/timestamp pairs", note="the read fails with SourceUnavailable (retriable), nothing "
                "published; the retry against the restarted server equals the history")


@both_lakes
def test_restart_with_reordered_namespaces_keeps_every_value_on_its_tag(setup, reliability, lake_kind):  # noqa: F811
    start, tmp = setup
    sim = start()
    cfg = load_config(tmp / "plant.yaml")
    lake = cfg.open_lake()
    run_source("opcua_plant", START, START + timedelta(minutes=30), config=cfg)
    port = sim.port
    sim.stop_thread()
    # the same server comes back on the same port with two vendor namespaces registered first
    moved = start(port=port, namespaces_before=("urn:vendor:diagnostics", "urn:vendor:alarms"))
    assert moved.ns == 4 and sim.ns == 2
    run_source("opcua_plant", START + timedelta(minutes=30), END, config=cfg)
    assert_matches_truth(curated(lake), START, END)
    got = curated(lake)
    keys = {(r["asset_id"], r["tag"], r["ts"]) for r in got.select(["asset_id", "tag", "ts"]).to_pylist()}
    reliability(f"OPC UA server restarted between runs, namespace array reordered{on(lake)}", data_in=86 * 360,
                data_out=len(keys), lost=86 * 360 - len(keys), duplicates=got.num_rows - len(keys),
                unit="node/timestamp pairs", note="nodes are addressed by namespace URI, not index")
