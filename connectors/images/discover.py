"""`plantlake discover folder` for camera images: the folder's image kinds and how their files
carry station, part and capture time.

Per image file ending: when (nearly) every image has a JSON sidecar of the same stem, its
fields are read from a sample and named (station, part serial, order, capture time) by a
vocabulary of the names cameras and MES write; station codes that are no asset of the site
hierarchy get `codes` to new assets (marked, for a person to name). Otherwise the file names are
split at the separator that cuts all of them into the same number of parts: constant parts stay
literal, a time stamp becomes `{captured_at}` with its strptime format, a number after a
constant prefix (`cam2`) becomes `{n}` — and the asset a template over it where the hierarchy has
such a series of assets (`assembly/line{n}/camera{n}`) — and the remaining part `{part_serial}`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from connectors.base import slug
from connectors.discovery import Draft, Hierarchy, field_named, folder_setting, parses_as
from connectors.files import UnsafeFile, open_drop_file, scan

IMAGE = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SIDECAR_FIELDS = {
    "asset": ("station", "asset", "asset_id", "camera", "cam", "machine", "workstation", "station_id", "arbeitsplatz"),
    "part_serial": ("part_serial", "serial", "serial_no", "serialnumber", "seriennummer", "sn", "part", "part_id"),
    "order_id": ("order_id", "order", "order_no", "auftrag", "auftragsnummer", "work_order"),
    "captured_at": ("captured_at", "capture_time", "timestamp", "time", "ts", "aufnahmezeit", "datetime", "taken_at"),
}
TIME_FORMATS = ("%Y%m%dT%H%M%S%fZ", "%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S%f", "%Y%m%dT%H%M%S", "%Y%m%d%H%M%S%f",
                "%Y%m%d%H%M%S", "%Y-%m-%dT%H-%M-%S", "%Y-%m-%dT%H%M%S")
SAMPLE = 20


def discover(target: str, connection: Any, *, name: str, plant: Any | None, base_dir: Any = ".",
             **_: Any) -> list[Draft]:
    folder = Path(target)
    files = [f for f in scan(folder, "*") if not f.name.startswith(".")]
    images = [f for f in files if f.path.suffix.lower() in IMAGE]
    if not images:
        return []
    stems = {f.path.stem: f for f in files if f.path.suffix.lower() == ".json"}
    hierarchy = Hierarchy(plant)
    folders, notes, new_assets = [], {}, {}
    by_ext: dict[str, list] = {}
    for f in images:
        by_ext.setdefault(f.path.suffix.lower(), []).append(f)
    for ext, group in sorted(by_ext.items()):
        k = len(folders)
        with_sidecar = [f for f in group if f.path.stem in stems]
        entry: dict[str, Any] = {"path": folder_setting(folder, base_dir), "pattern": f"*{group[0].path.suffix}"}
        if len(with_sidecar) >= 0.9 * len(group):
            said = _sidecar(entry, [stems[f.path.stem] for f in with_sidecar[:SAMPLE]], folder, plant, hierarchy,
                            new_assets, target)
            said = f"{len(group)} {ext} images, {len(with_sidecar)} with a JSON sidecar; " + said
        else:
            said = f"{len(group)} {ext} images without sidecars; " + _names(entry, [f.path.stem for f in group], ext,
                                                                          hierarchy, folder, new_assets, target)
        folders.append(entry)
        notes[("folders", k)] = said
    source = {"name": name, "kind": "images", "description": f"Camera images discovered in {target}",
              "schedule": "0 * * * *", "folders": folders}
    notes[()] = f"{len(images)} image(s) in {target}"
    return [Draft(source, notes, new_assets, {"images": len(images), "kinds": sorted(by_ext)})]


def _sidecar(entry: dict, sidecars: list, folder: Path, plant: Any, hierarchy: Hierarchy, new_assets: dict,
             target: str) -> str:
    bodies = []
    for f in sidecars:
        try:
            with open_drop_file(folder, f.path, max_bytes=1 << 20, what="sidecar") as fh:
                body = json.loads(fh.read())
        except (UnsafeFile, ValueError, OSError):
            continue
        if isinstance(body, dict):
            bodies.append(body)
    fields = sorted({k for b in bodies for k in b})
    spec: dict[str, Any] = {"suffix": ".json"}
    for key, names in SIDECAR_FIELDS.items():
        spec[key] = field_named(fields, names)
    if spec["asset"] is None:
        spec["asset"] = fields[0] if fields else "station"
    entry["sidecar"] = spec
    stations = Counter(str(b.get(spec["asset"])) for b in bodies if b.get(spec["asset"]) is not None)
    codes = {}
    for code in sorted(stations):
        if plant is not None and plant.resolve_asset(code):
            continue
        match = hierarchy.match(re.split(r"[-_ ./]", code))
        rel = "/".join(match) if match else f"{slug(folder.name) or 'cameras'}/{slug(code) or 'station'}"
        codes[code] = rel
        if not match:
            new_assets[rel] = f"station code {code!r} discovered in {target}"
    if codes:
        entry["codes"] = codes
    unused = [f for f in fields if f not in spec.values()]
    return (f"sidecar fields {', '.join(fields)}"
            + (f"; not used: {', '.join(unused)}" if unused else "")
            + (f"; station codes {', '.join(codes)} mapped to assets (new ones marked): check them" if codes else ""))


def _names(entry: dict, stems: list[str], ext: str, hierarchy: Hierarchy, folder: Path, new_assets: dict,
           target: str) -> str:
    best = None
    for sep in ("_", "-", " ", "."):
        counts = {len(s.split(sep)) for s in stems}
        if len(counts) == 1 and next(iter(counts)) > 1 and (best is None or next(iter(counts)) > best[1]):
            best = (sep, next(iter(counts)))
    asset_fallback = f"{slug(folder.name) or 'cameras'}/camera"
    if best is None:
        entry["asset"] = asset_fallback
        new_assets[asset_fallback] = f"camera folder discovered in {target}"
        return ("file names follow no one pattern: every image lands on one new station asset; the capture time "
                "comes from EXIF; set name_pattern to read more from the names")
    sep, n = best
    parts = [s.split(sep) for s in stems]
    template, glob, said = [], [], []
    serial_done, asset = False, None
    for i in range(n):
        values = [p[i] for p in parts]
        if len(set(values)) == 1:
            template.append(values[0])
            glob.append(values[0])
            one = re.fullmatch(r"([A-Za-z]+)(\d+)", values[0])
            if one and asset is None:  # one camera's files (cam2_…): its station, where the hierarchy has it
                asset = (_series(hierarchy, one.group(1), [one.group(2)]) or "").replace("{n}", one.group(2)) or None
                if asset:
                    said.append(f"{values[0]} names the station: {asset}")
            continue
        fmt = next((f for f in TIME_FORMATS if all(parses_as(v, f) for v in values)), None)
        prefix = re.fullmatch(r"([A-Za-z]+)(\d+)", values[0])
        if fmt:
            template.append("{captured_at}")
            entry["captured_at_format"] = fmt
            said.append(f"capture time in the name ({fmt})")
        elif prefix and all(re.fullmatch(re.escape(prefix.group(1)) + r"\d+", v) for v in values) and asset is None:
            template.append(prefix.group(1) + "{n}")
            asset = _series(hierarchy, prefix.group(1), sorted({v[len(prefix.group(1)):] for v in values}))
            said.append(f"{prefix.group(1)}<n> names the station" + (f": {asset}" if asset else ""))
        elif not serial_done:
            template.append("{part_serial}")
            serial_done = True
        else:
            template.append("{order_id}")
        glob.append(template[-1] if "{" not in template[-1] else re.sub(r"{\w+}", "*", template[-1]))
    entry["pattern"] = sep.join(glob) + ext
    entry["name_pattern"] = sep.join(template) + ext
    if asset is None and "{n}" in entry["name_pattern"]:
        asset = f"{slug(folder.name) or 'cameras'}/camera{{n}}"
        said.append("no series of assets in the hierarchy fits {n}: new station assets camera<n> (marked)")
        for v in sorted({p[[i for i, t in enumerate(template) if '{n}' in t][0]] for p in parts}):
            digits = re.sub(r"\D", "", v)
            new_assets[asset.replace("{n}", digits)] = f"camera discovered in {target}"
    elif asset is None:
        asset = asset_fallback
        new_assets[asset] = f"camera folder discovered in {target}"
        said.append("one station for all: a new asset (marked)")
    entry["asset"] = asset
    return "; ".join(said) if said else "names parsed"


def _series(hierarchy: Hierarchy, prefix: str, numbers: list[str]) -> str | None:
    """A template over {n} that names an asset of the hierarchy for every number seen, preferring
    assets whose own id starts like the file names' prefix (`cam` -> camera1)."""
    candidates: Counter = Counter()
    for asset in hierarchy.assets:
        path = "/".join(asset)
        for num in numbers:
            if re.search(rf"(?<!\d){num}(?!\d)", path) and asset[-1].startswith(prefix.lower()[:3]):
                candidates[re.sub(rf"(?<!\d){num}(?!\d)", "{n}", path)] += 1
    full = [t for t, c in candidates.items() if c == len(numbers)]
    return sorted(full)[0] if len(full) == 1 else None
