"""The `plantlake` command line: run sources, check config, regenerate schema docs, demo."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from plantlake.core.config import ConfigError, load_config

log = logging.getLogger("plantlake")
#: printed by the demo for the analyst to try, never executed here
DEMO_QUERY = "select order_id, line_id, image_count, inspection_pass_rate from order_context"


def _when(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time such as 2026-01-02T04:00Z, got {text!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _cmd_run(args: argparse.Namespace) -> int:
    from plantlake.pipeline.runner import run_source

    summary = run_source(args.source, args.start, args.end, config=load_config(args.config))
    print(json.dumps(summary.as_dict(), indent=2, default=str) if args.json else summary.describe())
    return 0


def _cmd_gaps(args: argparse.Namespace) -> int:
    from plantlake.pipeline.gaps import fill_gaps, find_gaps

    cfg = load_config(args.config)
    if args.fill:
        for s in fill_gaps(cfg, args.source, args.start, args.end):
            print(s.describe())
    else:
        gaps = find_gaps(cfg, args.source, args.start, args.end)
        for iv in gaps:
            print(f"{iv.start.isoformat()} .. {iv.end.isoformat()}")
        print(f"{len(gaps)} interval(s) without curated rows from {args.source}")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    if args.action == "docs":
        from plantlake.app.config_docs import write_reference

        print(f"wrote {write_reference(Path(args.out))}")
        return 0
    cfg = load_config(args.config)
    problems = _connection_problems(cfg)
    for p in problems:
        print(f"plantlake: {p}", file=sys.stderr)
    if problems:
        return 2
    print(f"ok: {len(cfg.assets())} assets, {len(cfg.sources)} source(s): "
          + ", ".join(f"{s.name} ({s.kind}, {len(s.tags)} tags)" for s in cfg.sources))
    if not args.probe:
        return 0
    from plantlake.app.probe import probe_sources

    return probe_sources(cfg, print, only=args.source, seconds=args.seconds)


def _connection_problems(cfg: Any) -> list[str]:
    """Each source's connection that is set in the environment and cannot be read (never its text)."""
    from plantlake.core.connections import ConnectionInvalid, env_var, get_connection

    out = []
    for s in cfg.sources:
        if s.connection_id and os.environ.get(env_var(s.connection_id)):
            try:
                get_connection(s.connection_id)
            except ConnectionInvalid as exc:
                out.append(f"source {s.name}: {exc}")
    return out


def _duration(text: str) -> float:
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration such as 30s, 2m or 1h, got {text!r}")
    return float(m.group(1)) * {"ms": 0.001, None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]


def _cmd_discover(args: argparse.Namespace) -> int:
    from plantlake.app.discover import base_document, connection_for, merge, write
    from plantlake.core.kinds import source_kind

    base = Path(args.config) if args.config else None
    if base is not None and not base.exists():
        raise ConfigError(f"{base}: site config not found (the base for the draft: drop --config to start a new one)")
    plant = load_config(base) if base is not None else None
    out = Path(args.out or base or "plant.yaml")
    if base is None and out.exists():
        raise ConfigError(f"{out} exists: pass it as --config to add the discovered source to it, or --out another file")
    name = args.name or {"folder": "drop_folder"}.get(args.kind, args.kind)
    options = {"seconds": args.seconds, "max_nodes": args.max_nodes, "max_depth": args.max_depth, "topics": args.topic,
               "schema": args.schema, "base_dir": out.resolve().parent}
    shown = args.target
    try:
        if args.kind == "folder":
            from plantlake.app.discover import discover_folder

            drafts = discover_folder(Path(args.target), name=name, plant=plant, **options)
        else:
            connection, printable = connection_for(args.target, name, args.kind)
            shown = printable if "://" in args.target else args.target  # a URL without its password, or the id
            drafts = source_kind(args.kind).discoverer()(shown, connection, name=name, plant=plant, **options)
    except (ValueError, OSError) as exc:  # found nothing to draft, or cannot read it: one line, nothing written
        print(f"plantlake: discover {args.kind}: {str(exc)[:1000]}", file=sys.stderr)
        return 1
    doc = base_document(base)
    added = merge(doc, drafts)
    cfg = write(doc, out)
    figures = drafts[0].figures if drafts else {}
    print(f"discovered {shown}: "
          + ", ".join(f"{k} {v}" for k, v in figures.items() if v not in (None, {}, [])))
    for d in drafts:
        print(f"  source {d.source['name']} ({d.source['kind']}"
              + (f", {d.source['mode']}" if "mode" in d.source else "") + ")")
    if added:
        print(f"{len(added)} asset(s) added to the hierarchy (marked 'discovered'): {', '.join(added[:10])}"
              + (" …" if len(added) > 10 else ""))
    print(f"wrote {out}: {len(cfg.sources)} source(s); next: read its comments, then "
          f"plantlake --config {out} config check --probe")
    return 0


