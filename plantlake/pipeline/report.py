"""`plantlake report`: a static HTML report of the lake, for people who do not write SQL.

Written to `<lake>/_report/index.html` with its plots (PNG, matplotlib) and image
thumbnails beside it, so the folder can be copied or served as is:

- tables and freshness: files, rows and the newest data and write per table;
- rows per day per table;
- quality: pass rate of the audit checks and rows set aside per table, cross-source failures;
- sensor trends per line (per-minute means of the busiest tags) with order windows shaded;
- a grid of image thumbnails with their ERP labels, failed parts first.

Every number comes from the lake's Parquet through DuckDB.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plantlake.core.lake import Lake
from plantlake.core.views import connect
from plantlake.pipeline.products import ALARMS

log = logging.getLogger(__name__)

REPORT_DIR = "_report"
THUMBS = 24
TAGS_PER_LINE = 3
ALARM_ROWS = 20  # the alarm episodes listed per line (all are drawn on its timeline)


def _table(headers: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if v is None else _fmt(v))}</td>" for v in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _freshness(lake: Lake, con: Any) -> str:
    from schemas.tables import TABLES

    rows = []
    for name, table in TABLES.items():
        files = lake.files(table)
        ts = table.partition_column or next((c.name for c in table.columns if c.name not in table.lineage
                                             and str(c.type).startswith("timestamp")), None)
        newest = f', max("{ts}")' if ts else ", null"
        n, data_at, written = con.execute(f'select count(*){newest}, max(ingested_at) from "{name}"').fetchone()  # noqa: S608 - declared names
        rows.append((name, table.layer, lake.version(table), len(files), n, data_at, written))
    return _table(["table", "layer", "version", "files", "rows", "newest data", "last written"], rows)


def _rows_per_day(con: Any, out: Path) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    from schemas.tables import TABLES

    counts: dict[str, dict[str, int]] = {}
    for name, table in TABLES.items():
        if table.layer == "curated" and table.partition_column:
            for day, n in con.execute(f'select strftime("{table.partition_column}", \'%Y-%m-%d\'), count(*) '  # noqa: S608 - declared names
                                      f'from "{name}" group by 1').fetchall():
                counts.setdefault(name, {})[day] = n
    days = sorted({d for c in counts.values() for d in c})
    fig, ax = plt.subplots(figsize=(10, 3.5))
    width = 0.8 / max(len(counts), 1)
    for k, (name, per_day) in enumerate(sorted(counts.items())):
        ax.bar(np.arange(len(days)) + k * width, [per_day.get(d, 0) for d in days], width, label=name)
    ax.set_xticks(np.arange(len(days)) + 0.4 - width / 2, days, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("rows")
    ax.set_title("Rows per day (curated tables)")
    if counts:
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "rows_per_day.png", dpi=90)
    plt.close(fig)
    return '<img src="rows_per_day.png" alt="rows per day per curated table">' + _table(
        ["day", *sorted(counts)], [(d, *(counts[n].get(d, 0) for n in sorted(counts))) for d in days])


def _quality(con: Any) -> str:
    audits = con.execute("""
        select table_name, count(distinct run_id || source || interval_start) as audits,
               avg(case when success then 1.0 else 0.0 end) as check_pass_rate,
               sum(case when level = 'row' then unexpected_count else 0 end) as rows_set_aside,
               count(*) filter (where level = 'batch' and not success) as blocking_failures
        from quality_results group by 1 order by 1""").fetchall()
    cross = con.execute("""
        select "check", count(*) as checked, count(*) filter (where not success) as failed, avg(value)
        from cross_source_checks group by 1 order by 1""").fetchall()
    fresh = con.execute("""
        select source, state, last_interval_end, round(lag_s / 60), round(freshness_s / 60), incident, checked_at
        from source_freshness qualify row_number() over (partition by source order by checked_at desc) = 1
        order by source""").fetchall()
    return ("<h3>Audits (GX suites)</h3>" + _table(
        ["table", "audits", "check pass rate", "rows set aside", "blocking failures"], audits)
        + "<h3>Across sources</h3>" + _table(["check", "subjects checked", "failed", "mean value"], cross)
        + "<h3>Sources' freshness (latest check)</h3>" + _table(
            ["source", "state", "last interval ended", "lag (min)", "freshness (min)", "incident", "checked at"], fresh))


def _trends(con: Any, out: Path) -> str:
    import matplotlib.pyplot as plt

    lines = [r[0] for r in con.execute(
        "select distinct line_id from production_orders where line_id is not null order by 1").fetchall()]
    parts = []
    for i, line in enumerate(lines):
        prefix = line + "/"
        # one tag per machine (its liveliest: most distinct values), camera stations left to the images
        tags = con.execute("""
            select asset_id, tag, unit from (
                select asset_id, tag, any_value(unit) as unit, count(distinct value) as distinct_values
                from sensor_readings
                where starts_with(asset_id, $p) and value is not null
                  and asset_id not in (select distinct asset_id from inspection_images)
                group by 1, 2)
            qualify row_number() over (partition by asset_id order by distinct_values desc, tag) = 1
            order by asset_id limit $k""", {"p": prefix, "k": TAGS_PER_LINE}).fetchall()
        alarms = con.execute(f"with {ALARMS} select condition_name, asset_id, severity, active_from, active_to, tag "  # noqa: S608
                             "from alarms where line_id = $line order by active_from", {"line": line}).fetchall()
        watched = {a[1]: a[5] for a in alarms if a[5]}  # a machine with an alarm: the tag the alarm watches
        for asset, tag in watched.items():
            unit = con.execute("select any_value(unit) from sensor_readings where asset_id = $a and tag = $t",
                               {"a": asset, "t": tag}).fetchone()[0]
            tags = sorted([t for t in tags if t[0] != asset] + [(asset, tag, unit)])
        if not tags:
            continue
        fig, axes = plt.subplots(len(tags) + 1, 1, figsize=(10, 2.2 * len(tags) + 1.2), sharex=True, squeeze=False,
                                 gridspec_kw={"height_ratios": [2.2] * len(tags) + [0.8]})
        lo, hi = con.execute("select min(ts), max(ts) from sensor_readings where starts_with(asset_id, $p)",
                             {"p": prefix}).fetchone()
        orders = con.execute("""
            select order_id, actual_start, coalesce(actual_end, $hi) from production_orders
            where line_id = $line and actual_start < $hi and coalesce(actual_end, $hi) > $lo order by 2""",
                             {"line": line, "lo": lo, "hi": hi}).fetchall()
        for ax, (asset, tag, unit) in zip(axes[:-1, 0], tags, strict=True):
            pts = con.execute("""
                select time_bucket(interval 1 minute, ts) as m, avg(value) from sensor_readings
                where asset_id = $a and tag = $t group by 1 order by 1""", {"a": asset, "t": tag}).fetchall()
            ax.plot([m for m, _ in pts], [v for _, v in pts], linewidth=0.9)
            for k, (_order, start, end) in enumerate(orders):
                ax.axvspan(max(start, lo), min(end, hi), color="tab:orange" if k % 2 else "tab:green", alpha=0.12)
            ax.set_ylabel(f"{tag}\n[{unit or '-'}]", fontsize=8)
            ax.set_title(asset.removeprefix(prefix), fontsize=9, loc="left")
        for order, start, _end in orders:
            axes[0, 0].annotate(order, xy=(max(start, lo), 1.0), xycoords=("data", "axes fraction"),
                                fontsize=7, va="bottom")
        timeline = axes[-1, 0]  # the alarm timeline: one row per condition, its active episodes
        conditions = sorted({(a[1].removeprefix(prefix), a[0]) for a in alarms})
        for k, (asset, condition) in enumerate(conditions):
            spans = [(max(a[3], lo), min(a[4] or hi, hi)) for a in alarms if (a[1].removeprefix(prefix), a[0]) == (asset, condition)]
            timeline.broken_barh([(s, e - s) for s, e in spans if e > s], (k - 0.4, 0.8), color="tab:red")
        timeline.set_yticks(range(len(conditions)), [f"{a} {c}" for a, c in conditions], fontsize=7)
        timeline.set_ylim(-0.6, max(len(conditions), 1) - 0.4)
        timeline.set_title(f"alarms: {len(alarms)} episodes" if alarms else "alarms: none", fontsize=9, loc="left")
        fig.suptitle(f"{line}: per-minute means, order windows shaded; alarm timeline below", fontsize=10)
        fig.autofmt_xdate()
        fig.tight_layout()
        name = f"trend_line{i + 1}.png"
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        parts.append(f'<figure><img src="{name}" alt="sensor trends on {html.escape(line)}">'
                     f"<figcaption>{html.escape(line)}: {len(orders)} orders, {len(alarms)} alarm episodes"
                     "</figcaption></figure>")
        if alarms:
            parts.append(_table(["alarm", "asset", "severity", "active from", "active to"],
                                [(c, a.removeprefix(prefix), sev, f, t) for c, a, sev, f, t, _ in alarms[:ALARM_ROWS]]))
    return "".join(parts) or "<p>No sensor readings on lines with orders yet.</p>"


def _model_card(lake: Lake) -> str:
    from plantlake.pipeline.train import latest_card

    card = latest_card(lake)
    if card is None:
        return "<p>No model trained yet (<code>plantlake train baseline</code>).</p>"
    lift = card.average_precision / card.base_rate if card.base_rate else float("nan")
    metrics = _table(["measure (held-out period)", "all features", "sensor and alarm context alone"], [
        ("base rate (share failed)", f"{card.base_rate:.3f}", f"{card.base_rate:.3f}"),
        ("ROC AUC", f"{card.roc_auc:.3f}", f"{card.context_roc_auc:.3f}"),
        ("average precision", f"{card.average_precision:.3f}", f"{card.context_average_precision:.3f}"),
        ("precision at 0.5", f"{card.precision:.3f}", ""), ("recall at 0.5", f"{card.recall:.3f}", "")])
    top = "".join(f"<h3>{what}</h3>" + _table(["feature", "permutation importance (ROC AUC)", "std"], [
        (i["feature"], f"{i['importance']:.4f}", f"{i['std']:.4f}") for i in found])
        for what, found in (("Top features, all", card.importances),
                            ("Top features, sensor and alarm context alone", card.context_importances)))
    days = ", ".join(f"{d}: {h[:12]}" for d, h in card.manifests.items())
    return (f"<p id='model-card' data-roc-auc='{card.roc_auc:.4f}' data-base-rate='{card.base_rate:.4f}'>"
            f"{html.escape(card.model)}. Trained {html.escape(card.trained_at)} on image_training_set version "
            f"{card.table_version} (set <code>{card.set_hash[:16]}</code>; builds per day {html.escape(days)}): "
            f"{card.train_rows} images before {html.escape(card.split_at)}, {card.test_rows} held out "
            f"({html.escape(card.test_from)} .. {html.escape(card.test_to)}), {card.unlabelled} without a verdict "
            f"left out. Average precision {lift:.1f}x the base rate.</p>" + metrics + top)


def _thumbnails(lake: Lake, con: Any, out: Path) -> str:
    from PIL import Image

    rows = con.execute(f"""
        select image_id, uri, part_serial, coalesce(label, 'unlabelled'), defect_code, captured_at
        from image_training_set order by (label = 'fail') desc, captured_at desc limit {THUMBS}""").fetchall()  # noqa: S608 - constant
    thumbs = out / "thumbs"
    thumbs.mkdir(exist_ok=True)
    cells = []
    import io

    for image_id, uri, serial, label, defect, captured in rows:
        try:
            data = lake.images.read(uri)  # a URI outside the image store is refused, never read
        except (ValueError, FileNotFoundError):
            continue
        name = f"{image_id[:16]}.jpg"
        with Image.open(io.BytesIO(data)) as im:
            im.thumbnail((160, 160))
            im.convert("RGB").save(thumbs / name, quality=80)
        cells.append(f'<figure class="thumb {html.escape(label)}"><img src="thumbs/{name}" '
                     f'alt="{html.escape(serial or image_id)}"><figcaption><b>{html.escape(label)}</b>'
                     f"{' ' + html.escape(defect) if defect else ''}<br>{html.escape(serial or '')}<br>"
                     f"{_fmt(captured)}</figcaption></figure>")
    return f'<div class="grid">{"".join(cells)}</div>' if cells else "<p>No images in the training set yet.</p>"


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222} table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right} th{background:#f3f3f3}
td:first-child{text-align:left} .grid{display:flex;flex-wrap:wrap;gap:8px} .thumb{margin:0;width:170px;font-size:11px}
.thumb.fail figcaption b{color:#c00} .thumb.pass figcaption b{color:#070} img{max-width:100%}"""

