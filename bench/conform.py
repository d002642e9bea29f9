"""conform + audit + publish of N sensor_readings rows vs a bare pyarrow.parquet.write_table.

The rows are OPC UA raw rows (200 tags on 8 machines of the site, some in °F and W, 1 %
Bad, one day), generated in batches and fed to `run_source` through the OPC UA connector
itself: a subclass replaces only the server read. The run lands them (the connector's side,
not timed), then reads them back in slices of at most `--slice-rows` rows of whole series,
decodes, conforms, stages, audits each slice with the table's Great Expectations suite and
publishes all slices together in one Delta commit. Timed, as the target names it: the run's conform + stage +
audit + publish steps; reading the landed raw back (with the slicing pass) and the OPC UA
decode are reported beside it, with the ratio they would give. The baselines write the
published rows (the declared columns) with one bare `pq.write_table` (the disk's ceiling for
one Parquet file) and with one bare `write_deltalake` (the Delta library alone, partitioned by day).

Both run in this process, alternating, `--repeat` times after a warm-up of each (GX's
import and first-call costs). plantlake's peak memory is measured in a fresh process that
runs only the pipeline (`--memory`): this one must hold the baseline's whole table.

    python bench/conform.py --rows 5000000 --repeat 3 [--json out.json]
"""

# ruff: noqa: I001 - plantlake is imported before pyarrow on purpose
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any
from datetime import UTC, datetime, timedelta
from pathlib import Path

import plantlake  # noqa: F401 - first: it sets the allocator option Arrow reads when it loads

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base import Extract
from connectors.opcua.connector import RAW_SCHEMA, OpcUaConnector
from plantlake.core.config import load_config, with_source
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source

from harness import Contender, PeakRSS, Result, arguments, measure, report

ROOT = Path(__file__).resolve().parent.parent
TAGS = 200
START = datetime(2026, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)
MACHINES = [f"assembly/line{line}/{cell}{line}" for line in (1, 2) for cell in ("coater", "press", "welder", "camera")]
TIMED = ("conform", "stage", "audit", "publish")  # the target's "conform + audit + publish"


def tags() -> list[dict]:
    """The 200 tags as the site config declares them: a quarter in °F, a quarter in W."""
    units = ["degF", "W", "bar", "bar"]
    return [{"ref": f"ns=2;s=M{i % len(MACHINES)}.Tag{i}", "asset": MACHINES[i % len(MACHINES)], "tag": f"tag{i}",
             "unit": units[i % 4]} for i in range(TAGS)]


