"""Metrics: plantlake's own per run and source, sent through Airflow's metrics (StatsD or
OpenTelemetry, whichever the deployment's `[metrics]` section turns on), and the exporter a
plant's Prometheus scrapes.

Emitted by the tasks (Airflow's `airflow.sdk.observability.stats`, so they travel with Airflow's
own `ti.finish`, `dagrun.duration`, … and cost nothing when metrics are off):

    plantlake.runs                 counter  source, outcome (success | failed | audit_blocked)
    plantlake.rows_in              counter  source, table
    plantlake.rows_published       counter  source, table
    plantlake.rows_quarantined     counter  source, table, reason (the expectation, or the conform reason)
    plantlake.rows_duplicate       counter  source, table
    plantlake.raw_rows             counter  source
    plantlake.raw_bytes            counter  source
    plantlake.lag_seconds          gauge    source (now minus the end of the interval just published)
    plantlake.step_duration        timer    source, step (extract, land, decode, conform, audit, publish, …)
    plantlake.freshness_lag_seconds gauge   source (the quality DAG's freshness check)
    plantlake.source_unhealthy     gauge    source (1: stale or failed, 0: fresh or unchecked)

`plantlake metrics serve` is the exporter: it receives StatsD datagrams (with InfluxDB-style tags,
`name,tag=value:1|c`, as Airflow sends them with `statsd_influxdb_enabled`) and serves them in
Prometheus' text format over HTTP, tags as labels: `plantlake_rows_published_total{source="erp",
table="materials"}`, `airflow_ti_finish_total{dag_id=…,task_id=…,state="success"}`.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _tag(value: Any) -> str:
    """A tag value StatsD and the exporter keep as it is: no `,` `=` `:` `|` or spaces."""
    return _UNSAFE.sub("_", str(value)).strip("_")[:80] or "_"


def _reason(kind: str) -> str:
    """A quarantine reason as a label of few values: the expectation's name
    (`expect_tag_values_to_be_within_physical_range`), or a conform reason's first words."""
    m = re.match(r"(expect_\w+)", kind)
    return m[1] if m else _tag(kind)[:60]


# ---------------------------------------------------------------------------------- emitting


def record_run(summary: Any, lake: Any = None) -> None:
    """A successful ingest run's counts, lag and step durations."""
    from airflow.sdk.observability import stats

    src = _tag(summary.source)
    stats.incr("plantlake.runs", 1, tags={"source": src, "outcome": "success"})
    for name, t in summary.tables.items():
        tags = {"source": src, "table": _tag(name)}
        for metric, value in (("rows_in", t.rows_in), ("rows_published", t.published),
                              ("rows_duplicate", t.duplicates)):
            stats.incr(f"plantlake.{metric}", value, tags=tags)
        reasons: dict[str, int] = {}
        for reason, n in t.reasons.items():
            label = _reason(reason)
            reasons[label] = reasons.get(label, 0) + n
        for label, n in reasons.items():
            stats.incr("plantlake.rows_quarantined", n, tags={**tags, "reason": label})
    stats.incr("plantlake.raw_rows", summary.raw_rows, tags={"source": src})
    if lake is not None:
        size = sum(lake.storage.size(key) or 0 for key in summary.raw_files)
        stats.incr("plantlake.raw_bytes", size, tags={"source": src})
    lag = (datetime.now(UTC) - datetime.fromisoformat(summary.interval_end)).total_seconds()
    stats.gauge("plantlake.lag_seconds", lag, tags={"source": src})
    for step, seconds in summary.timings_s.items():
        stats.timing("plantlake.step_duration", seconds * 1000, tags={"source": src, "step": _tag(step)})


def record_failure(source: str, outcome: str) -> None:
    from airflow.sdk.observability import stats

    stats.incr("plantlake.runs", 1, tags={"source": _tag(source), "outcome": _tag(outcome)})


def record_freshness(result: Any) -> None:
    from airflow.sdk.observability import stats

    for h in result.sources:
        tags = {"source": _tag(h.source)}
        if h.lag is not None:
            stats.gauge("plantlake.freshness_lag_seconds", h.lag.total_seconds(), tags=tags)
        stats.gauge("plantlake.source_unhealthy", int(h.state in ("stale", "failed")), tags=tags)


# ---------------------------------------------------------------------------------- exporting

