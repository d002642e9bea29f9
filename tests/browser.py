"""Headless Chromium for the tests that look at what plantlake writes for people (the report, the
Data Docs), on a machine whose network refuses everything: every request goes to a proxy on
loopback that answers 403 and records it, so a test sees each request that would have left the
machine. Chromium itself calls home at start (Google accounts, its clock) whatever it shows; the
hosts it calls showing `about:blank` are the browser's, and `offline` leaves them out."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def refusing_proxy() -> Iterator[tuple[str, list[str]]]:
    """(the proxy's address, the requests it refused) while the block runs."""
    seen: list[str] = []

    class Refuse(BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_HEAD = do_CONNECT = do_PUT = do_OPTIONS = _refuse

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def chromium(tmp_path: Path, url: str, *args: str, proxy: str | None = None) -> subprocess.CompletedProcess:
    """Chromium's run of `url` (e.g. `--dump-dom`); with `proxy`, every request of the page (loopback
    included) goes there."""
    assert CHROMIUM, "chromium is not installed: make test installs it (Debian package chromium)"
    net = [f"--proxy-server=http://{proxy}", "--proxy-bypass-list=<-loopback>"] if proxy else []
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--disable-domain-reliability", "--no-pings", "--disable-default-apps", "--disable-extensions",
                           "--disable-client-side-phishing-detection", "--no-default-browser-check",
                           "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,"
                           "AutofillServerCommunication,InterestFeedContentSuggestions,SafeBrowsing,AccountConsistency",
                           *net,
                           f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=10000", *args, url],
                          capture_output=True, text=True, timeout=120, check=True)


def _host(request: str) -> str:
    target = request.split(" ", 1)[1]
    return target.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]


def offline(tmp_path: Path, url: str, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Chromium's run of `url` with the network refused, and the requests the page made: those to
    hosts the browser does not call on a blank page."""
    with refusing_proxy() as (proxy, blank):
        chromium(tmp_path, "about:blank", "--dump-dom", proxy=proxy)
    with refusing_proxy() as (proxy, seen):
        done = chromium(tmp_path, url, *args, proxy=proxy)
    browser = {_host(r) for r in blank}
    return done, [r for r in seen if _host(r) not in browser]
