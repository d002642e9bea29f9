"""MQTT sustained: a plant publishing at a fixed rate for minutes while scheduled runs drain it.

A publisher process sends the virtual plant's JSON and Sparkplug B telemetry (fresh
messages, each with its own id) to Mosquitto with QoS 1 at `--rate` messages/s for
`--minutes`. Meanwhile runs of the MQTT source start every `--every` seconds, as the DAG's
schedule would start them (one at a time: a run that overruns delays the next, as
`max_active_runs=1` does). Each run is the whole job (`run_source`: drain until the
source's `max_duration_s`, land fsynced and acknowledge, decode, conform, audit, publish).

What must hold: the broker's queue for plantlake does not grow. The queue at each run's
start is what the broker acknowledged to the publisher minus what runs drained so far;
its trend over the second half of the test (least squares, messages per second) must stay
under 1 % of the rate, and at the end every published message is in the lake. The ratio
reported is the publishing time over the time plantlake's runs were busy: plantlake's
capacity as a multiple of the load (at least 1.0 to keep up).

    python bench/mqtt_sustained.py --rate 10000 --minutes 10 [--json out.json]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Contender, PeakRSS, Result, arguments, report

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 1, 1, 6, tzinfo=UTC)

PUBLISH = """
import itertools, sys
from datetime import UTC, datetime, timedelta
from simulators.mqtt_publisher import messages, paced_send
from simulators.story import Plant
port, rate, total = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
plant, start = Plant(seed=7), datetime(2026, 3, 1, tzinfo=UTC)

def telemetry():
    for h in itertools.count():  # fresh hours of the plant, one at a time
        yield from ((m.topic, m.payload) for m in messages(plant, start + timedelta(hours=h),
                                                            start + timedelta(hours=h + 1)))

n = paced_send("127.0.0.1", port, itertools.islice(telemetry(), total), rate=rate, client_id="plantsim-sustained",
               progress=lambda acked: print("acked", acked, flush=True))
print("done", n, flush=True)
"""


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def main() -> None:
    import great_expectations  # noqa: F401 - a task process has it loaded; its import is not the runs' time

    from plantlake.core.config import load_config, with_source
    from plantlake.pipeline.runner import run_source
    from simulators.broker import Mosquitto

    args = arguments(__doc__, rate=10_000.0, minutes=10.0, every=30.0, window=10.0).parse_args()
    total = int(args.rate * args.minutes * 60)
    work = Path(tempfile.mkdtemp(prefix="plantlake-bench-sustained-"))
    shutil.copy(ROOT / "plant.yaml", work / "plant.yaml")
    acked = [0]
    done = threading.Event()
    runs: list[dict] = []
    with Mosquitto(data_dir=work / "broker", autosave_interval=30) as broker:  # as deploy/mosquitto
        os.environ["AIRFLOW_CONN_PLANT_MQTT"] = f"mqtt://127.0.0.1:{broker.port}"
        os.environ["LAKE_ROOT"] = str(work / "lake")
        # a run drains at most `window` seconds: under a steady load the broker never goes quiet
        cfg = with_source(load_config(work / "plant.yaml"), "mqtt_plant", max_duration_s=args.window)
        run_source("mqtt_plant", START - timedelta(minutes=1), START, config=cfg)  # the durable session
        pub = subprocess.Popen([sys.executable, "-c", PUBLISH, str(broker.port), str(args.rate), str(total)],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)

        def follow() -> None:
            for line in pub.stdout:
                word, n = line.split()
                acked[0] = int(n)
                if word == "done":
                    done.set()

        threading.Thread(target=follow, daemon=True).start()
        t0 = time.monotonic()
        drained = 0
        k = 0
        with PeakRSS(children=False) as mem:
            while not (done.is_set() and drained >= acked[0]) and time.monotonic() - t0 < args.minutes * 60 * 3:
                time.sleep(max(0.0, t0 + k * args.every - time.monotonic()))  # the schedule's next tick
                at, queued = time.monotonic(), acked[0] - drained
                iv = (START + timedelta(minutes=k), START + timedelta(minutes=k + 1))
                s = run_source("mqtt_plant", *iv, config=cfg)
                drained += s.stats["messages"]
                runs.append({"at_s": round(at - t0, 2), "queued_at_start": queued, "messages": s.stats["messages"],
                             "took_s": round(time.monotonic() - at, 2), "published_rows": s.published,
                             "quarantined": s.quarantined, "steps_s": s.timings_s})
                print(f"run {k}: t={at - t0:6.1f} s queued {queued:>9,} drained {s.stats['messages']:>9,} in "
                      f"{runs[-1]['took_s']:5.1f} s", flush=True)
                k += 1
        pub.wait(60)
    busy = sum(r["took_s"] for r in runs)
    second_half = [(r["at_s"], r["queued_at_start"]) for r in runs
                   if args.minutes * 30 <= r["at_s"] <= args.minutes * 60]
    trend = slope(second_half)
    held = drained >= total and trend <= 0.01 * args.rate
    load_s = total / args.rate
    ours = Contender("plantlake", "plantlake", "plantlake runs, busy time (drain, land + ack, decode, conform, "
                                               "audit, publish)", [busy], [mem.peak_mib], [mem.grew_mib])
    load = Contender("publisher", "baseline", f"the plant publishing {args.rate:,.0f} msg/s (QoS 1)", [load_s],
                     [0.0], [0.0])
    shutil.rmtree(work, ignore_errors=True)
    report(Result(
        "mqtt_sustained", f"{args.rate:,.0f} QoS 1 messages/s published for {args.minutes:g} min ({total:,} "
                          f"messages) while a run starts every {args.every:g} s, each draining at most "
                          f"{args.window:g} s", "messages", total, 1, [ours, load], target=1.0, target_vs="publisher",
        target_text="keeps up: capacity >= 1.0x the load, the queue does not grow, every message drained",
        verdict=held,
        notes=[f"{len(runs)} runs; drained {drained:,} of {total:,} messages; queue trend over the second half "
               f"{trend:+,.0f} msg/s (limit {0.01 * args.rate:,.0f}); largest queue at a run's start "
               f"{max(r['queued_at_start'] for r in runs):,}; median run {statistics.median(r['took_s'] for r in runs):.1f} s"],
        extra={"runs": runs}), args.json)


if __name__ == "__main__":
    main()