def raw_batches(rows: int, batch_rows: int = 1_000_000, seed: int = 1) -> Iterator[pa.Table]:
    """The connector's raw rows for one day, in time order, a batch at a time."""
    rng = np.random.default_rng(seed)
    per_tag = rows // TAGS
    step_us = int(86_400e6 // per_tag)
    t0 = int(START.timestamp() * 1e6)
    spec = tags()
    site = "acme/shenzhen/"
    columns = {"source_ref": [t["ref"] for t in spec], "node": [t["ref"] for t in spec],
               "asset_id": [site + t["asset"] for t in spec], "tag": [t["tag"] for t in spec],
               "unit": [t["unit"] for t in spec]}
    steps = max(1, batch_rows // TAGS)
    for first in range(0, per_tag, steps):
        n_steps = min(steps, per_tag - first)
        idx = pa.array(np.tile(np.arange(TAGS, dtype=np.int32), n_steps))
        ts = np.repeat((np.arange(first, first + n_steps, dtype=np.int64)) * step_us + t0, TAGS)
        n = len(ts)
        yield pa.table({
            **{k: pa.DictionaryArray.from_arrays(idx, v).cast(pa.string()) for k, v in columns.items()
               if k in ("source_ref", "node", "asset_id", "tag")},
            "type": pa.array(["number"] * 1, pa.string()).take(pa.array(np.zeros(n, dtype=np.int32))),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "server_ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "value": rng.normal(100, 10, n),
            "value_text": pa.nulls(n, pa.string()),
            "variant": pa.array(["Double"], pa.string()).take(pa.array(np.zeros(n, dtype=np.int32))),
            "status_code": pa.array(np.where(rng.random(n) < 0.01, 0x80000000, 0).astype(np.int64)),
            "unit": pa.DictionaryArray.from_arrays(idx, columns["unit"]).cast(pa.string()),
            "error": pa.nulls(n, pa.string()),
        }, schema=RAW_SCHEMA)


class GeneratedHistory(OpcUaConnector):
    """The OPC UA connector with generated history instead of a server's."""

    rows = 0

    def extract(self, interval, state):  # noqa: ANN001, ARG002 - the connector's signature
        return Extract.one(RAW_SCHEMA, raw_batches(self.rows), stats={"nodes": TAGS})


def config(slice_rows: int):
    cfg = load_config(ROOT / "plant.yaml")
    return with_source(cfg, "opcua_plant", tags=tags(), slice_rows=slice_rows)


def open_lake(root: Path, s3: Any = None) -> Lake:
    """An empty lake: under `root`, or (with an S3 server) in its bucket under a prefix of its own,
    with `root` as the local folder."""
    if s3 is None:
        return Lake(root / "lake")
    return Lake(s3.uri(root.name), s3.storage_options, local_dir=root / "local")


def pipeline(rows: int, root: Path, slice_rows: int, steps: dict[str, list[float]], s3: Any = None) -> int:
    """One run into an empty lake (`open_lake`); returns the rows published, records step times."""
    cfg = config(slice_rows)
    connector = GeneratedHistory(cfg.source("opcua_plant"), cfg, None)
    connector.rows = rows
    s = run_source("opcua_plant", START, END, config=cfg, lake=open_lake(root, s3), connector=connector)
    for step, took in s.timings_s.items():
        steps.setdefault(step, []).append(took)
    steps.setdefault("slices", []).append(s.stats["slices"])
    return s.published


def published_rows(root: Path, s3: Any = None) -> pa.Table:
    """What the pipeline published (the declared columns), for the baselines to write."""
    from schemas import get_table

    return open_lake(root, s3).read(get_table("sensor_readings"))


def bare_delta(published: pa.Table, folder: Path, s3: Any = None) -> int:
    """The bare library: one `write_deltalake` of the published rows, partitioned by day as the lake is."""
    import pyarrow.compute as pc
    from deltalake import write_deltalake

    day = pc.cast(published["ts"], pa.date32())
    target = str(folder / "delta") if s3 is None else s3.uri(folder.name, "delta")
    write_deltalake(target, published.append_column("date", day), partition_by=["date"],
                    storage_options=None if s3 is None else s3.storage_options)
    return published.num_rows


def bare_write(published: pa.Table, folder: Path, s3: Any = None) -> int:
    """The ceiling: one `pq.write_table` of the published rows, to the disk or (one PUT) to the server."""
    if s3 is None:
        pq.write_table(published, folder / "bare.parquet")
    else:
        sink = pa.BufferOutputStream()
        pq.write_table(published, sink)
        open_lake(folder, s3).storage.put("bare.parquet", sink.getvalue().to_pybytes())
    return published.num_rows


@contextlib.contextmanager
def server(kind: str) -> Iterator[Any]:
    """moto's S3 server for `--lake s3` (simulators.object_store), else nothing."""
    if kind != "s3":
        yield None
        return
    from simulators.object_store import s3_server

    with s3_server("bench") as s3:
        yield s3


def memory_only(rows: int, slice_rows: int, lake: str) -> None:
    """--memory: run the pipeline once in this fresh process and print its peak resident MiB."""
    import great_expectations  # noqa: F401 - like the timed runs: imported before

    with server(lake) as s3, tempfile.TemporaryDirectory() as tmp, PeakRSS(every=0.01) as mem:
        pipeline(rows, Path(tmp), slice_rows, {}, s3)
    print(json.dumps({"peak_mib": mem.peak_mib, "grew_mib": mem.grew_mib}))


def main() -> None:
    ap = arguments(__doc__, rows=5_000_000, repeat=3, slice_rows=2_000_000)
    ap.add_argument("--memory", action="store_true", help="only measure plantlake's peak memory (one run)")
    ap.add_argument("--lake", choices=["local", "s3"], default="local",
                    help="the lake on local disk, or in a bucket of moto's S3 server on loopback")
    args = ap.parse_args()
    rows = args.rows // TAGS * TAGS
    if args.memory:
        memory_only(rows, args.slice_rows, args.lake)
        return
    with server(args.lake) as s3:
        compare(args, rows, s3)


def compare(args: Any, rows: int, s3: Any) -> None:
    import great_expectations  # noqa: F401 - imported once, like a task that audits several tables

    where = "" if s3 is None else " to the S3 server"
    base = Contender("bare", "baseline", f"bare pyarrow.parquet.write_table of the published rows{where}")
    delta = Contender("bare delta", "baseline", f"bare deltalake.write_deltalake of the published rows{where}")
    ours = Contender("plantlake", "plantlake",
                     f"plantlake conform + stage + audit (GX) + publish, slices of {args.slice_rows:,}")
    steps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:  # one untimed warm-up of each; it also makes the baseline's rows
        assert pipeline(rows, Path(tmp), args.slice_rows, {}, s3) == rows
        published = published_rows(Path(tmp), s3)
        bare_write(published, Path(tmp), s3)
    for run in range(args.repeat):
        for who in ((base, delta, ours) if run % 2 == 0 else (ours, delta, base)):
            with tempfile.TemporaryDirectory() as tmp:
                if who is base:
                    measure(base, lambda t=tmp: bare_write(published, Path(t), s3), rows)
                elif who is delta:
                    measure(delta, lambda t=tmp: bare_delta(published, Path(t), s3), rows)
                else:  # the run's own step times: extract, land and decode are not the target's
                    assert pipeline(rows, Path(tmp), args.slice_rows, steps, s3) == rows
                    ours.seconds.append(sum(steps[k][-1] for k in TIMED))
    mem = json.loads(subprocess.run([sys.executable, __file__, "--rows", str(rows), "--slice-rows",
                                     str(args.slice_rows), "--lake", args.lake, "--memory"], check=True,
                                    capture_output=True, text=True).stdout.strip().splitlines()[-1])
    ours.peak_mib = [mem["peak_mib"]] * args.repeat
    ours.grew_mib = [mem["grew_mib"]] * args.repeat
    med = {k: float(np.median(v)) for k, v in steps.items()}
    audit_over_conform = float(np.median([a / c for a, c in zip(steps["audit"], steps["conform"], strict=True)]))
    with_decode = float(np.median([b / (o + d) for b, o, d in zip(base.seconds, ours.seconds, steps["decode"],
                                                                   strict=True)]))
    report(Result(
        "conform" if s3 is None else "conform_s3", f"{'' if s3 is None else '[lake on moto S3] '}{rows:,} sensor_readings rows of {TAGS} OPC UA tags (°F, W, bar; 1 % Bad), one day, "
                   f"{published.nbytes / 2**20:,.0f} MiB in Arrow once published",
        "rows", rows, args.repeat, [ours, delta, base],
        target=0.33, target_vs="bare", target_text="conform + audit + publish (Delta commit) >= 0.33x a bare write_table, what the pre-Delta store reached",
        notes=["plantlake steps (median s): " + ", ".join(f"{k} {med[k]:.2f}" for k in (*TIMED, "decode", "extract", "land")
                                                      if k in med) + " (decode, extract and land are not timed)",
               f"slices per run: {int(med['slices'])}; plantlake's peak memory from a fresh process "
               f"running the pipeline alone",
               f"audit (file checks + GX suite) / conform: {audit_over_conform:.2f}x",
               f"with reading the landed raw back and decoding it (the decode step, incl. the slicing pass): "
               f"{with_decode:.2f}x the bare write"],
        extra={"steps_s": med, "audit_over_conform": audit_over_conform, "ratio_with_decode": with_decode}),
        args.json)


if __name__ == "__main__":
    main()
