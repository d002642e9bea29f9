"""`plantlake discover folder` for historian exports: the CSV dialect and the tags in them.

The encoding is the first of UTF-8 (with or without BOM), Windows-1252 and Latin-1 that reads
the sample; the delimiter is what `csv.Sniffer` finds; the columns are named by a vocabulary of
what historians and PLC exports call them (English and German); the decimal mark is a comma
when the value column's numbers use one; the time format is the first of the usual ones that
reads every sampled stamp (a day-month/month-day ambiguity is said). Each reference seen becomes
a tag on an asset — the hierarchy's where its parts name one, a new asset (marked) from its
prefix otherwise. A wide export (one column per tag) is not the long format this kind reads:
said, not drafted.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

from connectors.base import slug, tag_name
from connectors.discovery import Draft, Hierarchy, field_named, folder_setting, parses_as
from connectors.files import UnsafeFile, open_drop_file, scan

COLUMNS = {"ts": ("timestamp", "ts", "time", "datetime", "date_time", "zeitstempel", "zeitpunkt", "zeit", "datum_zeit"),
           "ref": ("tag", "tagname", "ref", "messstelle", "name", "point", "signal", "variable", "sensor", "kanal"),
           "value": ("value", "wert", "messwert", "val", "reading", "istwert"),
           "unit": ("unit", "einheit", "uom", "units", "eu"),
           "status": ("status", "quality", "qualität", "qualitaet", "q", "statuscode")}
FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",
           "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%Y/%m/%d %H:%M:%S")
ENCODINGS = ("utf-8", "cp1252", "latin-1")
SAMPLE_BYTES = 1 << 20
MAX_TAGS = 5000


def discover(target: str, connection: Any, *, name: str, plant: Any | None, base_dir: Any = ".",
             **_: Any) -> list[Draft]:
    folder = Path(target)
    files = [f for f in scan(folder, "*") if f.path.suffix.lower() in (".csv", ".txt")]
    if not files:
        return []
    samples = []
    for f in files[:10]:
        try:
            with open_drop_file(folder, f.path, max_bytes=None, what="export") as fh:
                samples.append(fh.read(SAMPLE_BYTES))
        except (UnsafeFile, OSError):
            continue
    if not samples:
        return []
    encoding = next(e for e in ENCODINGS if all(_decodes(s, e) for s in samples))
    if encoding == "utf-8" and samples[0].startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"  # Excel's "CSV UTF-8" writes a byte order mark
    texts = [s.decode(encoding, errors="replace") for s in samples]
    head = texts[0][:20_000]
    try:
        delimiter = csv.Sniffer().sniff(head, delimiters=";,\t|").delimiter
    except csv.Error:
        delimiter = ","
    rows = [r for t in texts for r in list(csv.reader(io.StringIO(t), delimiter=delimiter))[1:-1]]
    header = next(csv.reader(io.StringIO(texts[0]), delimiter=delimiter))
    cols = {k: field_named(header, v) for k, v in COLUMNS.items()}
    notes: dict[tuple, str] = {}
    if not (cols["ts"] and cols["ref"] and cols["value"]):
        raise ValueError(f"{target}: the exports' columns {header} are not the long format this kind reads "
                         "(a timestamp, a tag reference and a value column); a wide export needs a long one")
    idx = {k: header.index(v) for k, v in cols.items() if v}
    values = [r[idx["value"]] for r in rows if len(r) > idx["value"]]
    decimal = "," if sum(bool(re.fullmatch(r"-?\d+,\d+", v)) for v in values) > sum(
        bool(re.fullmatch(r"-?\d+\.\d+", v)) for v in values) else "."
    stamps = [r[idx["ts"]] for r in rows if len(r) > idx["ts"]][:2000]
    fmt, said = _time_format(stamps)
    source: dict[str, Any] = {"name": name, "kind": "csv", "description": f"Historian exports discovered in {target}",
                              "schedule": "0 * * * *", "path": folder_setting(folder, base_dir),
                              "pattern": _glob([f.path.name for f in files]), "delimiter": delimiter,
                              "decimal": decimal, "encoding": encoding}
    if fmt:
        source["timestamp_format"] = fmt
    source["columns"] = {k: v for k, v in cols.items() if v}
    notes[("timestamp_format",)] = said
    tags, new_assets = _tags(rows, idx, plant, folder, target)
    source["tags"] = tags
    notes[("tags",)] = (f"{len(tags)} reference(s) seen; assets from their names where the hierarchy knows them, "
                        "else new ones (marked): name them; set min/max where a value is physically bounded")
    notes[()] = (f"{len(files)} export file(s); {encoding}, delimiter {delimiter!r}, decimal {decimal!r}; "
                 f"naive times are read in the site's zone (set `timezone` if the exports use another)")
    return [Draft(source, notes, new_assets, {"files": len(files), "tags": len(tags)})]


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
        return True
    except UnicodeDecodeError as exc:
        return exc.start >= len(data) - 4  # a character cut at the sample's end


def _glob(names: list[str]) -> str:
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    prefix = re.match(r"[^\d]*", prefix).group(0)  # up to the first digit: a date in the name changes daily
    return f"{prefix}*{Path(names[0]).suffix}" if prefix else f"*{Path(names[0]).suffix}"


def _time_format(stamps: list[str]) -> tuple[str | None, str]:
    stamps = [s.strip() for s in stamps if s.strip()]
    fits = [f for f in FORMATS if sum(parses_as(s, f) for s in stamps) >= 0.95 * len(stamps)]
    if not fits:
        return None, (f"no usual time format reads stamps like {stamps[0]!r}: set timestamp_format (strptime)"
                      if stamps else "no time stamps sampled")
    if any(f.startswith("%m/%d") for f in fits) and any(f.startswith("%d/%m") for f in fits):
        return fits[0], "ambiguous: day/month or month/day? No day above 12 was sampled: check the exporting tool"
    return fits[0], f"reads {sum(parses_as(s, fits[0]) for s in stamps)} of {len(stamps)} sampled stamps"


def _tags(rows: list[list[str]], idx: dict[str, int], plant: Any, folder: Path,
          target: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    hierarchy = Hierarchy(plant)
    seen: dict[str, None] = {}
    numeric: Counter = Counter()
    for r in rows:
        if len(r) <= idx["value"] or len(r) <= idx["ref"]:
            continue
        ref = r[idx["ref"]].strip()
        if not ref:
            continue
        seen[ref] = None
        numeric[ref] += bool(re.fullmatch(r"-?\d+([.,]\d+)?([eE][-+]?\d+)?", r[idx["value"]].strip()))
    tags, new_assets = [], {}
    for ref in sorted(seen)[:MAX_TAGS]:
        parts = [p for p in re.split(r"[.:/\\]", ref) if p]
        match = hierarchy.match(parts[:-1]) if len(parts) > 1 else None
        rel = "/".join(match) if match else "/".join(slug(p) for p in ([folder.name] + parts[:-1])[-3:] if slug(p))
        if not match:
            new_assets[rel] = f"export reference prefix discovered in {target}"
        entry: dict[str, Any] = {"ref": ref, "asset": rel, "tag": tag_name(parts[-1]) or "value"}
        if numeric[ref] == 0:
            entry["type"] = "text"
        tags.append(entry)
    return tags, new_assets
