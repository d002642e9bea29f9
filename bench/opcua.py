"""OPC UA history: the connector vs a bare asyncua per-node `read_raw_history` loop.

Both read the same past interval for the same 200+ nodes from the same server (the
virtual plant, in its own process so it does not share the GIL with the readers), in
this run. The ratio is the connector's values/s over the bare loop's.

    python bench/opcua.py --lines 5 --hours 1 --repeat 3 [--json out.json]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Contender, Result, arguments, measure, report

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
    from connectors.opcua.connector import OpcUaConnector
    from plantlake.core.config import load_config
    from plantlake.core.connections import Connection
    from plantlake.core.lake import Interval

    cfg = load_config(ROOT / "plant.yaml")
    extra_lines = [{"id": f"line{i}", "cells": [{"id": f"{r}{i}"} for r in ("coater", "press", "welder", "camera")]}
                   for i in range(3, lines + 1)]
    areas = cfg.enterprise.sites[0].areas[0]
    from plantlake.core.config import parse_config

    data = cfg.model_dump(exclude={"base_dir"})
    data["enterprise"]["sites"][0]["areas"][0]["lines"] = [ln.model_dump() for ln in areas.lines] + extra_lines
    cfg = parse_config(data)
    src = cfg.source("opcua_plant")
    conn = Connection("bench", "opcua", "127.0.0.1", port, schema="plantsim")
    ex = OpcUaConnector(src, cfg, conn).extract(Interval(start, end), {})
    return sum(b.num_rows for s in ex.streams.values() for b in s.batches)


def main() -> None:
    args = arguments(__doc__, lines=5, hours=1.0, repeat=3).parse_args()
    end = START + timedelta(hours=args.hours)
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(args.lines), str(args.hours)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    try:
        port, nodes = map(int, proc.stdout.readline().split())
        endpoint = f"opc.tcp://127.0.0.1:{port}/plantsim"
        values = asyncio.run(bare(endpoint, START, end))  # untimed warm-ups: imports, and how many values
        assert connector(port, args.lines, START, end) == values
        base = Contender("bare", "baseline", "bare asyncua read_raw_history loop, node by node")
        ours = Contender("plantlake", "plantlake", "plantlake OPC UA connector (batched HistoryRead)")
        for run in range(args.repeat):
            for who in ((base, ours) if run % 2 == 0 else (ours, base)):
                measure(who, (lambda: asyncio.run(bare(endpoint, START, end))) if who is base
                        else (lambda: connector(port, args.lines, START, end)), values,
                        children=False)  # the server is a child of this process
    finally:
        proc.kill()
    report(Result(
        "opcua", f"history of {nodes} nodes x {args.hours:g} h = {values:,} values from an asyncua server "
                 f"(the virtual plant, {args.lines} lines, in its own process)", "values", values, args.repeat,
        [ours, base], target=2.0, target_text="history >= 2x a bare per-node asyncua read_raw_history loop"),
        args.json)


if __name__ == "__main__":
    main()
