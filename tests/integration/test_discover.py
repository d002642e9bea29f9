"""`plantlake discover` against live sources shaped unlike our own (the foreign plant, a Part 8
server of 100,000 nodes) and our virtual plant: the drafted config passes `config check`, runs
end to end with no hand edits but naming (which asset a code names), and the lake equals the
plant's ground truth. And `config check --probe` on good and broken configs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from plantlake.core.config import load_config
from plantlake.core.lake import Lake
from schemas import get_table
from simulators import foreign_plant
from tests.conftest import ROOT
from tests.integration.test_foreign_plant import assert_ground_truth
from tests.servers import Part8Shape, part8_opcua

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 7, tzinfo=UTC)
END = START + timedelta(hours=1)


def cli(cwd: Path, env: dict, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "plantlake", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env=env)
    if ok and done.returncode != 0:
        print(done.stdout[-8000:], done.stderr[-4000:])
        raise AssertionError(f"plantlake {' '.join(args)} exited {done.returncode}")
    return done


def hierarchy_only(src: Path, dest: Path) -> Path:
    """The site's hierarchy and lake from a config, no sources: what a plant starts discovery from."""
    data = yaml.safe_load(src.read_text())
    dest.write_text(yaml.safe_dump({"enterprise": data["enterprise"], "lake": {"root": "./lake"}}, sort_keys=False))
    return dest


def probe_block(out: str, name: str) -> list[str]:
    """The finding lines `config check --probe` printed for one source."""
    lines = out.splitlines()
    start = next((i for i, x in enumerate(lines) if x.startswith(f"{name} (")), None)
    if start is None:
        return []
    block = []
    for x in lines[start + 1:]:
        if not x.startswith("  "):
            break
        block.append(x)
    return block


def live_publisher(port: int, messages: list[tuple[str, bytes]], per_tick: int = 2):
    """A publish(k) that sends the k-th `per_tick` of `messages` (each message once, in order)."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="live-devices")
    client.connect("127.0.0.1", port)
    client.loop_start()

    def publish(k: int) -> None:
        for topic, payload in messages[per_tick * k:per_tick * (k + 1)]:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
        if per_tick * k >= len(messages):
            client.loop_stop()

    return publish


def sent_at(m) -> int:
    """A virtual-plant message's time in seconds, from its id (`…:<epoch s>`, births `…:<epoch ms>:nbirth`)."""
    stamp = next(int(p) for p in reversed(m.msg_id.split(":")) if p.isdigit() and len(p) >= 10)
    return stamp // 1000 if stamp > 10**11 else stamp


class Devices:
    """Devices that keep publishing while discovery listens (a plant does not pause for it)."""

    def __init__(self, publish) -> None:
        self.publish, self.stop = publish, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        k = 0
        while not self.stop.is_set():
            self.publish(k)
            k += 1
            time.sleep(0.3)

    def __enter__(self) -> Devices:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)


