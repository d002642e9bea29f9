"""Freshness and alerts through the real DAGs (`dag.test()`) and a real SMTP server on loopback:
one message per incident — a failed ingest, an audit that held a batch back, a stale source — never
one per retry or per failing run; the incident closes when the source publishes again."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.app.demo import write_historian_export
from tests.conftest import ROOT
from tests.servers import smtp_server

pytestmark = pytest.mark.dags

ALERTS = "alerts:\n  connection_id: plant_alerts\n  to: [plant-it@plant.test, shift-lead@plant.test]\n\nsources:\n"


@pytest.fixture
def mail(monkeypatch, plant_dir):
    """The site config with alerts to an SMTP server the test started (an Airflow Connection from the environment)."""
    with smtp_server() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_ALERTS", sink.connection())
        cfg = plant_dir / "plant.yaml"
        monkeypatch.setenv("PLANTLAKE_CONFIG", str(cfg))
        cfg.write_text(cfg.read_text().replace("\nsources:\n", "\n" + ALERTS, 1))
        yield sink


def _dags(plant_dir, edit=None):
    from airflow.dag_processing.dagbag import DagBag

    cfg = plant_dir / "plant.yaml"
    text = cfg.read_text().replace("    schedule:", "    retry_delay_s: 1\n    schedule:")
    cfg.write_text(edit(text) if edit else text)
    return DagBag(dag_folder=str(ROOT / "dags")).dags


def test_a_failing_source_alerts_once_per_incident_and_a_blocked_audit_is_told_apart(
        airflow_db, mail, plant_dir, monkeypatch):
    from plantlake.core.config import load_config
    from simulators.erp import ErpSimulator
    from simulators.story import Plant

    dags = _dags(plant_dir)
    erp = dags["plantlake_ingest_erp"]
    monkeypatch.delenv("AIRFLOW_CONN_PLANT_ERP", raising=False)
    start = datetime(2026, 1, 2, 6, tzinfo=UTC)
    for h in (1, 2):  # two runs fail on the missing connection: one incident, one message
        run = erp.test(logical_date=start + timedelta(hours=h))
        assert [(str(ti.state), ti.try_number) for ti in run.get_task_instances()] == [("failed", 1)]
    assert len(mail.messages) == 1
    message = mail.messages[0]
    assert message["Subject"] == "[plantlake] acme/shenzhen: erp ingest failed"
    assert message["To"] == "plant-it@plant.test, shift-lead@plant.test"
    assert message["From"] == "plantlake@plant.test"
    body = mail.bodies()[0]
    assert "ConnectionNotFound" in body and "plant_erp" in body and "plantlake_ingest_erp" in body
    lake = load_config(plant_dir / "plant.yaml").open_lake()
    assert set(lake.open_incidents("erp")) == {"failed"}

    # the ERP is back: the run publishes and closes the incident; the next failure is a new one
    url = f"sqlite:///{plant_dir / 'erp.sqlite'}"
    ErpSimulator(Plant(seed=42, start=datetime(2026, 1, 1, tzinfo=UTC)), url).sync(start + timedelta(hours=4))
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", url)
    assert str(erp.test(logical_date=start + timedelta(hours=3)).state) == "success"
    assert lake.open_incidents("erp") == {}
    assert lake.last_published("erp")["interval_end"] == (start + timedelta(hours=3)).isoformat()
    assert len(mail.messages) == 1
    monkeypatch.delenv("AIRFLOW_CONN_PLANT_ERP")
    assert str(erp.test(logical_date=start + timedelta(hours=4)).state) == "failed"
    assert len(mail.messages) == 2

    # a transient failure takes its retries without a message, and one when it has failed for good
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", "postgresql://erp:pw@127.0.0.1:1/erp")  # nothing listens on port 1
    lake.close_incident("erp", "failed")
    retried = erp.test(logical_date=start + timedelta(hours=5))
    assert [ti.try_number for ti in retried.get_task_instances()] == [4]  # the shipped 3 retries
    assert len(mail.messages) == 3 and "SourceUnavailable" in mail.bodies()[2]

    # the historian export's 65535 kN glitch, under a policy that tolerates no bad row: the audit holds the batch
    write_historian_export(plant_dir / "drop" / "historian", start, hours=1)
    strict = _dags(plant_dir, lambda t: t.replace("    kind: csv\n", "    kind: csv\n    max_bad_share: 0.0\n", 1))
    blocked = strict["plantlake_ingest_historian_export"].test(logical_date=start + timedelta(hours=1))
    assert str(blocked.state) == "failed"
    assert len(mail.messages) == 4
    assert mail.messages[3]["Subject"] == "[plantlake] acme/shenzhen: historian_export audit held a batch back"
    assert "AuditFailed" in mail.bodies()[3]
    assert set(lake.open_incidents("historian_export")) == {"audit_blocked"}


def test_the_quality_dag_records_freshness_and_alerts_once_on_a_stale_source(airflow_db, mail, plant_dir):
    from plantlake.core.config import load_config
    from schemas import get_table

    # only the historian export is held to a freshness (the others record their lag)
    dags = _dags(plant_dir, lambda t: re.sub(r"\n    freshness: 2h[^\n]*", "", t).replace(
        "    kind: csv\n", "    kind: csv\n    freshness: 90m\n", 1))
    old = datetime(2026, 3, 1, 9, tzinfo=UTC)
    write_historian_export(plant_dir / "drop" / "historian", old, hours=1)
    assert str(dags["plantlake_ingest_historian_export"].test(logical_date=old + timedelta(hours=1)).state) == "success"
    quality = dags["plantlake_quality"]
    first = quality.test()
    assert str(first.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in first.get_task_instances()}
    assert states == {"cross_source_checks": "success", "data_docs": "success", "source_freshness": "failed"}
    assert len(mail.messages) == 1
    assert mail.messages[0]["Subject"] == "[plantlake] acme/shenzhen: historian_export stale, no recent data"
    assert "last published interval ended 2026-03-01T10:00:00+00:00" in mail.bodies()[0]
    assert "freshness 1 h 30 min" in mail.bodies()[0]
    assert str(quality.test().state) == "failed"  # still stale: no second message
    assert len(mail.messages) == 1

    lake = load_config(plant_dir / "plant.yaml").open_lake()
    rows = lake.read(get_table("source_freshness")).to_pylist()
    historian = sorted((r for r in rows if r["source"] == "historian_export"), key=lambda r: r["checked_at"])
    assert [r["state"] for r in historian] == ["stale", "stale"]
    assert historian[0]["freshness_s"] == 5400
    assert historian[0]["last_interval_end"] == old + timedelta(hours=1)
    assert historian[0]["lag_s"] == pytest.approx((historian[0]["checked_at"] - old - timedelta(hours=1)).total_seconds())
    others = {r["source"]: r["state"] for r in rows if r["source"] != "historian_export"}
    assert others == dict.fromkeys(("opcua_plant", "mqtt_plant", "camera_images", "erp"), "unchecked")
    assert {r["run_id"] for r in rows} == {first.run_id, *{r["run_id"] for r in historian[1:]}}

    # the last full hour arrives: fresh again, the incident closes, the check passes
    recent = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    write_historian_export(plant_dir / "drop" / "historian", recent, hours=1)
    assert str(dags["plantlake_ingest_historian_export"].test(
        logical_date=recent + timedelta(hours=1)).state) == "success"
    assert str(quality.test().state) == "success"
    assert lake.open_incidents("historian_export") == {}
    latest = max((r for r in lake.read(get_table("source_freshness")).to_pylist()
                  if r["source"] == "historian_export"), key=lambda r: r["checked_at"])
    assert latest["state"] == "fresh" and latest["lag_s"] < 2 * 3600 and latest["incident"] is None
    assert len(mail.messages) == 1