#: after load, the page records how many of its images rendered (a test reads it from the DOM)
SCRIPT = """window.addEventListener('load', () => { const imgs = [...document.images];
document.body.dataset.imagesOk = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
document.body.dataset.imagesBroken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length; });"""


def build_report(lake: Lake) -> Path:
    """Write the report; return its index.html."""
    import matplotlib

    matplotlib.use("Agg")
    out = lake.root / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    con = connect(lake)
    con.execute("create temp view lines as select distinct asset_id, "  # the ISA-95 line: enterprise/site/area/line
                "array_to_string(list_slice(string_split(asset_id, '/'), 1, 4), '/') as line_id "
                "from events where asset_id is not null")
    sections = [
        ("Tables and freshness", _freshness(lake, con)),
        ("Rows per day", _rows_per_day(con, out)),
        ("Quality", _quality(con)),
        ("Sensor trends and alarms per line", _trends(con, out)),
        ("Baseline model card", _model_card(lake)),
        ("Images and labels", _thumbnails(lake, con, out)),
    ]
    body = "".join(f'<section id="{t.lower().replace(" ", "-")}"><h2>{t}</h2>{s}</section>' for t, s in sections)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>plantlake report</title>"
            f"<style>{STYLE}</style></head><body><h1>plantlake report</h1>"
            f"<p>Lake <code>{html.escape(lake.uri)}</code>, written {_fmt(datetime.now(UTC))}.</p>"
            f"{body}<script>{SCRIPT}</script></body></html>")
    index = out / "index.html"
    tmp = out / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(index)
    log.info("report written to %s", index)
    return index