def test_the_foreign_plant_discovered_runs_into_its_ground_truth(tmp_path, mosquitto):
    """Nordwerk's plant: every source discovered from the hierarchy alone, two code decisions made by
    a person (the ERP's line code, the camera's station code), then run: the lake is the truth."""
    site = hierarchy_only(ROOT / "tests" / "data" / "foreign_plant.yaml", tmp_path / "plant.yaml")
    truth = foreign_plant.write(tmp_path, START, END)
    with foreign_plant.ForeignOpcUa(START, END) as opcua:
        opc = f"opc.tcp://127.0.0.1:{opcua.port}/nordwerk"
        env = {**os.environ, "AIRFLOW_CONN_ANLAGE": f"opcua://127.0.0.1:{opcua.port}/nordwerk",
               "AIRFLOW_CONN_GERAETE": f"mqtt://127.0.0.1:{mosquitto.port}",
               "AIRFLOW_CONN_ERP": f"sqlite:///{tmp_path / 'erp.sqlite'}"}
        began = time.monotonic()
        out = cli(tmp_path, env, "--config", str(site), "discover", "opcua", opc, "--name", "anlage").stdout
        opcua_s = time.monotonic() - began
        assert "nodes_browsed 13, objects_with_variables 3, variables 8" in out, out
        earlier = foreign_plant.mqtt_messages(START - timedelta(hours=2), START)
        earlier.sort(key=lambda m: json.loads(m[1])["id"].rsplit("-", 1)[1])  # both devices, minute by minute
        with Devices(live_publisher(mosquitto.port, earlier)):
            out = cli(tmp_path, env, "--config", str(site), "discover", "mqtt", "GERAETE", "--name", "geraete",
                      "--for", "4s").stdout
        assert "topics 2" in out, out
        cli(tmp_path, env, "--config", str(site), "discover", "erp", "ERP", "--name", "erp")
        cli(tmp_path, env, "--config", str(site), "discover", "folder", "historian", "--name", "historian")
        cli(tmp_path, env, "--config", str(site), "discover", "folder", "bilder", "--name", "kamera")
        assert cli(tmp_path, env, "--config", str(site), "config", "check").returncode == 0
        text = site.read_text()
        draft = yaml.safe_load(text)
        by_name = {s["name"]: s for s in draft["sources"]}
        assert set(by_name) == {"anlage", "geraete", "erp", "historian", "kamera"}
        # what discovery found, by meaning
        # one line: its segment stays literal; the machines vary and map to the hierarchy's cells
        assert by_name["anlage"]["nodes"] == [{"namespace": "urn:nordwerk:abfuellung", "path": "Abfuellung/Linie1/{cell}",
                                               "asset": "abfuellung/linie1/{cell}"}]
        rule = by_name["geraete"]["json"][0]
        assert (rule["topic"], rule["asset"], rule["timestamp"], rule["epoch_unit"], rule["id"], rule["units"],
                rule["quality"], rule["exclude"]) == ("nordwerk/linie1/{cell}/daten", "abfuellung/linie1/{cell}", ["ts"],
                                                      "ms", "id", "unit", "q", ["device_id"])
        orders = next(t for t in by_name["erp"]["tables"] if t["target"] == "production_orders")
        assert orders["columns"] == {"order_id": "AufNr", "material_id": "MatNr", "line_id": "Linie", "status": "Status",
                                     "quantity_planned": "Sollmenge", "quantity_produced": "Istmenge",
                                     "actual_start": "Start", "updated_at": "GeaendertAm"}
        assert orders["codes"] == {"status": {"REL": "released", "GESTARTET": "running"}}
        assert "ISO 8601 text with offset" in text and "Linie (line_id) values to map under codes.line_id: ABF1" in text
        hist = by_name["historian"]
        # Latin-1 bytes as Windows-1252 reads them alike (° 0xB0, ³ 0xB3): the units below prove the reading
        assert (hist["encoding"], hist["delimiter"], hist["decimal"], hist["timestamp_format"], hist["pattern"]) == (
            "cp1252", ";", ",", "%d.%m.%Y %H:%M:%S", "Historian_*.csv")
        assert {t["ref"]: t["asset"] for t in hist["tags"]} == {f"TANK1.{x}": "abfuellung/linie1/tank1"
                                                                 for x in ("FLOW", "LEVEL", "TEMP")}
        cam = by_name["kamera"]["folders"][0]
        assert cam["sidecar"] == {"suffix": ".json", "asset": "Station", "part_serial": "Seriennummer",
                                  "order_id": "Auftrag", "captured_at": "Aufnahmezeit"}
        # a person decides what the plant's own codes name (the draft lists them); nothing else is edited
        orders["codes"]["line_id"] = {"ABF1": "abfuellung/linie1"}
        cam["codes"] = {"FL-CAM": "abfuellung/linie1/kamera1"}
        by_name["kamera"]["settle_s"] = 0
        site.write_text(yaml.safe_dump(draft, sort_keys=False, allow_unicode=True))
        probe = cli(tmp_path, env, "--config", str(site), "config", "check", "--probe", "--seconds", "1", ok=False)
        window = ["--start", START.isoformat(), "--end", END.isoformat(), "--json"]
        first = cli(tmp_path, env, "--config", str(site), "run", "geraete", "--start", (START - timedelta(hours=1)).isoformat(),
                    "--end", START.isoformat(), "--json")  # opens plantlake's durable session
        assert json.loads(first.stdout)["raw_rows"] == 0
        assert foreign_plant.publish(mosquitto.port, START, END) == 120
        runs = {n: json.loads(cli(tmp_path, env, "--config", str(site), "run", n, *window).stdout)
                for n in ("anlage", "geraete", "kamera", "erp", "historian")}
    print(f"discover opcua: {opcua_s:.1f} s (CLI, start to file)")
    # the probe saw every rule of the sources that sit still (the devices had stopped: quiet, said so)
    for name in ("anlage", "erp", "historian", "kamera"):
        block = probe_block(probe.stdout, name)
        assert block and not any(line.lstrip().startswith("NONE") for line in block), probe.stdout
    for name, s in runs.items():
        assert s["quarantined"] == 0, (name, {t: v["reasons"] for t, v in s["tables"].items()})
        assert s["unmatched"] == [], (name, s["unmatched"])
    assert_ground_truth(Lake(load_config(site).lake_root()), truth)


