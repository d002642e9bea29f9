"""Data Docs for the lake, rendered by plantlake into `_quality/docs/`: self-contained pages that
work on a plant network cut off from the internet.

GX's own site builder writes pages that load Bootstrap, jQuery, bootstrap-table, Popper, Vega,
Font Awesome and its logo from public CDNs; offline its index is unstyled and its lists of suites
and validations stay empty (scripts fill them). These pages carry their style inline, need no
script and name no other host: the index lists every suite (each table's, the per-source suites
that carry site rules, the cross-source checks) and every kept validation result (failed ones
first within a time); a suite page lists its expectations and why each exists; a validation page
shows plantlake's file checks, every expectation with what GX observed — for a failed one the
unexpected values — and the rows the audit set aside for that table, source and interval, as
they were quarantined. Pages already written are not rendered again: a build writes the
results kept since the last one and the index.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from plantlake.core.config import PlantConfig
from plantlake.core.lake import Lake, safe_name
from quality.results import kept_results

SITE = "plantlake"
#: unexpected values and quarantined rows shown per expectation and per page
SHOWN = 50

STYLE = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#222;max-width:1400px}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.6em} a{color:#0b5cad}
table{border-collapse:collapse;margin:.5em 0;width:100%} td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;
text-align:left;vertical-align:top} th{background:#f3f3f3} .failed{color:#b00020;font-weight:600}
.passed{color:#1b7a1b} code,pre{font-family:ui-monospace,monospace;font-size:12px} pre{white-space:pre-wrap;margin:0}
.muted{color:#666} nav{margin-bottom:1em}"""


def docs_dir(lake: Lake) -> Path:
    return lake.quality_dir / "docs"


def _suites(cfg: PlantConfig) -> list[Any]:
    from quality import cross_source
    from quality.suites import build_suite, site_rules
    from schemas import get_table
    from schemas.tables import TABLES

    suites = {}
    for table in TABLES.values():
        s = build_suite(table)
        suites[s.name] = s
        for src in cfg.sources:
            if site_rules(table, src):
                s = build_suite(table, src)
                suites[s.name] = s
    s = build_suite(get_table(cross_source.TABLE), None, cross_source.specs(cfg))
    suites[s.name] = s
    return list(suites.values())


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str, depth: int) -> str:
    home = "../" * depth + "index.html"
    nav = f'<nav><a href="{home}">Data Docs index</a></nav>' if depth else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{STYLE}</style>"
            f"</head><body>{nav}<h1>{_e(title)}</h1>{body}</body></html>")


