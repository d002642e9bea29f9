"""The connector contract, the same for every installed source kind, against real servers: one
hour of the virtual plant extracted, landed, decoded, conformed and published; its bad input
quarantined with reasons; its state stored as JSON the next run reads; and a rerun of the hour
leaving the lake exactly as it was (curated and quarantine, row by row)."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.core.config import load_config, with_source
from plantlake.core.kinds import source_kinds
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from tests import golden
from tests.conftest import ROOT
from tests.conftest import quarantined as quarantined_rows

pytestmark = pytest.mark.integration
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
END = START + timedelta(hours=1)
LATER = END + timedelta(hours=1)  # the plant ran two hours; most cases read the first
#: one source of each kind in the embedded site config
CASES = {"csv": "historian_export", "opcua": "opcua_plant", "mqtt": "mqtt_plant", "images": "camera_images",
         "erp": "erp"}
OPCUA_NODE = "nsu=urn:acme:shenzhen:plantsim;s=line1.press1.line_speed"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The virtual plant's hour 09:00–10:00 in every silo, with one bad input where the plant has
    none of its own: a garbage MQTT payload on a mapped topic (the historian export's bad rows,
    the camera's broken files and the ERP's wrong bookings are the plant's own)."""
    import paho.mqtt.client as mqtt

    from plantlake.app.demo import write_historian_export
    from plantlake.core.connections import get_connection
    from plantlake.core.kinds import source_kind
    from simulators.run import VirtualPlant
    from simulators.story import Plant

    folder = tmp_path_factory.mktemp("contract")
    shutil.copy(ROOT / "plant.yaml", folder / "plant.yaml")
    cfg = load_config(folder / "plant.yaml")
    write_historian_export(cfg.path(cfg.source("historian_export").path), START, hours=2)
    saved = dict(os.environ)
    story = Plant(seed=42, start=datetime(2026, 3, 1, tzinfo=UTC))
    with VirtualPlant(story, folder / "plant", image_dir=cfg.path("drop/images"), erp_mistake_rate=0.05) as plant:
        os.environ.update(plant.connections())
        src = cfg.source("mqtt_plant")

        def open_session() -> None:
            source_kind("mqtt").load()(src, cfg, get_connection(src.connection_id)).open_session()

        plant.produce(START, LATER, mqtt_before_publish=open_session)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", plant.broker.port)
        client.loop_start()
        client.publish("acme/shenzhen/assembly/line1/press1/telemetry", b"\xff not json {", qos=1).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
        yield cfg
    os.environ.clear()
    os.environ.update(saved)


def test_every_installed_kind_has_a_contract_case():
    assert set(CASES) == set(source_kinds())


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_connector_contract(kind, site, tmp_path):
    name = CASES[kind]
    cfg = site
    if kind == "opcua":  # a physical range the line speed exceeds: its readings are bad input
        cfg = with_source(site, name, tags=[{"ref": OPCUA_NODE, "asset": "assembly/line1/press1", "tag": "line_speed",
                                             "canonical_unit": "m/min", "max": 1.0}])
    lake = Lake(tmp_path / "lake")
    first = run_source(name, START, END, config=cfg, lake=lake, run_id="contract-1")
    assert first.kind == kind and first.raw_rows > 0 and first.published > 0, first.describe()

    # bad input is quarantined, each row with a reason, and counted in the summary
    assert first.quarantined > 0, first.describe()
    quarantined = [r for name, t in first.tables.items() if t.quarantine_version is not None
                   for r in quarantined_rows(lake, name, first)]
    assert len(quarantined) == first.quarantined
    assert all(r["reason"] and r["stage"] in ("decode", "conform", "audit") and json.loads(r["record"])
               for r in quarantined)
    assert sum(sum(t.reasons.values()) for t in first.tables.values()) == first.quarantined

    # the state is plain JSON, committed after the publish, and what the next run reads
    state = lake.read_state(name)
    assert json.loads(json.dumps(state)) == state
    before = golden.snapshot(lake.root)

    again = run_source(name, START, END, config=cfg, lake=lake, run_id="contract-2")
    assert golden.snapshot(lake.root) == before, again.describe()
    assert set(lake.read_state(name)) == set(state)


@pytest.mark.parametrize("kind", sorted(set(CASES) - {"mqtt"}))
def test_hours_run_out_of_order_and_rerun_publish_what_hours_run_in_order_publish(kind, site, tmp_path):
    """Two hours run in order, and the same two in another lake later hour first, then the earlier
    one (a backfill), then the later one again: the curated tables hold the same rows. (MQTT drains
    its session whatever the interval: its per-interval decode state has its own test,
    tests/integration/test_sparkplug_interop.py.)"""
    name = CASES[kind]
    first, second = (START, END), (END, LATER)
    in_order, out_of_order = Lake(tmp_path / "a"), Lake(tmp_path / "b")
    for iv in (first, second):
        run_source(name, *iv, config=site, lake=in_order)
    for iv in (second, first, second):
        run_source(name, *iv, config=site, lake=out_of_order)

    def curated(lake: Lake) -> dict:
        return {t: v for t, v in golden.snapshot(lake.root).items() if t.startswith("curated/")}

    want = curated(in_order)
    assert want and all(v["rows"] > 0 for v in want.values()), want
    assert curated(out_of_order) == want
