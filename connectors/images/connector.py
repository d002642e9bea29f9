"""Camera images from drop folders: one `inspection_images` row per distinct image.

Extract claims the interval's files in each configured folder (settled, never read
twice, a rerun reads the same ones), then reads them in a process pool
(`connectors.images.probe`: sha256, full decode, EXIF, features, content-addressed copy
into the lake) and lands one raw row per file in batches, so memory stays flat however
many files there are. Decode turns raw rows into table rows: station, part serial,
order and capture time come from a sidecar JSON or the file name, as the site config
declares per folder; whatever is wrong with a file or its metadata becomes a
quarantined row with the reason, and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from connectors.base import (
    RAW,
    Connector,
    Decoded,
    Extract,
    Finding,
    Raw,
    State,
    capture_regex,
    fill,
)
from connectors.files import Claims, claim, scan
from connectors.images.probe import SUFFIXES, Job, Probe
from plantlake.core.lake import Interval
from schemas.rejects import Rejects, record_json

log = logging.getLogger(__name__)

TS = pa.timestamp("us", tz="UTC")
RAW_SCHEMA = pa.schema([
    ("file", pa.string()), ("folder", pa.int32()), ("mtime_ns", pa.int64()), ("size", pa.int64()),
    ("sha256", pa.string()), ("sidecar", pa.string()), ("error", pa.string()), ("error_column", pa.string()),
    ("uri", pa.string()), ("width", pa.int64()), ("height", pa.int64()), ("format", pa.string()),
    ("mode", pa.string()), ("camera_model", pa.string()), ("exposure_time_s", pa.float64()),
    ("exif_datetime", pa.string()), ("brightness", pa.float64()), ("contrast", pa.float64()),
    ("sharpness", pa.float64()),
])
#: serials and order ids become join keys (and never path segments): a conservative alphabet
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:#-]{0,63}$")
_OUT = ("image_id", "capture_id", "captured_at", "asset_id", "part_serial", "order_id", "uri", "source_file", "width", "height",
        "format", "mode", "bytes", "camera_model", "exposure_time_s", "exif_datetime", "brightness", "contrast",
        "sharpness")


class MetadataError(ValueError):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column


class ImagesState(State):
    folders: dict[str, Claims] = {}  # per configured folder (path and pattern)


class ImagesConnector(Connector):
    State = ImagesState

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name_patterns = [re.compile(f"^{capture_regex(f.name_pattern)}$") if f.name_pattern else None
                              for f in self.source.folders]
        self.tz = ZoneInfo(self.timezone)
        self.stats: dict[str, Any] = {}
        self.ingested: list[Path] = []
        #: (folder index, name) -> (file, sidecar) of the files this run claimed
        self._paths: dict[tuple[int, str], tuple[Path, str | None]] = {}

    def probe(self, interval: Interval, *, listen_s: float = 5.0) -> list[Finding]:
        """Per folder: the files its pattern matches, and how many carry what it reads from them (a
        sidecar, a name that fits name_pattern)."""
        out = []
        for i, f in enumerate(self.source.folders):
            folder = self.plant.path(f.path)
            place = f"folders[{i}] {f.path}/{f.pattern}"
            if not folder.is_dir():
                out.append(Finding(place, False, f"folder {folder} does not exist"))
                continue
            ignore = (f.sidecar.suffix.lower(),) if f.sidecar else ()
            files = scan(folder, f.pattern, ignore)
            if not files:
                out.append(Finding(place, False, f"no file matches {f.pattern!r}"))
                continue
            if f.sidecar:
                fit = sum(d.path.with_suffix(f.sidecar.suffix).exists() for d in files)
                what = f"{fit} with a {f.sidecar.suffix} sidecar"
            elif self.name_patterns[i] is not None:
                fit = sum(bool(self.name_patterns[i].match(Path(d.name).name)) for d in files)
                what = f"{fit} named as {f.name_pattern}"
            else:
                fit, what = len(files), f"station {f.asset}, capture time from EXIF"
            out.append(Finding(place, fit > 0, f"{len(files)} file(s), {what}"
                               + ("" if fit == len(files) else f"; the other {len(files) - fit} are quarantined")))
        return out

    # ---- extract ---------------------------------------------------------------------------

    def extract(self, interval: Interval, state: dict[str, Any]) -> Extract:
        src = self.source
        jobs: list[Job] = []
        folders_state = dict(state.get("folders", {}))
        self.stats = {"files": 0, "files_waiting": 0, "files_before_watermark": 0}
        for i, f in enumerate(src.folders):
            folder = self.plant.path(f.path)
            if not folder.is_dir():
                raise FileNotFoundError(f"source {src.name}: drop folder {folder} (folders[{i}].path) does not exist")
            ignore = (f.sidecar.suffix.lower(),) if f.sidecar else ()
            key = f"{f.path}|{f.pattern}"  # one claim per folder entry: two entries may share a folder
            files, folders_state[key], info = claim(folder, f.pattern, interval, folders_state.get(key, {}),
                                                    settle_s=src.settle_s, ignore_suffixes=ignore)
            self.stats["files_waiting"] += len(info["waiting"])
            self.stats["files_before_watermark"] += len(info["before_watermark"])
            for d in files:
                sidecar = str(d.path.with_suffix(f.sidecar.suffix)) if f.sidecar else None
                jobs.append(Job(str(d.path), d.name, i, d.size, d.mtime_ns, sidecar, str(folder)))
        self.stats["files"] = len(jobs)
        self._paths = {(j.folder, j.name): (Path(j.path), j.sidecar) for j in jobs}
        assert self.files is not None, "the runner gives a connector the lake's file stores"
        probe = Probe(self.files.images, self.files.quarantined,
                      tuple(e.lower() for e in src.extensions), src.max_pixels, link=src.copy_mode == "link",
                      max_file_bytes=src.max_file_bytes)
        return Extract.one(RAW_SCHEMA, self._probe_all(jobs, probe), state={**state, "folders": folders_state},
                           stats=self.stats)

    def _probe_all(self, jobs: list[Job], probe: Probe) -> Iterator[pa.Table]:
        """Raw rows in batches of `batch_files`, probed in a process pool when it pays off."""
        workers = self.source.workers or os.cpu_count() or 1
        self.stats["workers"] = workers if len(jobs) >= 4 * workers and workers > 1 else 1
        if self.stats["workers"] == 1:
            yield from self._batches(map(probe, jobs))
            return
        # spawn: a forked copy of an Airflow worker (threads, sockets) is not safe to run
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            yield from self._batches(pool.map(probe, jobs, chunksize=max(1, min(32, len(jobs) // (8 * workers)))))

    def _batches(self, rows: Iterator[dict[str, Any]]) -> Iterator[pa.Table]:
        """Raw batches; the copies a batch references are made durable before it is handed over."""
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= self.source.batch_files:
                yield self._durable(batch)
                batch = []
        if batch:
            yield self._durable(batch)

    def _durable(self, batch: list[dict[str, Any]]) -> pa.Table:
        self.files.images.flush()  # one filesystem sync covers the batch's copies (both blob stores)
        return pa.Table.from_pylist(batch, schema=RAW_SCHEMA)

    # ---- decode ----------------------------------------------------------------------------

    def decode(self, raw: Raw) -> Decoded:
        raw = raw[RAW]
        rejects = Rejects(stage="decode")
        out: dict[str, list] = {k: [] for k in _OUT}
        self.ingested = []
        counted = {"format_mismatch": 0}
        records, failed = raw.to_pylist(), []
        for rec in records:
            try:
                if rec["error"]:
                    raise MetadataError(rec["error_column"] or "file", rec["error"])
                meta = self._metadata(rec)
            except MetadataError as exc:
                failed.append((rec, exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one poison file is quarantined, never the batch's end
                failed.append((rec, MetadataError("file", f"file: metadata cannot be read ({rec['file']}: "
                                                          f"{exc.__class__.__name__}: {str(exc)[:160]})")))
                continue
            folder = self.source.folders[rec["folder"]]
            source_file = f"{folder.path}/{rec['file']}"
            named = Path(rec["file"]).suffix.lower()
            if rec["format"] and named and named not in SUFFIXES.get(rec["format"], (named,)):
                counted["format_mismatch"] += 1  # kept by its content: format and the copy's suffix
                log.warning("source %s: %s is %s by its content, not %s as named", self.source.name,
                            source_file, rec["format"], named)
            values = {"image_id": rec["sha256"], "uri": rec["uri"], "source_file": source_file,
                      "capture_id": capture_id(meta["asset_id"], meta["part_serial"], meta["captured_at"], source_file),
                      "bytes": rec["size"], "exif_datetime": self._exif_time(rec["exif_datetime"]), **meta}
            for k in _OUT:
                out[k].append(values[k] if k in values else rec[k])
            paths = self._paths.get((rec["folder"], rec["file"]))
            if paths:
                self.ingested.append(paths[0])
                if paths[1]:
                    self.ingested.append(Path(paths[1]))
        kept: set[str] | None = None  # the image ids a row points at: this batch's and the published ones
        for rec, exc in failed:  # rejected bytes live under quarantine/, not images/ (unless a row keeps them)
            if rec["uri"] and self.files.images.holds(rec["uri"]):
                kept = kept if kept is not None else set(out["image_id"]) | self.files.published_image_ids()
                rec = {**rec, "uri": self._move_to_quarantine(rec["uri"], rec["sha256"], rec["sha256"] in kept)}
            rejects.rows.append({"stage": "decode", "column": exc.column, "reason": str(exc),
                                 "record": record_json(rec)})
        repeated = _repeated_bytes(out)
        counted["repeated_frames"] = repeated
        if repeated:
            log.warning("source %s: %d capture(s) share their bytes with a capture of another part "
                        "(a frozen camera?); see the cross-source check image_bytes_unique", self.source.name, repeated)
        table = pa.table({
            **{k: pa.array(out[k], pa.string()) for k in ("image_id", "capture_id", "asset_id", "part_serial",
                                                          "order_id", "uri", "source_file", "format", "mode",
                                                          "camera_model")},
            **{k: pa.array(out[k], pa.int64()) for k in ("width", "height", "bytes")},
            **{k: pa.array(out[k], pa.float64()) for k in ("exposure_time_s", "brightness", "contrast", "sharpness")},
            "captured_at": pa.array(out["captured_at"], TS), "exif_datetime": pa.array(out["exif_datetime"], TS),
        })
        return Decoded({"inspection_images": table}, {"inspection_images": rejects}, stats=counted)

    def _metadata(self, rec: dict[str, Any]) -> dict[str, Any]:
        """asset_id, part_serial, order_id and captured_at of one file, from sidecar, name or EXIF."""
        folder = self.source.folders[rec["folder"]]
        name = rec["file"]
        fields: dict[str, Any] = {}
        asset_ref: str | None = folder.asset
        if folder.sidecar:
            sc = folder.sidecar
            if rec["sidecar"] is None:
                raise MetadataError("sidecar", f"sidecar: missing ({Path(name).with_suffix(sc.suffix).as_posix()})")
            try:
                body = json.loads(rec["sidecar"])
            except json.JSONDecodeError as exc:
                raise MetadataError("sidecar", f"sidecar: not valid JSON ({name}: {exc.msg})") from None
            except (ValueError, RecursionError) as exc:  # nested too deep, a 5,000-digit number
                raise MetadataError("sidecar", f"sidecar: not valid JSON ({name}: {exc.__class__.__name__})") from None
            if not isinstance(body, dict):
                raise MetadataError("sidecar", f"sidecar: expected a JSON object ({name})")
            asset_ref = body.get(sc.asset, asset_ref)
            for key in ("part_serial", "order_id", "captured_at"):
                field = getattr(sc, key)
                if field and body.get(field) is not None:
                    fields[key] = body[field]
        elif folder.name_pattern:
            m = self.name_patterns[rec["folder"]].match(Path(name).name)
            if m is None:
                raise MetadataError("file", f"file: name does not match {folder.name_pattern!r} ({name})")
            caps = m.groupdict()
            asset_ref = fill(folder.asset, caps) if folder.asset else None
            fields = {k: caps[k] for k in ("part_serial", "order_id", "captured_at") if k in caps}
        if isinstance(asset_ref, str | int) and str(asset_ref) in folder.codes:
            asset_ref = folder.codes[str(asset_ref)]
        if not isinstance(asset_ref, str) or self.plant.resolve_asset(asset_ref) is None:
            raise MetadataError("asset_id", f"asset_id: station is not an asset of the site hierarchy "
                                            f"({name}: {str(asset_ref)[:80]!r}); map station codes under "
                                            f"folders[{rec['folder']}].codes")
        for key in ("part_serial", "order_id"):
            v = fields.get(key)
            if v is not None and not (isinstance(v, str | int) and KEY.match(str(v))):
                raise MetadataError(key, f"{key}: not an identifier of letters, digits and ._:#- "
                                         f"({name}: {str(v)[:80]!r})")
        captured = self._capture_time(fields.get("captured_at"), folder.captured_at_format, name)
        if captured is None:
            captured = self._exif_time(rec["exif_datetime"])
        if captured is None:
            raise MetadataError("captured_at", f"captured_at: no capture time in sidecar, file name or EXIF ({name})")
        return {"asset_id": self.plant.resolve_asset(asset_ref), "captured_at": captured,
                "part_serial": None if fields.get("part_serial") is None else str(fields["part_serial"]),
                "order_id": None if fields.get("order_id") is None else str(fields["order_id"])}

    def _capture_time(self, value: Any, fmt: str | None, name: str) -> datetime | None:
        if value is None:
            return None
        try:
            if fmt:
                dt = datetime.strptime(str(value), fmt)
                if dt.tzinfo is None and fmt.endswith("Z"):
                    dt = dt.replace(tzinfo=UTC)
            else:
                dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise MetadataError("captured_at", f"captured_at: not a time in {'format ' + fmt if fmt else 'ISO 8601'} "
                                               f"({name}: {str(value)[:40]!r})") from None
        return (dt if dt.tzinfo else dt.replace(tzinfo=self.tz)).astimezone(UTC)

    def _exif_time(self, text: str | None) -> datetime | None:
        """EXIF DateTimeOriginal ('YYYY:MM:DD HH:MM:SS', camera local time) in UTC; None when unreadable."""
        if not text:
            return None
        try:
            return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").replace(tzinfo=self.tz).astimezone(UTC)
        except ValueError:
            return None

    def _move_to_quarantine(self, uri: str, digest: str, kept: bool) -> str:
        """Put a rejected file's copy under quarantine/_files/ and drop the images/ copy unless a
        row points at it (`kept`); return the quarantine key."""
        try:
            data = self.files.images.read(uri)
        except FileNotFoundError:
            return uri
        key = self.files.quarantined.put(data, digest, Path(uri).suffix.lower())
        self.files.quarantined.flush()
        if not kept:
            self.files.images.remove(uri)
        return key

    # ---- after publish ---------------------------------------------------------------------

    def after_publish(self) -> dict[str, Any]:
        """Remove the operator's files whose rows are published, when the source says so."""
        if not self.source.delete_after_publish:
            return {}
        for path in self.ingested:
            path.unlink(missing_ok=True)
        return {"files_deleted": len(self.ingested)}


def capture_id(asset_id: str, part_serial: str | None, captured_at: datetime, source_file: str) -> str:
    """The key of a capture: station, part, capture time and file (not the bytes: a camera may send
    the same frame for two parts, and that is two captures)."""
    text = "\x1f".join([asset_id, part_serial or "", captured_at.astimezone(UTC).isoformat(), source_file])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _repeated_bytes(out: dict[str, list]) -> int:
    """How many captures share their bytes with a capture of another part (or station) in this batch."""
    owners: dict[str, set] = {}
    for digest, asset, part in zip(out["image_id"], out["asset_id"], out["part_serial"], strict=True):
        owners.setdefault(digest, set()).add((asset, part))
    return sum(len(o) for o in owners.values() if len(o) > 1)