def _table(headers: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _suite_path(name: str) -> str:
    return f"expectations/{safe_name(name)}.html"


def _validation_path(table: str, stem: str, source: str) -> str:
    batch = f"{source}__{stem}" if source not in stem else stem
    return f"validations/{safe_name(table)}/{safe_name(batch)}.html"


def _status(ok: Any) -> str:
    return '<span class="passed">passed</span>' if ok else '<span class="failed">FAILED</span>'


def _kwargs(kwargs: dict[str, Any]) -> str:
    shown = {k: v for k, v in kwargs.items() if k != "batch_id"}
    return "<br>".join(f"<code>{_e(k)}</code>: {_e(json.dumps(v, default=str))}" for k, v in shown.items())


def _suite_page(suite: Any) -> str:
    d = suite.to_json_dict()
    rows = [[f"<code>{_e(e['type'])}</code>", _kwargs(e.get("kwargs", {})), _e(e.get("meta", {}).get("level")),
             _e(e.get("meta", {}).get("why"))] for e in d["expectations"]]
    return _page(f"Suite {d['name']}", f"<p>{len(rows)} expectations.</p>"
                 + _table(["expectation", "arguments", "level", "why"], rows), 1)


def _observed(result: dict[str, Any]) -> str:
    r = result.get("result") or {}
    parts = []
    for key in ("element_count", "unexpected_count", "unexpected_percent", "missing_count", "observed_value"):
        if r.get(key) is not None:
            value = f"{r[key]:.3g}" if isinstance(r[key], float) else json.dumps(r[key], default=str)
            parts.append(f"{_e(key)}: {_e(value)}")
    values = r.get("partial_unexpected_list") or []
    if values:
        items = "".join(f"<li><code>{_e(json.dumps(v, default=str))}</code></li>" for v in values[:SHOWN])
        parts.append(f'<div class="unexpected">unexpected values ({len(values)} shown of '
                     f'{_e(r.get("unexpected_count"))}):<ul>{items}</ul></div>')
    if (result.get("exception_info") or {}).get("raised_exception"):
        parts.append(f'<span class="failed">{_e(result["exception_info"].get("exception_message"))}</span>')
    return "<br>".join(parts)


def _set_aside(quarantine: Any, kept: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows the audit of this result set aside: its table's quarantine, same source and interval."""
    start = datetime.fromisoformat(str(kept["interval"][0]))
    return [r for r in quarantine if r["stage"] == "audit" and r["source"] == kept["source"]
            and r["interval_start"] == start][:SHOWN]


def _validation_page(kept: dict[str, Any], quarantined: list[dict[str, Any]]) -> str:
    v = kept["validation"]
    stats = v.get("statistics") or {}
    head = _table(["table", "suite", "source", "interval", "run", "validated at", "result", "rows", "set aside"], [[
        _e(kept["table"]), f'<a href="../../{_suite_path(kept["suite"])}">{_e(kept["suite"])}</a>', _e(kept["source"]),
        _e(" .. ".join(map(str, kept["interval"]))), _e(kept["run_id"]), _e(kept["validated_at"]),
        _status(kept.get("passed", v.get("success"))), _e(kept.get("rows")), _e(kept.get("set_aside"))]])
    checks = kept.get("checks") or []
    file_checks = _table(["check", "level", "result", "unexpected"], [
        [_e(c.get("name")), _e(c.get("level")), _status(c.get("success")), _e(c.get("unexpected"))] for c in checks])
    results = sorted(v.get("results") or [], key=lambda r: bool(r.get("success")))
    rows = [[_status(r.get("success")), f"<code>{_e(r['expectation_config']['type'])}</code>",
             _kwargs(r["expectation_config"].get("kwargs", {})), _observed(r),
             _e((r["expectation_config"].get("meta") or {}).get("why"))] for r in results]
    aside = _table(["column", "reason", "row as it came"], [
        [_e(r["column"]), _e(r["reason"]), f"<pre>{_e(r['record'])}</pre>"] for r in quarantined]) if quarantined \
        else "<p class='muted'>No row of this batch was set aside.</p>"
    return _page(f"Validation of {kept['table']} from {kept['source']}", head
                 + f"<p>{stats.get('successful_expectations', 0)} of {stats.get('evaluated_expectations', 0)} "
                   "expectations met.</p>"
                 + (f"<h2>plantlake's checks</h2>{file_checks}" if checks else "")
                 + "<h2>Expectations</h2>" + _table(["result", "expectation", "arguments", "observed", "why"], rows)
                 + "<h2>Rows set aside (quarantine)</h2>" + aside, 2)


def build_data_docs(lake: Lake, cfg: PlantConfig) -> Path:
    """Build (or bring up to date) the Data Docs; return their index.html."""
    out = docs_dir(lake)
    index = out / "index.html"
    built_at = index.stat().st_mtime if index.exists() else 0.0
    suites = _suites(cfg)
    for suite in suites:  # a site config's change changes them: always written (a few dozen small pages)
        _write(out / _suite_path(suite.name), _suite_page(suite))
    listed, quarantines = [], {}
    for stem, kept in kept_results(lake):
        if not kept.get("validation"):
            continue  # the staged files failed their file-level checks before GX ran
        rel = _validation_path(kept["table"], stem, kept["source"])
        page = out / rel
        fresh = datetime.fromisoformat(str(kept["validated_at"])).timestamp() >= built_at
        if fresh or not page.exists():
            if kept["table"] not in quarantines:
                quarantines[kept["table"]] = lake.read_quarantine(kept["table"]).to_pylist()
            _write(page, _validation_page(kept, _set_aside(quarantines[kept["table"]], kept)))
        listed.append((kept, rel))
    listed.sort(key=lambda x: (str(x[0]["validated_at"]), bool(x[0].get("passed", True))), reverse=True)
    failed = sum(1 for k, _ in listed if not k.get("passed", k["validation"].get("success")))
    validations = _table(["validated at", "table", "source", "interval", "result", "rows", "set aside"], [[
        f'<a href="{rel}">{_e(k["validated_at"])}</a>', _e(k["table"]), _e(k["source"]),
        _e(" .. ".join(map(str, k["interval"]))), _status(k.get("passed", k["validation"].get("success"))),
        _e(k.get("rows")), _e(k.get("set_aside"))] for k, rel in listed], "validations")
    suite_rows = _table(["suite", "expectations"], [
        [f'<a href="{_suite_path(s.name)}">{_e(s.name)}</a>', _e(len(s.expectations))] for s in suites], "suites")
    _write(index, _page("plantlake Data Docs", f"<p>Lake <code>{_e(lake.uri)}</code>: {len(listed)} validations, "
                        f"{failed} failed; {len(suites)} suites. Self-contained pages, no network needed.</p>"
                        f"<h2>Validations</h2>{validations}<h2>Suites</h2>{suite_rows}", 0))
    return index
