"""Airflow: one ingest DAG per source configured in the site config (plant.yaml), and the
quality DAG the ingest DAGs' published Assets trigger.

Orchestration only: the DAGs are built by plantlake.orchestration, the work runs in
plantlake.runner inside the task.
"""

from __future__ import annotations

from plantlake.orchestration import build_ingest_dags, build_quality_dag

globals().update(build_ingest_dags())
plantlake_quality = build_quality_dag()