def test_a_part8_server_of_100000_nodes_is_discovered_whole(tmp_path):
    """Objects/Factory/Hall x/Line nn/Machinennn: 101,381 nodes. The draft names every reading once,
    by two patterns (history, poll), with units from the UNECE codes and EURange as min/max, and
    leaves out the properties and arrays; no hierarchy given: it is drafted, marked for naming."""
    shape = Part8Shape(halls=4, lines=11, machines=49, analog=13)
    assert shape.nodes > 100_000
    with part8_opcua(shape) as endpoint:
        began = time.monotonic()
        done = cli(tmp_path, dict(os.environ), "discover", "opcua", endpoint, "--name", "widgets")
        took = time.monotonic() - began
    print(f"{shape.nodes} nodes: {done.stdout.splitlines()[0]}; {took:.1f} s from start to a validated file")
    cfg = load_config(tmp_path / "plant.yaml")
    history, poll = cfg.source("widgets"), cfg.source("widgets_poll")
    assert (history.mode, poll.mode, poll.connection_id) == ("history", "poll", "widgets")
    assert [(n.namespace, n.path, n.asset) for n in history.nodes] == [
        ("urn:example:widgets", "Factory/{area}/{line}/{cell}", "{area}/{line}/{cell}")]
    assert sorted(history.nodes[0].exclude) == ["Manufacturer", "SerialNumber", "Setpoint", "Spectrum"]
    assert (poll.nodes[0].variables, poll.nodes[0].exclude) == ("Setpoint", [])
    assert len(history.tags) == shape.objects * shape.analog
    by_ref = {t.ref: t for t in history.tags}
    t = by_ref["nsu=urn:example:widgets;s=H3.L10.M48.A7"]
    assert (t.asset, t.tag, t.min, t.max) == ("my-enterprise/my-site/hall_d/line_11/machine049", "analog7", -70.0, 170.0)
    assert len(cfg.assets()) == 2 + 4 + 44 + shape.objects
    text = re.sub(r"\n\s*# ", " ", (tmp_path / "plant.yaml").read_text())  # comments as one line each
    assert "2156 object(s), 34496 variables: 28028 Double, 2156 Boolean, 2156 Int32, 2156 String; units N·m, bar, " \
        "kW, m/s, r/min, °C" in text, text[:4000]
    assert "Spectrum: DataType Double[]: not a value plantlake decodes" in text
    assert "SerialNumber: a property of the object (nameplate data), not a reading" in text
    assert took < 300  # a bound against hanging, not a benchmark


