"""The virtual plant read by real clients: asyncua, paho, Pillow, SQLAlchemy (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import paho.mqtt.client as mqtt
import pyarrow.compute as pc
import pytest
import sqlalchemy as sa
from asyncua import Client, ua
from PIL import Image

from connectors.mqtt import sparkplug
from simulators import truth
from simulators.camera import Camera, render
from simulators.erp import ErpSimulator
from simulators.mqtt_publisher import MqttPublisher, messages, paced_send
from simulators.net import free_port, wait_port
from simulators.opcua_server import OpcUaSimulator
from simulators.story import BAD, GOOD, NAMESPACE_URI, UNCERTAIN, Plant
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 1, 6, tzinfo=UTC)
END = START + timedelta(hours=1)


@pytest.fixture(scope="module")
def plant():
    return Plant(seed=42)


@pytest.fixture(scope="module")
def opcua(plant):
    sim = OpcUaSimulator(plant, namespaces_before=("urn:acme:other-vendor",)).start_in_thread(prefill=(START, END))
    yield sim
    sim.stop_thread()


# --------------------------------------------------------------------------- OPC UA


def test_opcua_address_space_browsed_by_namespace_uri(opcua):
    async def browse():
        async with Client(opcua.endpoint) as c:
            ns = await c.get_namespace_index(NAMESPACE_URI)
            plant_node = await c.nodes.objects.get_child([f"{ns}:Plant"])
            lines = sorted([(await n.read_browse_name()).Name for n in await plant_node.get_children()])
            welder = await plant_node.get_child([f"{ns}:line1", f"{ns}:welder1"])
            kinds = {}
            for v in await welder.get_children():
                name = (await v.read_browse_name()).Name
                kinds[name] = await v.read_data_type_as_variant_type()
            eu = await (await welder.get_child([f"{ns}:weld_temp", "0:EngineeringUnits"])).read_value()
            return ns, lines, kinds, eu

    ns, lines, kinds, eu = asyncio.run(browse())
    assert ns == 3  # the other vendor's namespace came first
    assert lines == ["line1", "line2"]
    assert 10 <= len(kinds) <= 30
    assert kinds["weld_temp"] == ua.VariantType.Double and kinds["alarm_count"] == ua.VariantType.Int32
    assert kinds["welds_count"] == ua.VariantType.UInt32 and kinds["running"] == ua.VariantType.Boolean
    assert kinds["state"] == ua.VariantType.String
    assert isinstance(eu, ua.EUInformation) and eu.DisplayName.Text == "degC"


def test_opcua_history_matches_ground_truth(opcua, plant):
    expected = truth.opcua_values(plant, START, END)
    nodes = ["line1.welder1.weld_temp", "line2.coater2.dryer_temp_zone3", "line1.press1.state", "line2.camera2.images_count"]

    async def read():
        async with Client(opcua.endpoint) as c:
            out = {}
            ns = await c.get_namespace_index(NAMESPACE_URI)  # resolved per connection, never hard-coded
            for key in nodes:
                n = c.get_node(ua.NodeId(key, ns))
                out[key] = await n.read_raw_history(START, END - timedelta(microseconds=1))
            return out

    got = asyncio.run(read())
    for key in nodes:
        exp = expected.filter(pc.equal(expected["node"], f"nsu={NAMESPACE_URI};s={key}"))
        values = got[key]
        assert len(values) == exp.num_rows == 360
        assert [dv.SourceTimestamp for dv in values] == exp["ts"].to_pylist()
        col = "value_text" if key.endswith("state") else "value"
        assert [dv.Value.Value if not isinstance(dv.Value.Value, bool) else float(dv.Value.Value) for dv in values] == exp[col].to_pylist()
        assert [dv.StatusCode.value for dv in values] == exp["status_code"].to_pylist()


def test_status_codes_include_fault_episodes(plant):
    day = truth.opcua_values(plant, START, START + timedelta(hours=6))
    codes = set(day["status_code"].to_pylist())
    assert {0, UNCERTAIN, BAD} <= codes
    bad_share = pc.mean(pc.cast(pc.not_equal(day["status_code"], 0), "float64")).as_py()
    assert 0.001 < bad_share < 0.1


def test_opcua_username_and_basic256sha256(tmp_path, plant):
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    sim = OpcUaSimulator(plant, users={"historian": "s3cret"}, secure_dir=tmp_path / "pki").start_in_thread(
        prefill=(START, START + timedelta(minutes=5)))
    cert, key = tmp_path / "client-cert.der", tmp_path / "client-key.pem"

    async def attempt(user: str | None, password: str | None) -> int:
        await setup_self_signed_certificate(key, cert, "urn:plantlake:client", "localhost",
                                            [ExtendedKeyUsageOID.CLIENT_AUTH], {"organizationName": "plantlake"})
        c = Client(sim.endpoint, timeout=5)
        await c.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key}")
        if user:
            c.set_user(user)
            c.set_password(password)
        async with c:
            n = c.get_node(ua.NodeId("line1.press1.roll_force", await c.get_namespace_index(NAMESPACE_URI)))
            return len(await n.read_raw_history(START, START + timedelta(minutes=5)))

    try:
        assert asyncio.run(attempt("historian", "s3cret")) == 30
        with pytest.raises(Exception, match="(?i)bad|denied|rejected|invalid"):
            asyncio.run(attempt("historian", "wrong"))
        with pytest.raises(Exception):  # noqa: B017 - anonymous is not offered at all
            asyncio.run(attempt(None, None))
    finally:
        sim.stop_thread()


def test_simulate_opcua_runs_standalone(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "plantlake", "simulate", "opcua", "--host", "127.0.0.1",
                             "--port", str(port), "--prefill-hours", "0.5", "--speed", "10"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "sim.log", "wb"))
    try:
        wait_port("127.0.0.1", port, timeout=60)
        time.sleep(2)

        async def read():
            async with Client(f"opc.tcp://127.0.0.1:{port}/plantsim") as c:
                n = c.get_node(ua.NodeId("line1.press1.roll_force", await c.get_namespace_index(NAMESPACE_URI)))
                now = datetime.now(UTC)
                # the simulator injects Uncertain/Bad readings at its fault rate, live values too:
                # read the status instead of letting asyncua raise on it
                current = await n.read_data_value(raise_on_bad_status=False)
                return current, await n.read_raw_history(now - timedelta(minutes=30), now + timedelta(minutes=5))

        current, history = asyncio.run(read())
        assert current.StatusCode.value in (GOOD, UNCERTAIN, BAD)
        if current.StatusCode.value != BAD:
            assert 1000 < current.Value.Value < 2500
        assert len(history) >= 170  # half an hour at 10 s, plus what live mode added
        usable = [d.Value.Value for d in history if d.StatusCode.value != BAD]
        assert len(usable) >= 0.9 * len(history)
        assert all(1000 < v < 2500 for v in usable), [v for v in usable if not 1000 < v < 2500]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "sim.log").read_text()[-2000:]


# --------------------------------------------------------------------------- MQTT


def test_every_mqtt_message_arrives_with_its_id(mosquitto, plant):
    end = START + timedelta(minutes=20)
    ids: list[str] = []

    def on_message(client, userdata, msg):
        if msg.topic.startswith("spBv1.0/"):
            ids.append(sparkplug.decode(msg.payload).uuid)
        else:
            ids.append(json.loads(msg.payload)["msg_id"])

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="counter", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe([("acme/#", 1), ("spBv1.0/#", 1)])
    sub.loop_start()
    time.sleep(0.5)
    sent = MqttPublisher(plant, port=mosquitto.port).publish(START, end)
    deadline = time.monotonic() + 30
    while len(ids) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    sub.loop_stop()
    expected = set(truth.mqtt_messages(plant, START, end)["msg_id"].to_pylist())
    assert len(sent) == len(expected) == len(set(sent))
    assert sorted(ids) == sorted(sent)
    assert set(ids) == expected


def test_paced_publishing_holds_its_rate_and_the_broker_acknowledges_every_message(mosquitto, plant):
    msgs = [(m.topic, m.payload) for m in messages(plant, START, START + timedelta(hours=2))]
    got: list[bytes] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paced-counter", protocol=mqtt.MQTTv5)
    sub.on_message = lambda client, userdata, msg: got.append(msg.payload)
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe([("acme/#", 1), ("spBv1.0/#", 1)])
    sub.loop_start()
    time.sleep(0.5)
    told: list[int] = []
    t = time.monotonic()
    n = paced_send("127.0.0.1", mosquitto.port, iter(msgs), rate=2000, progress=told.append)
    took = time.monotonic() - t
    deadline = time.monotonic() + 30
    while len(got) < len(msgs) and time.monotonic() < deadline:
        time.sleep(0.1)
    sub.loop_stop()
    assert n == len(msgs) > 4000
    assert took >= len(msgs) / 2000 * 0.95  # never ahead of its rate (it may fall behind on a busy machine)
    assert told and told == sorted(told) and told[-1] <= n
    assert got == [p for _, p in msgs]  # every message, in order (one connection, QoS 1)


def test_mqtt_payloads_cover_units_timestamps_and_sparkplug(plant):
    msgs = messages(plant, START, START + timedelta(minutes=1))
    by_topic = {}
    for m in msgs:
        by_topic.setdefault(m.topic.split("/")[-1] if m.topic.startswith("spBv1.0") else m.topic, []).append(m)
    coater2 = json.loads(by_topic["acme/shenzhen/assembly/line2/coater2/telemetry"][0].payload)
    assert coater2["units"]["ambient_temp"] == "degF" and "time_ms" in coater2
    press1 = json.loads(by_topic["acme/shenzhen/assembly/line1/press1/telemetry"][0].payload)
    assert press1["units"]["power"] == "W" and press1["ts"].endswith("Z")
    kinds = [m.topic.split("/")[2] for m in msgs if m.topic.startswith("spBv1.0/")]
    assert kinds[:2] == ["NBIRTH", "DBIRTH"] and kinds[-1] == "DDEATH" and "DDATA" in kinds
    birth = sparkplug.decode(next(m for m in msgs if "/DBIRTH/" in m.topic).payload)
    data = sparkplug.decode(next(m for m in msgs if "/DDATA/" in m.topic).payload)
    assert {x.name for x in birth.metrics} == {"coolant_flow", "coolant_supply_temp", "chiller_running"}
    assert all(x.alias for x in birth.metrics) and all(not x.name for x in data.metrics)
    assert data.seq == birth.seq + 1


# --------------------------------------------------------------------------- camera


def test_camera_images_open_corrupt_ones_fail_and_defects_are_visible(tmp_path, plant):
    shots = Camera(plant, tmp_path).shots(START, START + timedelta(hours=3))
    expected = truth.images(plant, START, START + timedelta(hours=3))
    assert [s.name for s in shots] == expected["file"].to_pylist()
    assert {s.format for s in shots} == {"JPEG", "PNG"}
    corrupt = [s for s in shots if s.corrupt]
    assert 0 < len(corrupt) < len(shots) * 0.1
    for s in shots:
        if s.corrupt:
            with pytest.raises(Exception):  # noqa: B017 - Pillow raises several types for broken files
                with Image.open(tmp_path / s.name) as im:
                    im.load()
        else:
            with Image.open(tmp_path / s.name) as im:
                im.load()
                assert im.size == (320, 240) and im.format == s.format
                exif = im.getexif()
                assert exif[0x0110].startswith("EOL-Cam")
                assert exif.get_ifd(0x8769)[0x9003] == s.captured_at.astimezone(
                    __import__("zoneinfo").ZoneInfo("Asia/Shanghai")).strftime("%Y:%m:%d %H:%M:%S")
        if s.sidecar:
            meta = json.loads((tmp_path / s.sidecar).read_text())
            assert meta["part_serial"] == s.part.serial and meta["station"] == s.station
        else:
            assert s.part.serial in s.name
    defective = [s for s in shots if s.label == "fail"]
    assert defective and all(s.part.defect for s in defective)
    part = defective[0].part
    clean = np.asarray(render(plant, part.__class__(**{**part.__dict__, "defect": False})), dtype=int)
    marked = np.asarray(render(plant, part), dtype=int)
    assert (np.abs(clean - marked).sum(axis=2) > 60).sum() > 50  # a defect you can see


# --------------------------------------------------------------------------- ERP


def _check_erp(url: str, plant: Plant) -> None:
    erp = ErpSimulator(plant, url)
    as_of = START + timedelta(hours=2)
    erp.sync(as_of)
    with erp.engine.connect() as c:
        inspections = c.execute(sa.text("select serial_no, verdict from inspection_results")).fetchall()
        orders = dict(c.execute(sa.text("select order_no, status_code from orders")).fetchall())
        materials = c.execute(sa.text("select count(*) from materials")).scalar()
    parts = truth.parts(plant, plant.start, as_of - timedelta(seconds=30))
    assert len(inspections) == parts.num_rows
    defect = dict(zip(parts["part_serial"].to_pylist(), parts["defect"].to_pylist(), strict=True))
    assert all((v == "NOK") == defect[s] for s, v in inspections)
    assert materials == 4
    assert {10, 20, 30, 40} & set(orders.values()) >= {20, 40}
    # an order moves on: status and changed_at change, the row is updated not duplicated
    erp.sync(as_of + timedelta(hours=3))
    with erp.engine.connect() as c:
        later = dict(c.execute(sa.text("select order_no, status_code from orders")).fetchall())
    running = [o for o, s in orders.items() if s == 30]
    assert running and all(later[o] == 40 for o in running)


def test_erp_in_sqlite(tmp_path, plant):
    _check_erp(f"sqlite:///{tmp_path / 'erp.sqlite'}", plant)


def test_erp_in_postgresql(postgres_url, plant):
    _check_erp(postgres_url, plant)


def test_erp_csv_export_is_a_german_erp_export(tmp_path, plant):
    files = ErpSimulator(plant, f"sqlite:///{tmp_path / 'erp.sqlite'}").export_csv(tmp_path / "csv", START + timedelta(hours=2))
    inspections = next(f for f in files if f.name.startswith("Pruefergebnisse"))
    with open(inspections, encoding="cp1252", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    assert rows[0][:4] == ["Prüfergebnis", "Auftragsnummer", "Seriennummer", "Prüfplatz"]
    assert "," in rows[1][6] and "." not in rows[1][6]  # decimal comma
    with pytest.raises(UnicodeDecodeError):
        inspections.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- one story, reproducible


def test_defective_parts_had_a_weld_temperature_overshoot(plant):
    parts = plant.parts(START, START + timedelta(hours=3))
    welder = plant.machine("line1", "welder")
    tag = next(t for t in welder.tags() if t.name == "weld_temp")
    hot, normal = [], []
    for p in parts:
        if p.line != "line1":
            continue
        t = plant.grid(p.started_at, p.finished_at)
        (hot if p.defect else normal).append(plant.values(welder, tag, t)[0].mean())
    assert hot and np.mean(hot) > np.mean(normal) + 30


def test_same_seed_same_plant_byte_for_byte(tmp_path):
    def produce(seed: int, folder):
        p = Plant(seed=seed)
        Camera(p, folder).shots(START, START + timedelta(minutes=30))
        erp = ErpSimulator(p, f"sqlite:///{folder / 'erp.sqlite'}")
        erp.sync(START + timedelta(minutes=30))
        files = {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.suffix != ".sqlite"}
        with erp.engine.connect() as c:
            rows = c.execute(sa.text("select * from inspection_results order by result_id")).fetchall()
        return (files, rows, [m.payload for m in messages(p, START, START + timedelta(minutes=5))],
                truth.opcua_values(p, START, START + timedelta(minutes=30)))

    a = produce(42, tmp_path / "a")
    b = produce(42, tmp_path / "b")
    c = produce(7, tmp_path / "c")
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2] and a[3].equals(b[3])
    assert a[0] != c[0] and a[2] != c[2] and not a[3].equals(c[3])
    assert len(a[0]) > 10


def test_manifest_is_written(tmp_path, plant):
    counts = truth.write_manifest(plant, START, START + timedelta(minutes=30), tmp_path)
    assert counts["opcua_values"] == 86 * 180
    assert set(counts) == {"opcua_values", "mqtt_messages", "images", "parts", "orders"}
    assert (tmp_path / "images.parquet").exists()
    assert ROOT.exists()


def test_virtual_plant_starts_every_silo_in_process(tmp_path, plant):
    from simulators.run import VirtualPlant

    with VirtualPlant(plant, tmp_path) as vp:
        counts = vp.produce(START, START + timedelta(minutes=30))
        conns = vp.connections()
        assert counts["opcua_values"] == 86 * 180
        assert counts["mqtt_messages"] == truth.mqtt_messages(plant, START, START + timedelta(minutes=30))["msg_id"].unique().__len__()
        assert counts["images"] == len(list(vp.image_dir.glob("*.jpg")) + list(vp.image_dir.glob("*.png")))
        assert counts["erp_inspection_results"] > 0
        assert conns["AIRFLOW_CONN_PLANT_OPCUA"].startswith("opcua://127.0.0.1:")
        assert conns["AIRFLOW_CONN_PLANT_MQTT"] == f"mqtt://127.0.0.1:{vp.broker.port}"
        wait_port("127.0.0.1", vp.opcua.port)
    assert vp.opcua is None and vp.broker is None
