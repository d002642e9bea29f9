"""One filesystem layer for the lake's files that are not tables (the tables are Delta tables,
`plantlake.core.tables`): local disk, or S3-compatible object storage through `obstore` (the
Rust object_store library delta-rs itself writes with).

A file is named by its lake-relative key (`_state/erp/0000000007.json`). Both kinds give:

- `put`: the whole object, all or nothing — local: a temp file, fsynced, renamed into place and
  the folder fsynced; S3: one PUT (S3 has no partial objects);
- `create`: the same, but only if no object has the key — local: `link(2)` of the fsynced temp
  file, which fails when the name exists; S3: a PUT with `If-None-Match: *`. It is the
  compare-and-swap that makes versioned state safe with writers on two hosts;
- `put_file`: a finished local file (a staged data file) as the object — local: a hard link
  (or an fsynced copy across filesystems); S3: a streamed, multipart upload;
- `get`, `size`, `list` (keys under a prefix) and `delete`.
"""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _check(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
        raise ValueError(f"{key!r} is not a lake key")
    return key


@dataclass(frozen=True)
class LocalStorage:
    """Files under a local folder."""

    root: Path

    def uri(self, key: str = "") -> str:
        return str(self.root / _check(key)) if key else str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _check(key)

    def _fsynced_temp(self, path: Path, data: bytes | Path) -> Path:
        """A hidden temp file beside `path` holding `data` (bytes, or a local file's content), fsynced."""
        import shutil

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "wb") as fh:
                if isinstance(data, Path):
                    with open(data, "rb") as src:
                        shutil.copyfileobj(src, fh, 1 << 20)
                else:
                    fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _replace(self, tmp: Path, path: Path) -> None:
        """Rename an fsynced temp file into place and make the rename durable."""
        try:
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._sync_dir(path.parent)

    def _sync_dir(self, folder: Path) -> None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self._replace(self._fsynced_temp(path, data), path)

    def create(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        tmp = self._fsynced_temp(path, data)
        try:
            os.link(tmp, path)  # atomic, and refused when the name exists
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        self._sync_dir(path.parent)
        return True

    def put_file(self, key: str, path: Path) -> None:
        """The fsynced local file at `path` becomes `key` as well: a hard link where it can be (the
        staging folder is on the lake's filesystem), else an fsynced copy renamed into place."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except FileExistsError:
            raise
        except OSError:  # another filesystem
            self._replace(self._fsynced_temp(target, Path(path)), target)
            return
        self._sync_dir(target.parent)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


@dataclass(frozen=True)
class ObjectStorage:
    """Objects under `s3://bucket/prefix`, with the storage options delta-rs takes (AWS_* keys)."""

    url: str
    options: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.url.startswith("s3://"):
            raise ValueError(f"{self.url!r}: an object storage root is s3://bucket[/prefix]")

    @property
    def _store(self) -> Any:
        return _s3_store(self.url, tuple(sorted(self.options.items())))

    def uri(self, key: str = "") -> str:
        return f"{self.url.rstrip('/')}/{_check(key)}" if key else self.url.rstrip("/")

    def put(self, key: str, data: bytes) -> None:
        import obstore

        obstore.put(self._store, _check(key), data)

    def put_file(self, key: str, path: Path) -> None:
        """Upload the local file at `path` as `key` (streamed, multipart when large)."""
        import obstore

        obstore.put(self._store, _check(key), Path(path))

    def create(self, key: str, data: bytes) -> bool:
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            obstore.put(self._store, _check(key), data, mode="create")
        except (AlreadyExistsError, PreconditionError):
            return False
        return True

    def get(self, key: str) -> bytes:
        import obstore

        try:
            return bytes(obstore.get(self._store, _check(key)).bytes())
        except FileNotFoundError:  # obstore's NotFoundError is one
            raise FileNotFoundError(self.uri(key)) from None

    def size(self, key: str) -> int | None:
        import obstore

        try:
            return int(obstore.head(self._store, _check(key))["size"])
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> list[str]:
        import obstore

        return sorted(m["path"] for batch in obstore.list(self._store, _check(prefix) + "/") for m in batch)

    def delete(self, key: str) -> None:
        import contextlib

        import obstore

        with contextlib.suppress(FileNotFoundError):
            obstore.delete(self._store, _check(key))


@functools.lru_cache(maxsize=16)
def _s3_store(url: str, options: tuple[tuple[str, str], ...]) -> Any:
    """One obstore client per lake and process (its connection pool is reused)."""
    from obstore.store import S3Store

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    config = {k.lower().removeprefix("aws_"): v for k, v in options if k.upper().startswith("AWS_")}
    return S3Store(bucket, prefix=prefix.strip("/") or None, config=config)


Storage = LocalStorage | ObjectStorage


def s3_options(conn: Any) -> dict[str, str]:
    """deltalake's and obstore's storage options from an Airflow connection of type aws: login and
    password are the key pair, extra `endpoint_url` (or host and port) the server, extra
    `region_name` its region; commits are made safe for concurrent writers by ETag conditional put."""
    extra = dict(conn.extra or {})
    endpoint = extra.get("endpoint_url") or (
        f"{extra.get('scheme', 'https')}://{conn.host}" + (f":{conn.port}" if conn.port else "") if conn.host else None)
    options = {"AWS_REGION": str(extra.get("region_name") or "us-east-1"), "conditional_put": "etag"}
    if conn.login:
        options["AWS_ACCESS_KEY_ID"] = conn.login
    if conn.password:
        options["AWS_SECRET_ACCESS_KEY"] = conn.password
    if endpoint:
        options["AWS_ENDPOINT_URL"] = str(endpoint)
        if str(endpoint).startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options


def open_storage(root: str | Path, options: dict[str, str] | None = None) -> Storage:
    """The storage of a lake root: `s3://bucket/prefix` (with `options`), else a local folder."""
    text = str(root)
    if text.startswith("s3://"):
        return ObjectStorage(text, dict(options or {}))
    if "://" in text:
        raise ValueError(f"lake root {text!r}: plantlake reads a local folder or s3://bucket/prefix")
    return LocalStorage(Path(text).resolve())