def _cmd_quality(args: argparse.Namespace) -> int:
    from plantlake.core.lake import Interval

    cfg = load_config(args.config)
    lake = cfg.open_lake().ensure()
    if args.action == "check":
        from quality.cross_source import run_checks

        if not (args.start and args.end):
            raise ConfigError("plantlake quality check needs --start and --end")
        run_id = f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S}"
        result = run_checks(lake, cfg, Interval(args.start, args.end), run_id)
        print(f"{result.rows.num_rows} cross-source check rows (cross_source_checks version {result.version}); failed: {result.failures() or 'none'}")
    if args.action == "freshness":
        from plantlake.pipeline.health import check_freshness

        fresh = check_freshness(lake, cfg, f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S}")
        for h in fresh.sources:
            last = h.last["interval_end"] if h.last else "never"
            print(f"{h.source:<24} {h.state:<9} last interval ended {last}" + (f"  — {h.problem}" if h.problem else ""))
        return 1 if fresh.failing else 0
    from quality.docs import build_data_docs

    print(f"Data Docs: {build_data_docs(lake, cfg)}")
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    import signal
    import threading

    from plantlake.app.metrics import serve

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve(args.statsd_host, args.statsd_port, args.host, args.port, args.prefix, stop)
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day such as 2026-03-01, got {text!r}") from None


def _as_of(text: str) -> int | datetime:
    """A product table version (an integer) or an ISO 8601 time."""
    return int(text) if text.isdigit() else _when(text)


def _cmd_products(args: argparse.Namespace) -> int:
    from plantlake.pipeline.products import PRODUCTS, manifest

    cfg = load_config(args.config)
    lake = cfg.open_lake().ensure()
    products = [args.product] if args.product else list(PRODUCTS)
    if args.action == "manifests":
        for name in products:
            for m in manifest.manifests(lake, name, args.day):
                print(f"{name} {m.day} version {m.version}: built {m.built_at} by {m.run_id}, {m.rows} rows, "
                      f"sha256 {m.content_hash[:16]}, inputs {m.inputs}")
        return 0
    if args.as_of is None:
        if args.day is None:
            raise ConfigError("products build needs --day (the UTC day to build) or --as-of (a past set to rebuild)")
        from plantlake.pipeline.catalog import build_catalog
        from plantlake.pipeline.products import build_day

        run_id = f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S}"
        for run in build_day(lake, cfg, args.day, run_id):
            print(f"{run.product} {run.day}: {run.rows} rows, {run.quarantined} quarantined -> version {run.version}")
        print(f"catalog: {build_catalog(lake)}")
        return 0
    if isinstance(args.as_of, int) and not args.product:
        raise ConfigError("products build --as-of <version> needs --product: a version is one product table's")
    out = Path(args.out or ".")
    out.mkdir(parents=True, exist_ok=True)
    for name in products:
        data, now, past = manifest.rebuild(lake, cfg, name, args.as_of, args.day)
        path = out / f"{name}__{now.day}__{now.content_hash[:12]}.parquet"
        path.write_bytes(manifest.parquet_bytes(data))
        what = (f"the build of version {past.version} ({past.built_at}, inputs {past.inputs})" if past else
                f"no build of that day by then; from the inputs as of {args.as_of.isoformat()}: {now.inputs}")
        same = "" if past is None else (" - identical" if now.content_hash == past.content_hash
                                        else f" - DIFFERS from the build's {past.content_hash[:16]}")
        print(f"{name} {now.day}: {what}; {now.rows} rows, sha256 {now.content_hash[:16]}{same} -> {path}")
    return 0


