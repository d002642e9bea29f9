"""OPC UA history: the connector vs a bare asyncua per-node `read_raw_history` loop.

Both read the same past interval for the same 200+ nodes from the same server (the
virtual plant, in its own process so it does not share the GIL with the readers), in
this run. The ratio is the connector's values/s over the bare loop's.

    python bench/opcua.py --lines 5 --hours 1 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 1, 1, 6, tzinfo=UTC)

SERVER = """
import sys, time
from datetime import UTC, datetime, timedelta
from simulators.opcua_server import OpcUaSimulator
from simulators.story import Plant
lines, hours = int(sys.argv[1]), float(sys.argv[2])
start = datetime(2026, 1, 1, 6, tzinfo=UTC)
sim = OpcUaSimulator(Plant(lines=lines)).start_in_thread(prefill=(start, start + timedelta(hours=hours)))
print(sim.port, len(sim.nodes), flush=True)
while True:
    time.sleep(60)
"""


async def bare(endpoint: str, start: datetime, end: datetime) -> int:
    """What a script would do: browse the machines, then read_raw_history node by node."""
    from asyncua import Client, ua

    from simulators.story import NAMESPACE_URI

    n = 0
    async with Client(endpoint, timeout=60) as c:
        ns = await c.get_namespace_index(NAMESPACE_URI)
        plant = await c.nodes.objects.get_child([f"{ns}:Plant"])
        for line in await plant.get_children():
            for machine in await line.get_children():
                for var in await machine.get_children(nodeclassmask=ua.NodeClass.Variable):
                    n += len(await var.read_raw_history(start, end - timedelta(microseconds=1)))
    return n


def connector(port: int, lines: int, start: datetime, end: datetime) -> int:
    from connectors.opcua import OpcUaConnector
    from plantlake.config import load_config
    from plantlake.connections import Connection
    from plantlake.lake import Interval

    cfg = load_config(ROOT / "plant.yaml")
    extra_lines = [{"id": f"line{i}", "cells": [{"id": f"{r}{i}"} for r in ("coater", "press", "welder", "camera")]}
                   for i in range(3, lines + 1)]
    areas = cfg.enterprise.sites[0].areas[0]
    from plantlake.config import parse_config

    data = cfg.model_dump(exclude={"base_dir"})
    data["enterprise"]["sites"][0]["areas"][0]["lines"] = [ln.model_dump() for ln in areas.lines] + extra_lines
    cfg = parse_config(data)
    src = cfg.source("opcua_plant")
    conn = Connection("bench", "opcua", "127.0.0.1", port, schema="plantsim")
    ex = OpcUaConnector(src, cfg, conn).extract(Interval(start, end), {})
    return sum(b.num_rows for b in ex.batches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=5)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    end = START + timedelta(hours=args.hours)
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(args.lines), str(args.hours)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    try:
        port, nodes = map(int, proc.stdout.readline().split())
        endpoint = f"opc.tcp://127.0.0.1:{port}/plantsim"
        times: dict[str, list[float]] = {"bare": [], "connector": []}
        counts = {}
        for _ in range(args.repeat):
            t = time.perf_counter()
            counts["bare"] = asyncio.run(bare(endpoint, START, end))
            times["bare"].append(time.perf_counter() - t)
            t = time.perf_counter()
            counts["connector"] = connector(port, args.lines, START, end)
            times["connector"].append(time.perf_counter() - t)
        assert counts["bare"] == counts["connector"], counts
        b, c = statistics.median(times["bare"]), statistics.median(times["connector"])
        v = counts["bare"]
        print(f"OPC UA history: {nodes} nodes x {args.hours:g} h = {v:,} values (median of {args.repeat})")
        print(f"  bare asyncua read_raw_history loop : {b:.2f} s  {v / b:,.0f} values/s")
        print(f"  plantlake connector                : {c:.2f} s  {v / c:,.0f} values/s")
        print(f"  ratio (connector / bare values/s): {b / c:.2f}x   target >= 2x")
    finally:
        proc.kill()


if __name__ == "__main__":
    main()
