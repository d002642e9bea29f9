"""MQTT drain: the connector vs the C client `mosquitto_sub` and a bare paho subscriber.

The same Mosquitto holds the same pre-queued messages (the virtual plant's JSON and
Sparkplug B telemetry, QoS 1) for one durable session per contender. `mosquitto_sub`
(libmosquitto, Debian's mosquitto-clients; output to /dev/null) is the ceiling: what the
broker can deliver to a client that does nothing with the messages. The bare paho
subscriber counts (paho acknowledges each on arrival). The connector drains its session
the way a DAG run does: receive, land each chunk as fsynced raw Parquet, then acknowledge
the chunk — over MQTT 5 (the default, on the `mqtt5` codec) and, as a variant, over MQTT
3.1.1 (paho). All run in this process, in this run, each `--repeat` times with the queue
refilled in between, in alternating order; the ratios are the connector's messages/s
over each other's.

    python bench/mqtt.py --messages 100000 --repeat 3 [--json out.json]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Contender, Result, arguments, measure, report

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 1, 1, 6, tzinfo=UTC)

PUBLISH = """
import sys
from datetime import UTC, datetime, timedelta
from simulators.mqtt_publisher import messages, paced_send
from simulators.story import Plant
port, wanted = int(sys.argv[1]), int(sys.argv[2])
plant, start = Plant(seed=42), datetime(2026, 1, 1, 6, tzinfo=UTC)
per_hour = len(messages(plant, start, start + timedelta(hours=1)))
hours = max(1, -(-wanted // per_hour))  # whole hours of telemetry, a day at a time
n, at, end = 0, start, start + timedelta(hours=hours)
while at < end:
    day = messages(plant, at, min(end, at + timedelta(hours=24)))
    n += paced_send("127.0.0.1", port, [(m.topic, m.payload) for m in day])
    at += timedelta(hours=24)
print(n, hours)
"""


def bare_drain(port: int, topics: list[str], expected: int, *, connect_only: bool = False) -> int:
    """A plain paho 2.x subscriber on a persistent MQTT 5 session: count messages, nothing else."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    done, subscribed = threading.Event(), threading.Event()
    count = 0

    def on_message(client, userdata, msg):  # noqa: ARG001
        nonlocal count
        count += 1
        if count >= expected:
            done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, *_: cl.subscribe([(t, 1) for t in topics])
    c.on_subscribe = lambda *_: subscribed.set()
    c.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 65535
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    try:
        if not subscribed.wait(15):
            raise RuntimeError("bare subscriber: no SUBACK")
        if not connect_only and not done.wait(600):
            raise RuntimeError(f"bare subscriber got {count} of {expected} messages")
    finally:
        c.disconnect()
        c.loop_stop()
    return count


def mosquitto_sub(port: int, topics: list[str], expected: int, *, connect_only: bool = False) -> int:
    """The C client on a persistent MQTT 5 session (QoS 1): exits after `expected` messages."""
    args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-i", "bench-mosquitto-sub", "-c", "-q", "1",
            "-V", "mqttv5", "-x", "3600", *[a for t in topics for a in ("-t", t)]]
    args += ["-W", "1"] if connect_only else ["-C", str(expected), "-W", "600"]
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=not connect_only)
    return expected


def connector(cfg, port: int, lake_root: Path, max_messages: int, protocol: str = "v5"):
    """The plantlake connector for the site's MQTT source, pointed at the bench broker."""
    from connectors.mqtt.connector import MqttConnector
    from plantlake.core.connections import Connection

    src = cfg.source("mqtt_plant").model_copy(update={"client_id": f"bench-connector-{protocol}",
                                                      "max_messages": max_messages, "protocol": protocol})
    return MqttConnector(src, cfg, Connection("bench", "mqtt", "127.0.0.1", port))


def connector_drain(cfg, port: int, lake_root: Path, expected: int, run: int, protocol: str = "v5") -> int:
    """Drain, land (fsynced raw Parquet per chunk) and acknowledge, as `run_source` does."""
    from plantlake.core.lake import Interval, Lake
    from plantlake.pipeline.runner import land

    c = connector(cfg, port, lake_root, expected, protocol)
    try:
        interval = Interval(START + timedelta(days=run), START + timedelta(days=run, hours=1))
        ex = c.extract(interval, {})
        return land(Lake(lake_root / protocol).ensure(), "mqtt_plant", interval, ex)
    finally:
        c.close()


def main() -> None:
    from plantlake.core.config import load_config
    from simulators.broker import Mosquitto

    args = arguments(__doc__, messages=100_000, repeat=3).parse_args()
    if shutil.which("mosquitto_sub") is None:
        raise SystemExit("bench/mqtt.py needs mosquitto_sub (apt-get install mosquitto-clients; `make bench` does it)")
    cfg = load_config(ROOT / "plant.yaml")
    work = Path(tempfile.mkdtemp(prefix="plantlake-bench-mqtt-"))
    ours = Contender("plantlake", "plantlake", "plantlake connector, MQTT 5 (land fsynced raw Parquet + ack)")
    v311 = Contender("plantlake-v311", "variant", "plantlake connector, MQTT 3.1.1 on paho (same work)")
    csub = Contender("mosquitto_sub", "baseline", "mosquitto_sub (C, libmosquitto; to /dev/null)")
    base = Contender("bare", "baseline", "bare paho subscriber (count only)")
    drains = {
        "plantlake": lambda n, r: connector_drain(cfg, port, work / "lake", n, r),
        "plantlake-v311": lambda n, r: connector_drain(cfg, port, work / "lake", n, r, "v311"),
        "mosquitto_sub": lambda n, r: mosquitto_sub(port, topics, n),
        "bare": lambda n, r: bare_drain(port, topics, n),
    }
    publish_rate = []
    with Mosquitto(data_dir=work / "broker", autosave_interval=30) as broker:  # as deploy/mosquitto
        port = broker.port
        topics = connector(cfg, port, work, 1).subscriptions()
        # every session exists before anything is published
        bare_drain(port, topics, 0, connect_only=True)
        mosquitto_sub(port, topics, 0, connect_only=True)
        for protocol in ("v5", "v311"):
            connector(cfg, port, work, 1, protocol).open_session()
        order = [ours, csub, v311, base]
        for run in range(args.repeat):
            # published from another process, so this one's memory is the drains' alone
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", PUBLISH, str(port), str(args.messages)], cwd=ROOT,
                                 check=True, capture_output=True, text=True).stdout.split()
            n, hours = int(out[0]), float(out[1])
            publish_rate.append(n / (time.perf_counter() - t))
            for who in (order if run % 2 == 0 else order[::-1]):
                measure(who, lambda who=who, n=n, r=run: drains[who.name](n, r), n,
                        children=False)  # Mosquitto and mosquitto_sub are children of this process
    shutil.rmtree(work, ignore_errors=True)
    report(Result(
        "mqtt", f"{n:,} QoS 1 messages queued in Mosquitto for a persistent session (the virtual plant's "
                f"JSON and Sparkplug B telemetry, {hours:g} h of it)",
        "messages", n, args.repeat, [ours, v311, csub, base], target=0.5, target_vs="mosquitto_sub",
        target_text="drain >= 0.5x mosquitto_sub (the C client draining the same queue)",
        notes=[f"published at {statistics.median(publish_rate):,.0f} msg/s (QoS 1, acknowledged; not timed)",
               "mosquitto_sub's time includes starting its process; its memory is not counted"]), args.json)


if __name__ == "__main__":
    main()
