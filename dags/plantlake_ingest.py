"""Airflow: one ingest DAG per source configured in the site config (plant.yaml).

Orchestration only: the DAGs are built by plantlake.orchestration, the work runs in
plantlake.runner inside the task.
"""

from __future__ import annotations

from plantlake.orchestration import build_ingest_dags

globals().update(build_ingest_dags())