def test_discover_stops_at_its_node_bound_and_says_so(tmp_path):
    shape = Part8Shape(halls=2, lines=2, machines=5, analog=2)
    with part8_opcua(shape) as endpoint:
        done = cli(tmp_path, dict(os.environ), "discover", "opcua", endpoint, "--max-nodes", "30")
    text = (tmp_path / "plant.yaml").read_text()
    assert "STOPPED: " in text and "(--max-nodes 30): the rest of the address space not browsed" in text, text[:3000]
    assert "stopped" in done.stdout


@pytest.fixture
def virtual_plant(tmp_path):
    """Our virtual plant, its story anchored the midnight before yesterday (as the demo anchors it)."""
    from simulators.run import VirtualPlant
    from simulators.story import Plant

    story = Plant(seed=42, start=(datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                                                 microsecond=0))
    with VirtualPlant(story, tmp_path / "vp", erp_mistake_rate=0.0) as vp:
        yield vp


def test_probe_says_what_each_rule_matches_and_fails_on_what_matches_nothing(tmp_path, virtual_plant, plant_dir):
    """plant.yaml against the running virtual plant: every rule matched, in seconds; then a wrong ref,
    a wrong namespace, a wrong column and a topic nobody publishes: exit 1, each named."""
    vp = virtual_plant
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    vp.produce(now - timedelta(hours=1), now)
    env = {**os.environ, **vp.connections()}
    cfg = yaml.safe_load((plant_dir / "plant.yaml").read_text())
    cfg["sources"] = [s for s in cfg["sources"] if s["name"] in ("opcua_plant", "erp", "mqtt_plant")]
    # the virtual plant's devices send no diagnostics: plant.yaml's raw_topics rule matches nothing here,
    # which the probe reports (asserted below with the broken config)
    mqtt_src = next(s for s in cfg["sources"] if s["name"] == "mqtt_plant")
    diagnostics = mqtt_src.pop("raw_topics")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(cfg, sort_keys=False))
    stop = threading.Event()

    def keep_publishing() -> None:
        from simulators.mqtt_publisher import MqttPublisher

        t = now
        while not stop.is_set():
            MqttPublisher(vp.plant, port=vp.broker.port).publish(t, t + timedelta(seconds=20))
            t += timedelta(seconds=20)
            time.sleep(0.2)

    pub = threading.Thread(target=keep_publishing, daemon=True)
    pub.start()
    try:
        began = time.monotonic()
        done = cli(plant_dir, env, "--config", str(good), "config", "check", "--probe", "--seconds", "2")
        took = time.monotonic() - began
        out = done.stdout
        assert "probe: all 3 source(s) match everything configured" in out, out
        assert "ok   nodes[0] Plant/{line}/{machine}/*: 86 variables on 8 assets" in out
        assert "ok   tags[0] nsu=urn:acme:shenzhen:plantsim;s=line1.press1.line_speed: number, unit m/min" in out
        assert "ok   tables[1] production_orders <- orders: 12 columns mapped; cursor changed_at stored as" in out
        assert "ok   json[0] acme/shenzhen/{area}/{line}/{machine}/telemetry: 4 topic(s)" in out
        assert "ok   sparkplug[0] acme/{line}-utilities/chiller{n}: 2 device(s)" in out
        print(f"probe of 3 sources: {took:.1f} s (CLI, with a 2 s MQTT listen)")

        bad = json.loads(json.dumps(cfg))
        src = {s["name"]: s for s in bad["sources"]}
        src["opcua_plant"]["tags"][0]["ref"] = "nsu=urn:acme:shenzhen:plantsim;s=line1.press1.no_such_tag"
        src["opcua_plant"]["nodes"].append({"namespace": "urn:acme:shenzhen:other", "path": "Plant/{line}",
                                            "asset": "assembly/{line}"})
        src["erp"]["tables"][1]["columns"]["quantity_planned"] = "qty_plan"
        src["mqtt_plant"]["json"][0]["topic"] = "acme/shenzhen/{area}/{line}/{machine}/telemetri"
        src["mqtt_plant"]["raw_topics"] = diagnostics
        broken = tmp_path / "broken.yaml"
        broken.write_text(yaml.safe_dump(bad, sort_keys=False))
        done = cli(plant_dir, env, "--config", str(broken), "config", "check", "--probe", "--seconds", "2", ok=False)
    finally:
        stop.set()
        pub.join(30)
    out = done.stdout
    assert done.returncode == 1, out
    assert "NONE nodes: source opcua_plant: the server has no namespace 'urn:acme:shenzhen:other'" in out, out
    assert "NONE tables[1] production_orders <- orders: no column 'qty_plan'" in out, out
    assert "NONE json[0] acme/shenzhen/{area}/{line}/{machine}/telemetri: no message in 2 s" in out, out
    assert "NONE raw_topics[0] acme/shenzhen/+/+/+/diagnostics: no message in 2 s" in out, out
    assert "probe: 0 of 3 source(s) match everything configured" in out, out
    # the wrong ref alone (namespace as configured)
    src["opcua_plant"]["nodes"].pop()
    broken.write_text(yaml.safe_dump(bad, sort_keys=False))
    done = cli(plant_dir, env, "--config", str(broken), "config", "check", "--probe", "--source", "opcua_plant", ok=False)
    assert done.returncode == 1
    assert "NONE tags[0] nsu=urn:acme:shenzhen:plantsim;s=line1.press1.no_such_tag: node not found on the server" in \
        done.stdout, done.stdout