#: StatsD types → Prometheus types
_TYPES = {"c": "counter", "g": "gauge", "ms": "summary", "h": "summary", "d": "summary"}
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class StatsdStore:
    """What the StatsD datagrams said so far: counters summed, gauges set, timers observed (in
    seconds, as count and sum), by metric name and label set. Thread-safe."""

    def __init__(self, prefix: str = "airflow") -> None:
        self.prefix = prefix
        self.lock = threading.Lock()
        #: (family name, prometheus type) -> {sorted label items: value, or [count, sum] for a summary}
        self.families: dict[tuple[str, str], dict[tuple[tuple[str, str], ...], Any]] = {}
        self.received = self.dropped = 0

    def name(self, stat: str) -> str:
        """`airflow.plantlake.rows_in` → `plantlake_rows_in`; `airflow.ti.finish` → `airflow_ti_finish`."""
        if stat.startswith(f"{self.prefix}.plantlake."):
            stat = stat.removeprefix(f"{self.prefix}.")
        return re.sub(r"[^a-zA-Z0-9_:]", "_", stat)

    def feed(self, datagram: bytes) -> None:
        for line in datagram.decode("utf-8", "replace").splitlines():
            if line.strip():
                try:
                    self._line(line.strip())
                except (ValueError, IndexError):
                    self.dropped += 1
                    log.debug("metrics: dropped a StatsD line that does not parse: %.200s", line)

    def _line(self, line: str) -> None:
        head, _, rest = line.partition(":")
        value_text, kind, *extra = rest.split("|")
        ptype = _TYPES.get(kind)
        if ptype is None:
            raise ValueError(kind)
        stat, *tag_parts = head.split(",")
        labels = dict(t.split("=", 1) for t in tag_parts)
        for part in extra:  # DogStatsD tags `#k:v,k2:v2`, and a sample rate `@0.5`
            if part.startswith("#"):
                labels.update(t.split(":", 1) for t in part[1:].split(",") if ":" in t)
        rate = next((float(p[1:]) for p in extra if p.startswith("@")), 1.0)
        labels = {k: v for k, v in labels.items() if _LABEL.match(k)}
        key = tuple(sorted(labels.items()))
        value = float(value_text)
        with self.lock:
            series = self.families.setdefault((self.name(stat), ptype), {})
            if ptype == "counter":
                series[key] = series.get(key, 0.0) + value / rate
            elif ptype == "gauge":
                relative = value_text[:1] in "+-" and key in series
                series[key] = series[key] + value if relative else value
            else:
                count_sum = series.setdefault(key, [0.0, 0.0])
                count_sum[0] += 1 / rate
                count_sum[1] += value / 1000.0
            self.received += 1

    def collect(self) -> Any:
        """prometheus_client's collector protocol."""
        from prometheus_client.core import Metric

        with self.lock:
            snapshot = {k: {lk: (list(v) if isinstance(v, list) else v) for lk, v in s.items()}
                        for k, s in self.families.items()}
        for (name, ptype), series in sorted(snapshot.items()):
            metric = Metric(name, f"StatsD {name}", ptype)
            for labels, value in series.items():
                if ptype == "counter":
                    metric.add_sample(f"{name}_total", dict(labels), value)
                elif ptype == "gauge":
                    metric.add_sample(name, dict(labels), value)
                else:
                    metric.add_sample(f"{name}_count", dict(labels), value[0])
                    metric.add_sample(f"{name}_sum", dict(labels), value[1])
            yield metric


def serve(statsd_host: str = "0.0.0.0", statsd_port: int = 9125, http_host: str = "0.0.0.0",  # noqa: S104 - a service
          http_port: int = 9102, prefix: str = "airflow", stop: threading.Event | None = None) -> None:
    """Receive StatsD on UDP `statsd_port`, serve `/metrics` on `http_port`, until `stop` is set."""
    from prometheus_client import CollectorRegistry, start_http_server

    store = StatsdStore(prefix)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(store)
    server, thread = start_http_server(http_port, http_host, registry=registry)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((statsd_host, statsd_port))
    sock.settimeout(0.5)
    log.info("metrics: StatsD on udp %s:%d, Prometheus on http://%s:%d/metrics", statsd_host, statsd_port,
             http_host, http_port)
    stop = stop or threading.Event()
    try:
        while not stop.is_set():
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            store.feed(data)
    finally:
        sock.close()
        server.shutdown()
        thread.join(timeout=5)
