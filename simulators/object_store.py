"""S3-compatible object storage on loopback, for the tests, the benchmarks and a demo of a lake in a
bucket: moto's standalone server (`moto[server]`, a development dependency) in a subprocess.

Its limits, for whoever reads a result from it: it keeps objects in memory (a restart loses them),
it is one Python process (its throughput is moto's, not S3's), and it checks If-None-Match /
If-Match on PUT, which is what delta-rs's `conditional_put: etag` and plantlake's create-only
state versions need."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from simulators.net import free_port, wait_port

KEY = "plantlake-test"  # the server's dummy credentials (moto accepts any)


@dataclass(frozen=True)
class S3Server:
    """A running server with one bucket: its endpoint, and the storage options deltalake and
    obstore take (conditional put by ETag, which the server enforces, makes commits safe)."""

    endpoint: str
    bucket: str

    @property
    def storage_options(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": KEY, "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true", "conditional_put": "etag"}

    @property
    def connection_uri(self) -> str:
        """The Airflow connection (type aws) that reaches the bucket, for AIRFLOW_CONN_<ID>."""
        from urllib.parse import quote

        return f"aws://{KEY}:{KEY}@/?endpoint_url={quote(self.endpoint, safe='')}&region_name=us-east-1"

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key in the bucket under `prefix`."""
        import obstore
        from obstore.store import S3Store

        store = S3Store(self.bucket, config={"access_key_id": KEY, "secret_access_key": KEY, "endpoint": self.endpoint,
                                             "region": "us-east-1"}, client_options={"allow_http": True})
        return sorted(m["path"] for batch in obstore.list(store, prefix or None) for m in batch)


@contextmanager
def s3_server(bucket: str = "lake") -> Iterator[S3Server]:
    """The server on a free loopback port with `bucket` created; stopped on exit."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port("127.0.0.1", port, timeout=30)
        server = S3Server(f"http://127.0.0.1:{port}", bucket)
        request = urllib.request.Request(f"{server.endpoint}/{bucket}", method="PUT")  # CreateBucket
        urllib.request.urlopen(request, timeout=30).close()  # noqa: S310 - our own server on loopback
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