def test_the_virtual_plant_discovered_lands_what_the_hand_written_config_lands(tmp_path, monkeypatch):
    """Our own plant: every silo discovered from plant.yaml's hierarchy alone, the code lists the draft
    names mapped by a person, one hour run through both configs: the discovered lake holds what the
    plant sent (OPC UA and MQTT against the simulators' ground truth, images by hash) and what the
    hand-written plant.yaml lands from the ERP and the historian exports."""
    from plantlake.app.demo import write_historian_export
    from plantlake.core.connections import get_connection
    from plantlake.core.kinds import source_kind
    from plantlake.pipeline.runner import run_source
    from simulators import truth
    from simulators.mqtt_publisher import MqttPublisher, messages
    from simulators.run import VirtualPlant
    from simulators.story import Plant

    hour = datetime(2026, 3, 2, 10, tzinfo=UTC)
    story = Plant(seed=42, start=datetime(2026, 3, 1, tzinfo=UTC))
    found_dir = tmp_path  # both configs beside the one drop folder; each with a lake of its own
    hand_cfg = yaml.safe_load((ROOT / "plant.yaml").read_text())
    hand_cfg["lake"]["root"] = "./lake-hand"
    (tmp_path / "hand.yaml").write_text(yaml.safe_dump(hand_cfg, sort_keys=False, allow_unicode=True))
    site = hierarchy_only(ROOT / "plant.yaml", found_dir / "plant.yaml")
    drop = tmp_path / "drop"
    with VirtualPlant(story, tmp_path / "vp", image_dir=drop / "images") as vp:
        write_historian_export(drop / "historian", hour, hours=1)
        env = {**os.environ, **vp.connections()}
        env |= {"AIRFLOW_CONN_OPCUA_PLANT": env["AIRFLOW_CONN_PLANT_OPCUA"],
                "AIRFLOW_CONN_MQTT_PLANT": env["AIRFLOW_CONN_PLANT_MQTT"], "AIRFLOW_CONN_ERP": env["AIRFLOW_CONN_PLANT_ERP"]}
        vp.opcua.call(vp.opcua.prefill(hour, hour + timedelta(hours=1)))
        cli(found_dir, env, "--config", str(site), "discover", "opcua", "PLANT_OPCUA", "--name", "opcua_plant")
        # the plant as it runs: every device's messages in time order; the Sparkplug births went out when
        # the edge nodes came up, before discovery listened (the draft says the metrics are unknown)
        earlier = sorted(messages(story, hour - timedelta(hours=2), hour - timedelta(hours=1)), key=sent_at)
        with Devices(live_publisher(vp.broker.port, [(m.topic, m.payload) for m in earlier], per_tick=6)):
            cli(found_dir, env, "--config", str(site), "discover", "mqtt", "PLANT_MQTT", "--name", "mqtt_plant",
                "--for", "5s")
        vp.erp.sync(hour + timedelta(hours=1))
        cli(found_dir, env, "--config", str(site), "discover", "erp", "PLANT_ERP", "--name", "erp")
        vp.produce(hour, hour + timedelta(hours=1))  # camera, ERP rows (OPC UA history and MQTT below)
        for folder in ("historian", "images"):
            cli(found_dir, env, "--config", str(site), "discover", "folder", f"drop/{folder}", "--name", folder)
        draft = yaml.safe_load(site.read_text())
        by_name = {s["name"]: s for s in draft["sources"]}
        assert set(by_name) == {"opcua_plant", "mqtt_plant", "erp", "historian", "images"}
        # the person's part: what the plant's own code lists mean (the draft lists every value it found)
        tables = {t["target"]: t for t in by_name["erp"]["tables"]}
        assert "status_code (status) values to map under codes.status: 10, 20, 30, 40" in re.sub(
            r"\n\s*# ", " ", site.read_text())
        tables["production_orders"]["codes"] = {"status": {"10": "planned", "20": "released", "30": "running",
                                                           "40": "completed", "90": "cancelled"},
                                                "line_id": {"L1": "assembly/line1", "L2": "assembly/line2"}}
        tables["quality_inspections"]["codes"]["asset_id"] = {"L1-EOL": "assembly/line1/camera1",
                                                              "L2-EOL": "assembly/line2/camera2"}
        by_name["images"]["settle_s"] = by_name["images"].get("settle_s", 2.0)
        site.write_text(yaml.safe_dump(draft, sort_keys=False, allow_unicode=True))
        found, hand = load_config(site), load_config(tmp_path / "hand.yaml")
        for k, v in env.items():
            if k.startswith("AIRFLOW_CONN_"):
                monkeypatch.setenv(k, v)
        for cfg, name in ((found, "mqtt_plant"), (hand, "mqtt_plant")):  # durable sessions before the plant publishes
            src = cfg.source(name)
            source_kind("mqtt").load()(src, cfg, get_connection(src.connection_id)).open_session()
        MqttPublisher(story, port=vp.broker.port).publish(hour, hour + timedelta(hours=1))
        runs = {}
        for cfg, tag in ((found, "found"), (hand, "hand")):
            for s in cfg.sources:
                if s.enabled:
                    runs[tag, s.name] = run_source(s.name, hour, hour + timedelta(hours=1), config=cfg)
    for (tag, name), s in runs.items():
        if tag == "found":
            assert s.published > 0, (name, s.describe())
    lake = Lake(found.lake_root())
    rows = lake.read(get_table("sensor_readings")).to_pylist()
    # OPC UA: every value of every variable, at its time; where no conversion applies, the very value
    opc = truth.opcua_values(story, hour, hour + timedelta(hours=1)).to_pylist()
    got = {(r["source_ref"], r["ts"]): r for r in rows if r["source"] == "opcua"}
    assert len(got) == len(opc) == 86 * 360
    same_unit = 0
    for e in opc:
        r = got[(e["node"], e["ts"])]
        if e["value_text"] is not None:
            assert r["value_text"] == e["value_text"]
        elif r["unit"] == e["unit"]:
            assert r["value"] == pytest.approx(e["value"]), e
            same_unit += 1
    assert same_unit > 10_000
    # MQTT: every JSON message by id; every Sparkplug metric sample
    sent = truth.mqtt_messages(story, hour, hour + timedelta(hours=1))
    json_ids = {e["msg_id"] for e in sent.to_pylist() if e["kind"] == "json" and e["tag"]}
    assert {r["message_id"] for r in rows if r["source"] == "mqtt" and not r["tag"].startswith(("chiller", "coolant"))} \
        == json_ids
    spb = [e for e in sent.to_pylist() if e["kind"] == "sparkplug" and e["tag"]]
    chillers = [r for r in rows if r["source"] == "mqtt" and r["tag"].startswith(("chiller", "coolant"))]
    assert sorted((r["tag"], r["ts"]) for r in chillers if r["status_code"] == 0) == sorted((e["tag"], e["ts"]) for e in spb)
    assert len([r for r in chillers if r["status_code"] != 0]) == 2 * 3  # each device's DDEATH: its metrics Bad
    # images: every intact one by its hash
    shots = truth.images(story, hour, hour + timedelta(hours=1)).to_pylist()
    images = [r["image_id"] for r in lake.read(get_table("inspection_images")).to_pylist()]
    assert sorted(images) == sorted(s["sha256"] for s in shots if not s["corrupt"])
    # ERP and historian: what the hand-written config lands, the discovered one lands too
    hand_lake = Lake(hand.lake_root())
    for table, key in (("production_orders", ("order_id", "status", "line_id", "quantity_planned")),
                       ("quality_inspections", ("inspection_id", "result", "asset_id", "measured_value"))):
        want = {tuple(r[k] for k in key) for r in hand_lake.read(get_table(table)).to_pylist()}
        have = {tuple(r[k] for k in key) for r in lake.read(get_table(table)).to_pylist()}
        assert want and have == want, table
    hist = Counter((r["ts"], round(r["value"], 9) if r["value"] is not None else r["value_text"])
                   for r in hand_lake.read(get_table("sensor_readings")).to_pylist() if r["source"] == "csv")
    mine = Counter((r["ts"], round(r["value"], 9) if r["value"] is not None else r["value_text"])
                   for r in rows if r["source"] == "csv")
    assert hist and not (hist - mine), hist - mine


