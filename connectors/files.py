"""Drop-folder discovery shared by file-based sources (exports, camera images).

A file belongs to the first interval that sees it: files that appeared (mtime)
before the interval's end, are not claimed by an earlier interval, and have stopped
changing. The claim is recorded in the source state, so a rerun of the interval
reads exactly the same files and a later interval never reads them again.

Claims older than `retain_s` before the interval are folded into a watermark so the
state stays small: a file whose mtime is older than the watermark and that no kept
claim names is taken as read long ago; it is skipped, logged and counted
(`files_before_watermark`), never read twice.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plantlake.lake import Interval

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DropFile:
    path: Path
    name: str  # relative to the drop folder, '/'-separated
    size: int
    mtime_ns: int

    def as_state(self) -> list[Any]:
        return [self.name, self.size, self.mtime_ns]


def scan(folder: Path, pattern: str, ignore_suffixes: tuple[str, ...] = ()) -> list[DropFile]:
    """Regular files under `folder` matching `pattern`; never follows a link out of it.

    One lstat per file; only a link, or a file in a subfolder not seen yet, is resolved
    (a drop folder holds thousands of files, and resolving each walks its whole path).
    """
    root = folder.resolve()
    inside: dict[Path, bool] = {root: True}  # folder -> its real path lies under root
    found = []
    for path in sorted(root.glob(pattern)):
        if path.name.startswith(".") or path.name.lower().endswith(ignore_suffixes):
            continue
        try:
            st = path.lstat()
        except FileNotFoundError:  # vanished between glob and stat
            continue
        parent = path.parent
        if parent not in inside:
            inside[parent] = parent.resolve().is_relative_to(root)
        if stat.S_ISLNK(st.st_mode):
            real = path.resolve()
            if not (inside[parent] and real.is_relative_to(root)):
                log.warning("skipping %s: it points outside the drop folder", path)
                continue
            try:
                st = real.stat()
            except FileNotFoundError:  # a dangling link
                continue
        elif not inside[parent]:
            log.warning("skipping %s: it points outside the drop folder", path)
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        found.append(DropFile(path, path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return found


def claim(folder: Path, pattern: str, interval: Interval, state: dict[str, Any], *, settle_s: float = 2.0,
          ignore_suffixes: tuple[str, ...] = (), retain_s: float = 7 * 86400
          ) -> tuple[list[DropFile], dict[str, Any], dict[str, Any]]:
    """Files for `interval` and the state to commit after a successful run.

    Returns (files, new_state, info): `info["waiting"]` names files left for a later run
    because they are still being written, `info["before_watermark"]` old files skipped.
    """
    claimed: dict[str, list[list[Any]]] = dict(state.get("intervals", {}))
    watermark_ns = int(state.get("watermark_ns", 0))
    if interval.key in claimed:  # a rerun reads what the first run read
        files = [DropFile(folder / n, n, s, m) for n, s, m in claimed[interval.key]]
        return files, state, {"waiting": [], "before_watermark": []}
    done = {entry[0] for entries in claimed.values() for entry in entries}
    end_ns = int(interval.end.timestamp() * 1e9)
    now_ns = time.time_ns()
    files, waiting, old = [], [], []
    for f in scan(folder, pattern, ignore_suffixes):
        if f.name in done or f.mtime_ns >= end_ns:
            continue
        if f.mtime_ns < watermark_ns:
            old.append(f.name)
            continue
        if now_ns - f.mtime_ns < settle_s * 1e9 or _growing(f):
            waiting.append(f.name)
            continue
        files.append(f)
    if old:
        log.warning("%s: %d file(s) older than the claim watermark skipped (e.g. %s)", folder, len(old), old[0])
    claimed[interval.key] = [f.as_state() for f in files]
    # fold claims of intervals that ended long before this one into the watermark
    horizon = interval.start.timestamp() - retain_s
    for key in [k for k in claimed if _end_of(k) < horizon]:
        watermark_ns = max(watermark_ns, int(_end_of(key) * 1e9))
        del claimed[key]
    return files, {**state, "intervals": claimed, "watermark_ns": watermark_ns}, {
        "waiting": waiting, "before_watermark": old}


def _end_of(key: str) -> float:
    return datetime.strptime(key.split("_")[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


def _growing(f: DropFile) -> bool:
    try:
        return os.stat(f.path).st_size != f.size
    except FileNotFoundError:
        return True
