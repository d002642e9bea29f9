"""Airflow: one ingest DAG per source configured in the site config (plant.yaml); the quality
and products DAGs the ingest DAGs' published Assets trigger; the daily compaction.

Orchestration only: the DAGs are built by plantlake.app.orchestration, the work runs in
plantlake.pipeline.runner inside the task.
"""

from __future__ import annotations

from plantlake.app.orchestration import (
    build_compaction_dag,
    build_ingest_dags,
    build_products_dag,
    build_quality_dag,
)

globals().update(build_ingest_dags())
plantlake_quality = build_quality_dag()
plantlake_products = build_products_dag()
plantlake_compaction = build_compaction_dag()
