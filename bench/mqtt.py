"""MQTT drain: the connector vs a bare paho subscriber that only counts.

The same Mosquitto holds the same pre-queued messages (the virtual plant's JSON and
Sparkplug B telemetry, QoS 1) for two durable sessions. The bare subscriber connects
and counts until it has them all (paho acknowledges each on arrival). The connector
drains its session the way a DAG run does: receive, land each chunk as fsynced raw
Parquet, then acknowledge the chunk. Both run in this process, in this run, each
`--repeat` times with the queue refilled in between; the ratio is the connector's
messages/s over the bare subscriber's.

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
from simulators.mqtt_publisher import MqttPublisher, messages
from simulators.story import Plant
port, wanted = int(sys.argv[1]), int(sys.argv[2])
plant, start = Plant(seed=42), datetime(2026, 1, 1, 6, tzinfo=UTC)
per_hour = len(messages(plant, start, start + timedelta(hours=1)))
hours = max(1, -(-wanted // per_hour))  # whole hours of telemetry, a day at a time
n, at, end = 0, start, start + timedelta(hours=hours)
while at < end:
    n += len(MqttPublisher(plant, port=port).publish(at, min(end, at + timedelta(hours=24))))
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


def connector(cfg, port: int, lake_root: Path, max_messages: int):
    """The plantlake connector for the site's MQTT source, pointed at the bench broker."""
    from connectors.mqtt.connector import MqttConnector
    from plantlake.core.connections import Connection

    src = cfg.source("mqtt_plant").model_copy(update={"client_id": "bench-connector", "max_messages": max_messages})
    return MqttConnector(src, cfg, Connection("bench", "mqtt", "127.0.0.1", port))


def connector_drain(cfg, port: int, lake_root: Path, expected: int, run: int) -> int:
    """Drain, land (fsynced raw Parquet per chunk) and acknowledge, as `run_source` does."""
    from plantlake.core.lake import Interval, Lake
    from plantlake.pipeline.runner import land

    c = connector(cfg, port, lake_root, expected)
    try:
        interval = Interval(START + timedelta(days=run), START + timedelta(days=run, hours=1))
        ex = c.extract(interval, {})
        return land(Lake(lake_root).ensure(), "mqtt_plant", interval, ex)
    finally:
        c.close()


def main() -> None:
    from plantlake.core.config import load_config
    from simulators.broker import Mosquitto

    args = arguments(__doc__, messages=100_000, repeat=3).parse_args()
    cfg = load_config(ROOT / "plant.yaml")
    work = Path(tempfile.mkdtemp(prefix="plantlake-bench-mqtt-"))
    base = Contender("bare", "baseline", "bare paho subscriber (count only)")
    ours = Contender("plantlake", "plantlake", "plantlake connector (land fsynced raw Parquet + ack)")
    publish_rate = []
    with Mosquitto(data_dir=work / "broker", autosave_interval=30) as broker:  # as deploy/mosquitto
        topics = connector(cfg, broker.port, work, 1).subscriptions()
        bare_drain(broker.port, topics, 0, connect_only=True)  # both sessions exist before anything is published
        connector(cfg, broker.port, work, 1).open_session()
        for run in range(args.repeat):
            # published from another process, so this one's memory is the drains' alone
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", PUBLISH, str(broker.port), str(args.messages)], cwd=ROOT,
                                 check=True, capture_output=True, text=True).stdout.split()
            n, hours = int(out[0]), float(out[1])
            publish_rate.append(n / (time.perf_counter() - t))
            for who in ((base, ours) if run % 2 == 0 else (ours, base)):
                measure(who, (lambda n=n: bare_drain(broker.port, topics, n)) if who is base
                        else (lambda n=n, r=run: connector_drain(cfg, broker.port, work / "lake", n, r)), n,
                        children=False)  # Mosquitto is a child of this process
    shutil.rmtree(work, ignore_errors=True)
    report(Result(
        "mqtt", f"{n:,} QoS 1 messages queued in Mosquitto for a persistent session (the virtual plant's "
                f"JSON and Sparkplug B telemetry, {hours:g} h of it)",
        "messages", n, args.repeat, [ours, base], target=0.8,
        target_text="drain >= 0.8x a bare counting paho subscriber",
        notes=[f"published at {statistics.median(publish_rate):,.0f} msg/s (not timed)"]), args.json)


if __name__ == "__main__":
    main()
