"""MQTT drain: the connector vs a bare paho subscriber that only counts.

The same Mosquitto holds the same pre-queued messages (the virtual plant's JSON and
Sparkplug B telemetry, QoS 1) for two durable sessions. The bare subscriber connects
and counts until it has them all (paho acknowledges each on arrival). The connector
drains its session the way a DAG run does: receive, land each chunk as fsynced raw
Parquet, then acknowledge the chunk. Both run in this process, in this run, each
`--repeat` times with the queue refilled in between; the ratio is the connector's
messages/s over the bare subscriber's.

    python bench/mqtt.py --hours 12 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 1, 1, 6, tzinfo=UTC)


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
    from connectors.mqtt import MqttConnector
    from plantlake.connections import Connection

    src = cfg.source("mqtt_plant").model_copy(update={"client_id": "bench-connector", "max_messages": max_messages})
    return MqttConnector(src, cfg, Connection("bench", "mqtt", "127.0.0.1", port))


def connector_drain(cfg, port: int, lake_root: Path, expected: int, run: int) -> int:
    """Drain, land (fsynced raw Parquet per chunk) and acknowledge, as `run_source` does."""
    from plantlake.lake import Interval, Lake
    from plantlake.runner import land

    c = connector(cfg, port, lake_root, expected)
    try:
        interval = Interval(START + timedelta(days=run), START + timedelta(days=run, hours=1))
        ex = c.extract(interval, {})
        return land(Lake(lake_root).ensure(), "mqtt_plant", interval, ex)
    finally:
        c.close()


def main() -> None:
    from plantlake.config import load_config
    from simulators.broker import Mosquitto
    from simulators.mqtt_publisher import MqttPublisher
    from simulators.story import Plant

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=12.0, help="hours of plant telemetry to pre-queue")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cfg = load_config(ROOT / "plant.yaml")
    plant = Plant(seed=42)
    end = START + timedelta(hours=args.hours)
    work = Path(tempfile.mkdtemp(prefix="plantlake-bench-mqtt-"))
    times: dict[str, list[float]] = {"bare": [], "connector": []}
    with Mosquitto(data_dir=work / "broker") as broker:
        topics = connector(cfg, broker.port, work, 1).subscriptions()
        bare_drain(broker.port, topics, 0, connect_only=True)  # both sessions exist before anything is published
        connector(cfg, broker.port, work, 1).open_session()
        for run in range(args.repeat):
            t = time.perf_counter()
            n = len(MqttPublisher(plant, port=broker.port).publish(START, end))
            publish_s = time.perf_counter() - t
            order = ("bare", "connector") if run % 2 == 0 else ("connector", "bare")
            for who in order:
                t = time.perf_counter()
                got = (bare_drain(broker.port, topics, n) if who == "bare"
                       else connector_drain(cfg, broker.port, work / "lake", n, run))
                times[who].append(time.perf_counter() - t)
                assert got == n, (who, got, n)
    b, c = statistics.median(times["bare"]), statistics.median(times["connector"])
    print(f"MQTT drain: {n:,} pre-queued QoS 1 messages ({args.hours:g} h of plant telemetry, published at "
          f"{n / publish_s:,.0f} msg/s), Mosquitto, median of {args.repeat}")
    print(f"  bare paho subscriber (count only)        : {b:.2f} s  {n / b:,.0f} msg/s")
    print(f"  plantlake connector (land fsynced + ack) : {c:.2f} s  {n / c:,.0f} msg/s")
    print(f"  ratio (connector / bare msg/s): {b / c:.2f}x   target >= 0.8x")


if __name__ == "__main__":
    main()
