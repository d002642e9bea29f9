"""`make demo` on the embedded defaults: every DAG runs through Airflow (`dag.test()`), every source
publishes, the lake has no duplicate keys, and the products, catalog and report are built."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plantlake.app.demo import HOURS, run_demo
from plantlake.core.lake import Lake
from plantlake.core.views import connect
from schemas import get_table
from simulators import truth
from simulators.story import Plant
from tests import golden
from tests.conftest import ROOT, files_holding

pytestmark = pytest.mark.integration
CANARY = "CANARY-demo-5e1b"


def test_demo_runs_every_source_into_one_consistent_lake(plant, plant_dir, monkeypatch):
    # a canary secret in the environment, as a deployment holds connection passwords
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_SPARE", f"postgresql://erp:{CANARY}@127.0.0.1:1/erp")
    monkeypatch.setenv("PLANTLAKE_CANARY", CANARY)
    summaries = run_demo(plant, config_path=plant_dir / "plant.yaml", now=datetime(2026, 3, 2, 12, 30, tzinfo=UTC))
    import json

    by_source = {}
    for s in summaries:
        by_source.setdefault(s.source, []).append(s)
    assert {k: len(v) for k, v in by_source.items()} == {"historian_export": HOURS, "opcua_plant": HOURS,
                                                          "mqtt_plant": HOURS, "camera_images": HOURS, "erp": HOURS}
    assert all(s.tables["sensor_readings"].published == 86 * 360 for s in by_source["opcua_plant"])
    # the broker queued the three hours for the durable session; the first run drains them all
    end = datetime(2026, 3, 2, 12, tzinfo=UTC)
    start = end.replace(hour=9)
    story = Plant(seed=42, start=datetime(2026, 3, 1, tzinfo=UTC))
    sent = truth.mqtt_messages(story, start, end)
    mqtt = by_source["mqtt_plant"]
    assert mqtt[0].stats["messages"] == len(set(sent["msg_id"].to_pylist()))
    assert [s.stats["messages"] for s in mqtt[1:]] == [0, 0]
    assert all(s.quarantined == 0 for s in mqtt)
    lake = Lake(plant_dir / "lake")
    con = connect(lake)  # each table's current Delta snapshot
    total, dupes, sources = con.execute(
        "select count(*), count(*) - count(distinct (asset_id, tag, ts)), count(distinct source) "
        "from sensor_readings").fetchone()
    assert total == sum(s.tables["sensor_readings"].published for s in summaries if "sensor_readings" in s.tables)
    assert dupes == 0 and sources == 3
    readings = sent.filter(sent["tag"].is_valid()).num_rows
    got_ids, mqtt_rows = con.execute(
        "select count(distinct message_id) filter (where status_code = 0), count(*) filter (where status_code = 0) "
        "from sensor_readings where source = 'mqtt'").fetchone()
    assert mqtt_rows == readings
    assert got_ids == len(set(sent.filter(sent["tag"].is_valid())["msg_id"].to_pylist()))

    # every intact camera image of the three hours is one row, every broken one is quarantined
    shots = truth.images(story, start, end).to_pylist()
    images = con.execute("select image_id from inspection_images").fetchall()
    assert sorted(i for (i,) in images) == sorted(s["sha256"] for s in shots if not s["corrupt"])
    assert sum(s.quarantined for s in by_source["camera_images"]) == sum(1 for s in shots if s["corrupt"])

    # the ERP: every order and inspection that changed in the three hours (or the look-back before)
    erp = by_source["erp"]
    # the demo ERP books 2 % of verdicts and finishes wrongly: exactly those are quarantined, by the audit

    from simulators.erp import ErpSimulator

    mistakes = ErpSimulator(story, "sqlite://", mistake_rate=0.02)
    quarantined = [r for table in ("production_orders", "quality_inspections")
                   for r in lake.read_quarantine(table).to_pylist()]
    assert len(quarantined) == sum(s.quarantined for s in erp) > 0
    for r in quarantined:
        record = json.loads(r["record"])
        assert r["stage"] == "audit" and mistakes.mistaken(record.get("part_serial") or record["order_id"]), r
    inspections = con.execute("select part_serial from quality_inspections").fetchall()
    assert not any(mistakes.mistaken(serial) for (serial,) in inspections)
    inspected = {serial for (serial,) in inspections}
    assert erp[0].tables["materials"].published == 4
    orders = con.execute("select count(*), count(distinct order_id) from production_orders").fetchone()
    assert orders[0] == orders[1] > 0

    # each hour was checked across sources, and the Data Docs show every audit
    checks = lake.read(get_table("cross_source_checks"))
    assert len(set(checks["interval_start"].to_pylist())) == HOURS
    assert {"line_bad_share", "order_sensor_coverage"} <= set(checks["check"].to_pylist())
    # and the quality runs (as of the demo's 12:30) found each source within its 2 h freshness, 30 min behind
    fresh = lake.read(get_table("source_freshness")).to_pylist()
    assert sorted((r["source"], r["state"], r["last_interval_end"], r["lag_s"]) for r in fresh) == sorted(
        (s, "fresh", end, 1800.0) for s in ("historian_export", "opcua_plant", "mqtt_plant", "camera_images", "erp")
        for _ in range(HOURS))

    kept = [json.loads(p.read_text()) for p in (plant_dir / "lake" / "_quality" / "results").rglob("*.json")]
    # 8 audited tables an hour (OPC UA: readings and events) and the checks, then the products' audits (assets, the two products)
    assert len(kept) == HOURS * (1 + 2 + 1 + 1 + 3) + HOURS + 3
    validated = [k for k in kept if k["validation"]]  # an empty batch (MQTT after the first drain) has none
    assert len(validated) == len(kept) - 2 and all(k["passed"] for k in kept if k["source"] != "cross_source")
    pages = sorted((plant_dir / "lake" / "_quality" / "docs" / "validations").rglob("*.html"))
    assert len(pages) == len(validated)

    # products: the image training set labels each defective part "fail" (ground truth), except the
    # parts whose ERP verdict the simulated ERP booked wrongly — the audit quarantined those verdicts
    training = lake.read(get_table("image_training_set")).to_pylist()
    assert len(training) == len(images)
    defective = {r["part_serial"]: r["defect"] for r in truth.parts(story, start - timedelta(hours=2), end).to_pylist()}
    labelled = [r for r in training if r["label"] is not None]
    assert len(labelled) > 0.8 * len(training)
    for r in labelled:
        assert (r["label"] == "fail") == defective[r["part_serial"]], r["part_serial"]
    assert any(r["label"] == "fail" for r in labelled) and all(r["sensor_features"] for r in training)
    unlabelled = {r["part_serial"] for r in training if r["label"] is None}
    assert all(mistakes.mistaken(serial) or serial not in inspected for serial in unlabelled)
    contexts = lake.read(get_table("order_context")).to_pylist()
    # every order the lake holds that started in the window has its context (an order whose last ERP
    # change is stamped at the window's end arrives with the next interval)
    truth_starts = {o["order_id"]: o["actual_start"] for o in truth.orders(story, start - timedelta(days=1), end).to_pylist()}
    started = {o["order_id"] for o in lake.read(get_table("production_orders")).to_pylist()
               if o["actual_start"] is not None and start <= o["actual_start"] < end}
    assert started and all(truth_starts[o] >= start for o in started)
    assert started == {c["order_id"] for c in contexts if start <= c["actual_start"] < end}
    assert all(c["sensor"] for c in contexts if c["order_id"] in started)
    # the OPC UA server's weld alarms: each episode of the story is its three condition events, and
    # every defective part's image row holds the overshoot alarm of its weld
    alarms = story.alarms(start, end)
    expected = sorted((t, f"acme/shenzhen/assembly/{a.line}/welder{a.line[-1]}", active, acked) for a in alarms
                      for t, active, acked in ((a.active_from, True, False), (a.acked_at, True, True),
                                               (a.active_to, False, True)) if start <= t < end)
    events = con.execute("select time, asset_id, active, acked from events order by 1, 2").fetchall()
    assert events == expected and len(alarms) > 10
    for r in training:
        if defective[r["part_serial"]]:
            assert any(a["condition_name"] == "WeldTempHigh" for a in r["alarms"]), r["part_serial"]
    assert any(c["alarms"] for c in contexts)

    # the baseline model: trained on the set's manifests, it beats the base rate clearly, also when
    # its held-out scores are checked against the ground truth instead of the ERP's labels
    from sklearn.metrics import average_precision_score, roc_auc_score

    from plantlake.pipeline.products import manifest
    from plantlake.pipeline.train import latest_card, predictions

    card = latest_card(lake)
    built = manifest.manifests(lake, "image_training_set")
    assert card.manifests == {m.day: m.content_hash for m in built} and card.table_version == built[-1].version
    assert card.test_rows + card.train_rows + card.unlabelled == card.rows == len(training)
    assert card.roc_auc >= 0.9 and card.average_precision >= 3 * card.base_rate
    held = predictions(lake, card).to_pylist()
    assert len(held) == card.test_rows and min(r["captured_at"] for r in held).isoformat() == card.test_from
    truth_y = [defective[r["part_serial"]] for r in held]
    assert roc_auc_score(truth_y, [r["score"] for r in held]) >= 0.9
    assert average_precision_score(truth_y, [r["score"] for r in held]) >= 3 * (sum(truth_y) / len(truth_y))
    # the sensor and alarm context alone knows the weld overshoot
    assert card.context_roc_auc >= 0.8 and card.context_importances[0]["feature"].startswith("welder.weld_temp.")

    # lineage: Airflow's OpenLineage provider wrote each task's events under the lake; every
    # ingest run names the source system and references it read and the tables it committed
    events = [json.loads(line) for line in lake.lineage_file.read_text().splitlines()]
    done = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(".ingest")]
    assert len(done) == 5 * HOURS
    for e in done:
        source = e["job"]["name"].removeprefix("plantlake_ingest_").removesuffix(".ingest")
        refs = e["outputs"][0]["facets"]["plantlake_sourceRefs"]
        assert refs["source"] == source and e["inputs"] and all(
            i["facets"]["plantlake_sourceRefs"]["source"] == source for i in e["inputs"])
        assert {o["name"].rsplit("/", 1)[-1] for o in e["outputs"]} <= {
            "sensor_readings", "events", "inspection_images", "production_orders", "materials", "quality_inspections"}
    opcua = next(e for e in done if "opcua_plant" in e["job"]["name"])
    assert opcua["outputs"][0]["facets"]["plantlake_sourceRefs"]["origin"].startswith("opc.tcp://127.0.0.1:")
    assert "nsu=urn:acme:shenzhen:plantsim;Plant/{line}/{machine}/*" in {
        i["name"].split("/", 2)[-1] for i in opcua["inputs"]}
    (products,) = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(".build_products")]
    read = {i["name"].rsplit("/", 1)[-1]: int(i["facets"]["version"]["datasetVersion"]) for i in products["inputs"]}
    orders = manifest.manifests(lake, "order_context")
    assert read == {**orders[-1].inputs, **built[-1].inputs}  # the versions the builds' manifests pinned
    assert products["run"]["facets"]["plantlake_run"]["manifests"] == [orders[-1].key, built[-1].key]

    # `plantlake trace`: a reading back to its node, run, raw file and task; a training row back to
    # its build and the capture, inspections and sensor series it was made of
    from plantlake.pipeline.trace import trace

    reading = con.execute("select asset_id, tag, ts from sensor_readings where source = 'opcua' limit 1").fetchone()
    found = trace(lake, "sensor_readings", [reading[0], reading[1], reading[2].isoformat()])
    assert found["references"]["source_ref"].startswith("nsu=urn:acme:shenzhen:plantsim;s=")
    assert found["written_by"]["source"] == "opcua_plant" and found["raw_files"]
    assert all(lake.storage.size(k) for k in found["raw_files"])
    assert [e["job"] for e in found["lineage"]] == ["plantlake/plantlake_ingest_opcua_plant.ingest"]
    failed = next(r for r in training if r["label"] == "fail")
    found = trace(lake, "image_training_set", [failed["capture_id"]])
    assert found["build"]["manifest"] == built[-1].key and found["build"]["inputs"] == built[-1].inputs
    made = found["made_of"]
    assert made["capture"]["written_by"]["source"] == "camera_images" and made["capture"]["raw_files"]
    assert [i["key"]["inspection_id"] for i in made["inspections"]] and all(
        i["written_by"]["source"] == "erp" for i in made["inspections"])
    assert {"weld_temp"} <= {s["tag"] for s in made["sensor_series"]}

    # the catalog answers like the Parquet, and the report was written
    from plantlake.pipeline.catalog import query

    assert query(lake, "select count(*) as n from image_training_set").to_pylist() == [{"n": len(training)}]
    report = (plant_dir / "lake" / "_report" / "index.html").read_text()
    assert "Baseline model card" in report and f"set <code>{card.set_hash[:16]}</code>" in report
    assert report.count("alarm episodes</figcaption>") == 2  # a timeline under each line's trends

    # the README's three analyst queries run as written against the demo's lake
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("## For analysts", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(plant_dir)
    exec(compile(snippet, "README.md", "exec"), {})  # noqa: S102 - our own documentation
    # no file the demo wrote (lake, drop folders, catalog, report) holds the environment's secret
    assert files_holding(plant_dir, CANARY) == []
    # and every table holds what it held before the last refactor (tests/golden.py)
    golden.check(plant_dir / "lake", ROOT / "tests" / "data" / "golden" / "demo.json")