def test_discovery_that_finds_nothing_says_so_and_writes_nothing(tmp_path, mosquitto):
    env = dict(os.environ)
    (tmp_path / "empty").mkdir()
    done = cli(tmp_path, env, "discover", "folder", "empty", ok=False)
    assert done.returncode == 1 and "discover folder: empty: holds no historian exports (.csv, .txt) and no images" \
        in done.stderr
    done = cli(tmp_path, env, "discover", "mqtt", f"mqtt://127.0.0.1:{mosquitto.port}", "--for", "1s", ok=False)
    assert done.returncode == 1, done.stderr
    assert "no message arrived in 1 s on the topics subscribed: listen longer (--for)" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "plant.yaml").exists()


def test_an_objects_properties_are_never_read_as_readings(tmp_path):
    """A hand-written `variables: '*'` over machines whose objects carry SerialNumber and Manufacturer
    properties (Part 3 HasProperty): the connector selects the machines' variables, not their nameplates."""
    shape = Part8Shape(halls=1, lines=1, machines=2, analog=2)
    site = {"enterprise": {"id": "acme", "sites": [{"id": "plant1", "areas": [{"id": "hall_a", "lines": [
        {"id": "line_01", "cells": [{"id": "machine001"}, {"id": "machine002"}]}]}]}]},
        "lake": {"root": "./lake"},
        "sources": [{"name": "widgets", "kind": "opcua", "connection_id": "widgets", "mode": "poll",
                     "nodes": [{"namespace": "urn:example:widgets", "path": "Factory/{area}/{line}/{cell}",
                                "asset": "{area}/{line}/{cell}"}]}]}
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    with part8_opcua(shape) as endpoint:
        env = {**os.environ, "AIRFLOW_CONN_WIDGETS": endpoint.replace("opc.tcp://", "opcua://")}
        done = cli(tmp_path, env, "--config", str(tmp_path / "plant.yaml"), "config", "check", "--probe")
    # per machine: 2 analog items, Running, Count, Recipe, Setpoint, Spectrum — not SerialNumber, Manufacturer
    assert "ok   nodes[0] Factory/{area}/{line}/{cell}/*: 14 variables on 2 assets" in done.stdout, done.stdout