def _cmd_trace(args: argparse.Namespace) -> int:
    from plantlake.pipeline.trace import trace

    cfg = load_config(args.config)
    found = trace(cfg.open_lake(), args.table, args.key, window_s=cfg.products.image_sensor_window_s)
    print(json.dumps(found, indent=2, default=str))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from plantlake.pipeline.train import train_baseline

    cfg = load_config(args.config)
    card = train_baseline(cfg.open_lake().ensure(), cfg.products.image_sensor_window_s)
    print(f"baseline on image_training_set version {card.table_version} (set {card.set_hash[:16]}): "
          f"{card.train_rows} images train, {card.test_rows} held out ({card.test_from} .. {card.test_to})")
    print(f"  base rate {card.base_rate:.3f}  precision {card.precision:.3f}  recall {card.recall:.3f}  "
          f"ROC AUC {card.roc_auc:.3f}  average precision {card.average_precision:.3f}")
    print(f"  sensor and alarm context alone: ROC AUC {card.context_roc_auc:.3f}  "
          f"average precision {card.context_average_precision:.3f}")
    print("  top features: " + ", ".join(f"{i['feature']} {i['importance']:.3f}" for i in card.importances[:5]))
    print(f"  card: {card.key}")
    return 0


def _cmd_compact(args: argparse.Namespace) -> int:
    from plantlake.pipeline.catalog import build_catalog
    from plantlake.pipeline.compaction import compact_all

    cfg = load_config(args.config)
    lake = cfg.open_lake().ensure()
    done = compact_all(lake, args.day, cfg.lake.vacuum_retention_hours)
    for c in done:
        print(f"{c.table} {c.day}: {c.files_before} files -> {c.files_after}, {c.rows} rows, "
              f"{c.vacuumed} old files vacuumed" + (f", {c.duplicates} duplicate keys" if c.duplicates else ""))
    if not done:
        print("nothing to compact")
    build_catalog(lake)
    return 0


def _cmd_lake(args: argparse.Namespace) -> int:
    from plantlake.pipeline.catalog import build_catalog
    from plantlake.pipeline.migrate import BACKUP, migrate

    lake = load_config(args.config).open_lake().ensure()
    done = migrate(lake)
    for m in done:
        print(f"{m.folder}: {m.files} Parquet files, {m.rows_before} rows -> Delta table, {m.rows_after} rows, "
              f"digest {'matches' if m.digest_matches else 'DIFFERS'}")
    print(f"{len(done)} table(s) migrated" + (f"; the old files are under {lake.root / BACKUP} (delete them when "
                                              "satisfied)" if done else ": the lake is already on Delta tables"))
    build_catalog(lake)
    return 0


