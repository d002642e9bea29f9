"""Drop-folder discovery shared by file-based sources (exports, camera images).

A file belongs to the first interval that sees it: files that appeared (mtime)
before the interval's end, are not claimed by an earlier interval, and have stopped
changing. The claim is recorded in the source state, so a rerun of the interval
reads exactly the same files and a later interval never reads them again.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
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


def scan(folder: Path, pattern: str) -> list[DropFile]:
    """Regular files under `folder` matching `pattern`; never follows a link out of it."""
    root = folder.resolve()
    found = []
    for path in sorted(root.glob(pattern)):
        if path.name.startswith(".") or not path.is_file():
            continue
        real = path.resolve()
        if not real.is_relative_to(root):
            log.warning("skipping %s: it points outside the drop folder", path)
            continue
        try:
            st = path.stat()
        except FileNotFoundError:  # vanished between glob and stat
            continue
        found.append(DropFile(path, path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return found


def claim(folder: Path, pattern: str, interval: Interval, state: dict[str, Any],
          *, settle_s: float = 2.0) -> tuple[list[DropFile], dict[str, Any], list[str]]:
    """Files for `interval` and the state to commit after a successful run.

    Returns (files, new_state, waiting) where `waiting` names files left for a later
    run because they are still being written.
    """
    claimed: dict[str, list[list[Any]]] = dict(state.get("intervals", {}))
    if interval.key in claimed:  # a rerun reads what the first run read
        files = [DropFile(folder / n, n, s, m) for n, s, m in claimed[interval.key]]
        return files, state, []
    done = {entry[0] for entries in claimed.values() for entry in entries}
    end_ns = int(interval.end.timestamp() * 1e9)
    now_ns = time.time_ns()
    files, waiting = [], []
    for f in scan(folder, pattern):
        if f.name in done or f.mtime_ns >= end_ns:
            continue
        if now_ns - f.mtime_ns < settle_s * 1e9 or _growing(f):
            waiting.append(f.name)
            continue
        files.append(f)
    claimed[interval.key] = [f.as_state() for f in files]
    return files, {**state, "intervals": claimed}, waiting


def _growing(f: DropFile) -> bool:
    try:
        return os.stat(f.path).st_size != f.size
    except FileNotFoundError:
        return True
