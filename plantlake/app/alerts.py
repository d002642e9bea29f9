"""Alerts to plant IT, through Airflow's own notifiers.

Three incidents are told: an ingest run that failed for good (a terminal error, or a transient
one that outlived its retries), an audit that held a batch back, and a stale source (the quality
DAG's freshness check, `plantlake.pipeline.health`). Each is one message per incident, not per
retry or per failing run: the incident is opened by a create-only write in the lake
(`Lake.open_incident`), and only the writer that opened it sends. A source's run that ends well
closes its run incidents; the freshness check closes a stale one. A message that cannot be sent
closes its incident again, so the next occurrence tries once more.

The channel is the site config's `alerts` section: an Airflow Connection of type smtp, sent
through the SMTP provider's `SmtpNotifier`. Without it, incidents are recorded and logged.

This module is imported when the DAG file is parsed (the ingest tasks' `on_failure_callback`);
the config, the lake and the provider load when a callback runs.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

TITLES = {"failed": "ingest failed", "audit_blocked": "audit held a batch back", "stale": "stale, no recent data"}


def raise_incident(cfg: Any, lake: Any, source: str, kind: str, record: dict[str, Any],
                   context: dict[str, Any] | None = None) -> bool:
    """Open the source's incident of `kind` and, when this call opened it, send its one message.
    True when a message went out."""
    record = {"source": source, "kind": kind, "opened_at": datetime.now(UTC).isoformat(), **record}
    if not lake.open_incident(source, kind, record):
        log.info("source %s: incident %s already open; no new message", source, kind)
        return False
    if cfg.alerts is None:
        log.warning("source %s: incident %s opened (%s); no alerts are configured (site config `alerts`)",
                    source, kind, record.get("message"))
        return False
    try:
        _notifier(cfg, source, kind, record).notify(context or {})
    except Exception as exc:  # the incident stays unsent: closed again, so the next occurrence retries
        lake.close_incident(source, kind)
        log.error("source %s: the alert for incident %s could not be sent through connection %s: %s: %s",
                  source, kind, cfg.alerts.connection_id, exc.__class__.__name__, exc)
        return False
    log.warning("source %s: incident %s opened, alert sent to %s", source, kind, ", ".join(cfg.alerts.to))
    return True


def _notifier(cfg: Any, source: str, kind: str, record: dict[str, Any]) -> Any:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    site = f"{cfg.enterprise.id}/{cfg.site.id}"
    rows = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in record.items() if k != "message" and v is not None)
    body = (f"<p><b>{html.escape(site)}</b>: source <b>{html.escape(source)}</b> — {TITLES.get(kind, kind)}.</p>"
            f"<p>{html.escape(str(record.get('message', '')))}</p><table>{rows}</table>"
            "<p>This is the one message of this incident: it closes when the source publishes again.</p>")
    return SmtpNotifier(to=list(cfg.alerts.to), from_email=cfg.alerts.from_email, smtp_conn_id=cfg.alerts.connection_id,
                        subject=f"[plantlake] {site}: {source} {TITLES.get(kind, kind)}", html_content=body)


class IngestFailed(BaseNotifier):
    """The ingest tasks' `on_failure_callback` (Airflow calls it once the task has failed for good,
    not on a retry): opens the source's `failed` or `audit_blocked` incident."""

    def __init__(self, source: str, config_path: str) -> None:
        super().__init__()
        self.source, self.config_path = source, config_path

    def notify(self, context: Any) -> None:
        from plantlake.core.config import load_config
        from plantlake.core.errors import AuditFailed
        from plantlake.pipeline.health import AUDIT_BLOCKED, FAILED

        error = context.get("exception")
        cause = getattr(error, "__cause__", None) or error
        kind = AUDIT_BLOCKED if isinstance(cause, AuditFailed) else FAILED
        ti = context.get("ti")
        cfg = load_config(self.config_path)
        record = {
            "message": f"{cause.__class__.__name__}: {cause}" if cause is not None else "the task failed",
            "dag_id": getattr(ti, "dag_id", None), "run_id": context.get("run_id"),
            "task_id": getattr(ti, "task_id", None), "try_number": getattr(ti, "try_number", None),
            "interval": f"{context.get('data_interval_start')} .. {context.get('data_interval_end')}",
        }
        from plantlake.app.metrics import record_failure

        record_failure(self.source, kind)
        raise_incident(cfg, cfg.open_lake(), self.source, kind, record, context)
