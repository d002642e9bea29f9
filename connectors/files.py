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

import errno
import logging
import os
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from plantlake.core.lake import Interval

log = logging.getLogger(__name__)


class UnsafeFile(ValueError):
    """A drop-folder file plantlake will not read: a link, not a regular file, outside the folder,
    or over its size limit. The message names the file and why, never its content."""


def open_drop_file(root: Path, path: Path, *, max_bytes: int | None = None, setting: str = "max_file_bytes",
                   what: str = "file") -> Any:
    """Open a file from a folder others can write, as a binary file object: never through a link
    (`O_NOFOLLOW` on the file, its folder resolved against `root`), only a regular file, at most
    `max_bytes`. Raises UnsafeFile (quarantine it) or FileNotFoundError (it vanished)."""
    root = Path(root).resolve()
    name = _shown(path, root)
    if not Path(path).parent.resolve().is_relative_to(root):
        raise UnsafeFile(f"{what}: {name} lies outside the drop folder (through a linked folder)")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(f"{what}: {name} is a symbolic link; links in a drop folder are never followed") from None
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(name) from None
        raise UnsafeFile(f"{what}: {name} cannot be opened ({errno.errorcode.get(exc.errno, exc.errno)})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafeFile(f"{what}: {name} is not a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        os.close(fd)
        raise UnsafeFile(f"{what}: {name} is {st.st_size} bytes, over {setting} ({max_bytes})")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _shown(path: Path, root: Path) -> str:
    """A file's name for a message: relative to its folder, printable, bounded."""
    try:
        text = Path(path).relative_to(root).as_posix()
    except ValueError:
        text = Path(path).name
    text = printable(text)
    return text if len(text) <= 200 else text[:200] + "…"


def printable(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (a camera's Latin-1 name) become \\xNN escapes,
    so the name can be stored and shown (the file itself is opened by its real path)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class DropFile:
    path: Path
    name: str  # relative to the drop folder, '/'-separated
    size: int
    mtime_ns: int

    def as_state(self) -> list[Any]:
        return [self.name, self.size, self.mtime_ns]


def scan(folder: Path, pattern: str, ignore_suffixes: tuple[str, ...] = ()) -> list[DropFile]:
    """Regular files and links under `folder` matching `pattern`; never follows a link out of it.

    A link is listed as the link (its own size and time), and so is a file reached through a
    linked folder: the source claims it and quarantines it when `open_drop_file` refuses it, so a
    link someone put into a shared folder is reported, not only logged. One lstat per file (a
    drop folder holds thousands of files); nothing is resolved here.
    """
    root = folder.resolve()
    found = []
    for path in sorted(root.glob(pattern)):
        if path.name.startswith(".") or path.name.lower().endswith(ignore_suffixes):
            continue
        try:
            st = path.lstat()
        except FileNotFoundError:  # vanished between glob and stat
            continue
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            continue
        found.append(DropFile(path, printable(path.relative_to(root).as_posix()), st.st_size, st.st_mtime_ns))
    return found


class Claims(BaseModel):
    """Which files each interval read (name, size, mtime in ns), and the watermark older claims
    were folded into: a file-drop source's state, per folder."""

    model_config = ConfigDict(extra="forbid")
    intervals: dict[str, list[tuple[str, int, int]]] = {}
    watermark_ns: int = 0


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
        return os.stat(f.path, follow_symlinks=False).st_size != f.size
    except FileNotFoundError:
        return True