def _cmd_sql(args: argparse.Namespace) -> int:
    from plantlake.pipeline.catalog import build_catalog, query

    lake = load_config(args.config).open_lake().ensure()
    build_catalog(lake)
    result = query(lake, args.query)
    from rich.console import Console
    from rich.table import Table as RichTable

    out = RichTable(*result.column_names)
    for row in result.slice(0, args.limit).to_pylist():
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    Console().print(out)
    if result.num_rows > args.limit:
        print(f"({result.num_rows} rows, first {args.limit} shown)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from plantlake.pipeline.report import build_report

    print(f"report: {build_report(load_config(args.config).open_lake().ensure())}")
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    """`deploy users`: the UI's users for the FAB auth manager from .env (plantlake/app/deploy.py);
    the compose init job runs it."""
    from plantlake.app.deploy import ui_users, write_users

    for line in write_users(ui_users(os.environ)):
        print(line)  # never a password
    return 0


def _cmd_schemas(args: argparse.Namespace) -> int:
    from schemas import evolution
    from schemas.docs import write_data_dictionary, write_units_reference

    if args.action == "docs":
        print(f"wrote {write_data_dictionary(Path(args.out))}")
        print(f"wrote {write_units_reference(Path(args.out).with_name('units.md'))}")
    else:
        print(f"wrote {evolution.write_lock()}")
    return 0


def _demo_airflow_home(args: argparse.Namespace) -> None:
    """The demo's own Airflow home: set before anything imports Airflow."""
    from plantlake.app.demo import airflow_env
    from plantlake.core.config import default_config_path

    cfg = load_config(Path(args.config or default_config_path()).resolve())
    airflow_env(cfg.path("demo-plant"), cfg.open_lake().lineage_file)


def _cmd_demo(args: argparse.Namespace) -> int:
    from plantlake.app.demo import not_run, run_demo
    from plantlake.core.config import default_config_path

    config_path = Path(args.config or default_config_path()).resolve()
    cfg = load_config(config_path)
    if not args.verbose:  # the demo prints a line a run; the narration of plantlake, Airflow, GX and the
        for handler in logging.getLogger().handlers:  # virtual plant below warnings is for --verbose
            handler.setLevel(logging.WARNING)
    summaries = run_demo(cfg, config_path=config_path, progress=lambda msg: print(f"  {msg}", flush=True))
    print()
    by_source: dict[str, list] = {}
    for s in summaries:
        by_source.setdefault(s.source, []).append(s)
    for name, runs in by_source.items():
        print(f"{name}: {len(runs)} hourly intervals, {sum(r.published for r in runs)} rows published, "
              f"{sum(r.quarantined for r in runs)} quarantined")
        reasons: dict[str, int] = {}
        for r in runs:
            for t in r.tables.values():
                for why, n in t.reasons.items():
                    reasons[why] = reasons.get(why, 0) + n
        for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print(f"    {n} x {why}")
    skipped = not_run(cfg)
    for name, why in skipped.items():
        print(f"{name}: NOT RUN: {why.removeprefix('not run: ')}")
    lake = cfg.open_lake()
    uri, local = lake.uri, lake.root
    print(f"\nplantlake demo: the lake is {uri} (Delta tables; read them through the catalog or their logs)")
    print(f"  curated tables : {uri}/curated")
    print(f"  quarantine     : {uri}/quarantine (each row with its reason)")
    print(f"  quality        : {uri}/_quality (validation results, quality_results, cross_source_checks)")
    print(f"  Data Docs      : {local / '_quality' / 'docs' / 'index.html'}")
    print(f"  products       : {uri}/products (order_context, image_training_set)")
    print(f"  catalog        : {local / 'catalog.duckdb'}  (try: plantlake sql \"{DEMO_QUERY}\")")
    print(f"  report         : {local / '_report' / 'index.html'}")
    print(f"  try: duckdb -readonly {local / 'catalog.duckdb'} -c \"select asset_id, tag, unit, count(*), avg(value) "  # noqa: S608 - printed for the analyst, never executed
          "from sensor_readings group by all\"")
    if skipped:
        print(f"\nplantlake demo: {len(skipped)} source(s) NOT RUN on this machine: {', '.join(skipped)} (see above)")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.run import serve
    from simulators.story import Plant

    # the story starts a day before the history it serves, at midnight: same day, same plant
    default = datetime.now(UTC) - timedelta(hours=args.prefill_hours + 24)
    start = args.story_start or default.replace(hour=0, minute=0, second=0, microsecond=0)
    plant = Plant(seed=args.seed, start=start, lines=args.lines)
    serve(args.component, plant, host=args.host, port=args.port, speed=args.speed, broker=args.broker,
          folder=Path(args.folder), erp_url=os.environ.get("PLANTSIM_ERP_URL", args.erp_url),
          prefill_hours=args.prefill_hours, secure_dir=Path(args.secure_dir) if args.secure_dir else None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plantlake", description=__doc__)
    p.add_argument("--config", help="site config (default: $PLANTLAKE_CONFIG or ./plant.yaml)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run one source for one data interval [start, end)")
    r.add_argument("source")
    r.add_argument("--start", type=_when, required=True)
    r.add_argument("--end", type=_when, required=True)
    r.add_argument("--json", action="store_true", help="print the run summary as JSON")
    r.set_defaults(func=_cmd_run)

    g = sub.add_parser("gaps", help="list (or --fill) the source's schedule intervals with no curated rows")
    g.add_argument("source")
    g.add_argument("--start", type=_when, required=True)
    g.add_argument("--end", type=_when, required=True)
    g.add_argument("--fill", action="store_true", help="replay exactly those intervals")
    g.set_defaults(func=_cmd_gaps)

    c = sub.add_parser("config", help="validate the site config, or regenerate its reference")
    c.add_argument("action", choices=["check", "docs"])
    c.add_argument("--out", default="docs/configuration.md")
    c.add_argument("--probe", action="store_true", help="check: connect to every enabled source and say what each "
                   "rule and mapping matches (exit 1 when anything matches nothing)")
    c.add_argument("--source", action="append", help="check --probe: only this source (repeatable)")
    c.add_argument("--seconds", type=_duration, default=5.0, help="check --probe: how long to listen to an MQTT broker")
    c.set_defaults(func=_cmd_config)

    dc = sub.add_parser("discover", help="look at a live source and write a draft site config (with --config: "
                        "add to that one)")
    dc.add_argument("kind", choices=["opcua", "mqtt", "erp", "folder"])
    dc.add_argument("target", help="opcua: opc.tcp://host:port/path; mqtt: mqtt://host:port; erp: a database URL; "
                    "each also an Airflow connection id; folder: a path")
    dc.add_argument("--name", help="the source's name (default: the kind)")
    dc.add_argument("--out", "-o", help="the config to write (default: the --config file, else ./plant.yaml)")
    dc.add_argument("--for", dest="seconds", type=_duration, default=30.0, help="mqtt: how long to listen (30s)")
    dc.add_argument("--topic", action="append", help="mqtt: topic filter to sample (default '#'); repeatable")
    dc.add_argument("--max-nodes", type=int, default=200_000, help="opcua: stop browsing after this many nodes")
    dc.add_argument("--max-depth", type=int, default=12, help="opcua: stop browsing at this depth below Objects")
    dc.add_argument("--schema", help="erp: the database schema to list (default: the connection's default)")
    dc.set_defaults(func=_cmd_discover)

    q = sub.add_parser("quality", help="cross-source checks of an interval (check), each source's freshness "
                       "(freshness: exit 1 when one is stale or failed), and the Data Docs (docs)")
    q.add_argument("action", choices=["check", "docs", "freshness"])
    q.add_argument("--start", type=_when)
    q.add_argument("--end", type=_when)
    q.set_defaults(func=_cmd_quality)

    me = sub.add_parser("metrics", help="serve: the exporter Prometheus scrapes (StatsD from Airflow and plantlake "
                        "in, /metrics out)")
    me.add_argument("action", choices=["serve"])
    me.add_argument("--statsd-host", default="0.0.0.0", help="address to receive StatsD on (UDP)")  # noqa: S104
    me.add_argument("--statsd-port", type=int, default=9125)
    me.add_argument("--host", default="0.0.0.0", help="address to serve /metrics on")  # noqa: S104
    me.add_argument("--port", type=int, default=9102)
    me.add_argument("--prefix", default="airflow", help="Airflow's [metrics] statsd_prefix")
    me.set_defaults(func=_cmd_metrics)

    pr = sub.add_parser("products", help="build the fused products of one UTC day (and the catalog), rebuild a "
                        "past set exactly (--as-of), or list the builds' manifests")
    pr.add_argument("action", nargs="?", choices=["build", "manifests"], default="build")
    pr.add_argument("--day", type=_day, help="the UTC day")
    pr.add_argument("--as-of", type=_as_of, help="rebuild the set as it was: a product table version, or an "
                    "ISO time (the day's build in effect then); writes Parquet into --out, publishes nothing")
    pr.add_argument("--product", choices=["order_context", "image_training_set"])
    pr.add_argument("--out", help="folder for --as-of's files (default: the current folder)")
    pr.set_defaults(func=_cmd_products)

    tc = sub.add_parser("trace", help="where a row came from: its source references, run, raw files and lineage "
                        "events; for a product row its build manifest and the rows it was made of")
    tc.add_argument("table")
    tc.add_argument("key", nargs="+", help="the row's primary key values, in key order (times in ISO 8601)")
    tc.set_defaults(func=_cmd_trace)

    tr = sub.add_parser("train", help="train baseline: a classifier on image_training_set, time-split, with its "
                        "model card (it shows the set can teach a model)")
    tr.add_argument("what", choices=["baseline"])
    tr.set_defaults(func=_cmd_train)

    cp = sub.add_parser("compact", help="compact one day's partition of every table and vacuum old files")
    cp.add_argument("--day", type=_day, required=True)
    cp.set_defaults(func=_cmd_compact)

    lk = sub.add_parser("lake", help="lake maintenance: migrate a plain-Parquet lake to Delta tables, in place")
    lk.add_argument("action", choices=["migrate"])
    lk.set_defaults(func=_cmd_lake)

    sq = sub.add_parser("sql", help="run a query against the analyst catalog (DuckDB)")
    sq.add_argument("query")
    sq.add_argument("--limit", type=int, default=50)
    sq.set_defaults(func=_cmd_sql)

    rp = sub.add_parser("report", help="write the static HTML report of the lake (<lake>/_report/index.html)")
    rp.set_defaults(func=_cmd_report)

    dp = sub.add_parser("deploy", help="deployment helpers (the compose init job): users")
    dp.add_argument("action", choices=["users"])
    dp.set_defaults(func=_cmd_deploy)

    s = sub.add_parser("schemas", help="regenerate the data dictionary or the schema lock")
    s.add_argument("action", choices=["docs", "lock"])
    s.add_argument("--out", default="docs/data-dictionary.md")
    s.set_defaults(func=_cmd_schemas)

    sim = sub.add_parser("simulate", help="run the virtual plant's simulators live (what the compose services run)")
    sim.add_argument("component", choices=["opcua", "mqtt", "camera", "erp", "all"])
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--lines", type=int, default=2)
    sim.add_argument("--story-start", type=_when, help="anchor of the order schedule (default: midnight a day before the prefilled history)")
    sim.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall-clock second")
    sim.add_argument("--host", default="0.0.0.0", help="OPC UA listen address")
    sim.add_argument("--port", type=int, default=4840, help="OPC UA port")
    sim.add_argument("--prefill-hours", type=float, default=24.0, help="OPC UA history to serve from the start")
    sim.add_argument("--secure-dir", help="folder for the OPC UA server certificate (enables Basic256Sha256)")
    sim.add_argument("--broker", default="127.0.0.1:1883", help="MQTT broker host:port")
    sim.add_argument("--folder", default="drop/images", help="camera drop folder")
    sim.add_argument("--erp-url", default="sqlite:///erp.sqlite", help="ERP database URL (or $PLANTSIM_ERP_URL)")
    sim.set_defaults(func=_cmd_simulate)

    d = sub.add_parser("demo", help="run the pipeline end to end on the embedded defaults")
    d.set_defaults(func=_cmd_demo, before_airflow=_demo_airflow_home)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "before_airflow"):
            args.before_airflow(args)
    except ConfigError as exc:
        print(f"plantlake: configuration error: {exc}", file=sys.stderr)
        return 2
    import airflow  # noqa: F401 - importing Airflow sets up its logging; plantlake's, set after it, wins

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    if not args.verbose:  # protocol libraries narrate every session at INFO
        for noisy in ("asyncua", "paho", "great_expectations"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"plantlake: configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not _expected(exc):
            raise
        print(f"plantlake: {exc.__class__.__name__}: {str(exc)[:2000]}", file=sys.stderr)  # one line, no traceback
        return 1


def _expected(exc: BaseException) -> bool:
    """Failures that say what a person must do (or that a retry will): one line, not a traceback."""
    from plantlake.core.errors import PlantlakeError

    return isinstance(exc, PlantlakeError)


if __name__ == "__main__":
    sys.exit(main())
