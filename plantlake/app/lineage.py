"""OpenLineage events of plantlake's tasks, emitted by Airflow's OpenLineage provider.

The provider's listener emits a START and a COMPLETE (or FAIL) event per task; what a task read
and wrote comes from an extractor. plantlake's tasks are `@task` functions, so `PlantlakeExtractor`
(registered with `[openlineage] extractors`) takes over the provider's Python extractor: on
completion it returns the datasets the task recorded here while it ran (`record`), in the same
process, and for other Python tasks does what the provider's own extractor does.

Datasets follow OpenLineage's naming: a lake table is `file://<host>` + its folder, or
`s3://<bucket>` + its key; a source is its system's URI (`opc.tcp://host:port/path`,
`mqtt://host:port`, `postgresql://host:port/db`, `sqlite:///path`, `file://<host>`) + the
reference the site config reads there (a node selector or node id, a topic filter, a table, a
folder). Facets of plantlake's own (schemas in `docs/lineage-facets.json`):
`plantlake_sourceRefs` on every dataset (the configured source, its kind, origin and references),
`plantlake_table` on a written table (the Delta version committed, rows published and
quarantined, the data interval) and the `plantlake_run` run facet (the Airflow run id the rows
carry in `run_id`, and for products the build manifest). `plantlake trace` reads them back.
"""

from __future__ import annotations

import logging
import socket
from typing import Any
from urllib.parse import urlparse

import attr
from airflow.providers.openlineage.extractors.python import PythonExtractor
from openlineage.client.facet_v2 import DatasetFacet, RunFacet

log = logging.getLogger(__name__)

SCHEMA = "https://plantlake.invalid/spec/lineage-facets.json#/$defs/"  # docs/lineage-facets.json
#: what each running task recorded, by (dag, task, run, map index); popped when its COMPLETE is emitted
_COLLECTED: dict[tuple[str, str, str, int], Any] = {}


@attr.define
class SourceRefsDatasetFacet(DatasetFacet):
    """Which configured source a dataset is read by or written from, and what it reads there."""

    source: str
    kind: str
    origin: str
    refs: list[str]

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA + "SourceRefsDatasetFacet"


@attr.define
class TableDatasetFacet(DatasetFacet):
    """What a task committed to a lake table."""

    version: int | None
    rows: int
    quarantined: int
    interval: list[str]

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA + "TableDatasetFacet"


@attr.define
class PlantlakeRunFacet(RunFacet):
    """The run id plantlake stamped on the rows (their `run_id` column), and a product build's manifest."""

    run_id: str
    manifests: list[str] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA + "PlantlakeRunFacet"


class PlantlakeExtractor(PythonExtractor):
    """The datasets a plantlake task recorded; the provider's Python extractor for any other task."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def extract_on_complete(self, task_instance: Any) -> Any:
        found = _COLLECTED.pop(_key(task_instance), None)
        return found if found is not None else super().extract_on_complete(task_instance)


def _key(ti: Any) -> tuple[str, str, str, int]:
    index = getattr(ti, "map_index", None)
    return ti.dag_id, ti.task_id, ti.run_id, -1 if index is None else index


def enabled() -> bool:
    from airflow.providers.openlineage import conf

    return not conf.is_disabled()


def record(context: dict[str, Any], inputs: list[Any], outputs: list[Any], run_id: str,
           manifests: list[str] | None = None) -> None:
    """Keep a running task's datasets for its COMPLETE event (nothing when OpenLineage is off)."""
    if not enabled():
        return
    from airflow.providers.openlineage.extractors import OperatorLineage

    _COLLECTED[_key(context["ti"])] = OperatorLineage(
        inputs=inputs, outputs=outputs, run_facets={"plantlake_run": PlantlakeRunFacet(run_id, manifests or [])})


def lake_dataset(lake: Any, table: Any, *, version: int | None = None, rows: int = 0, quarantined: int = 0,
                 interval: list[str] | None = None, refs: Any = None, output: bool = True) -> Any:
    """A lake table as an OpenLineage dataset, with its schema (and, written, what was committed)."""
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

    namespace, name = split_uri(lake.table_uri(table))
    facets: dict[str, Any] = {"schema": schema_dataset.SchemaDatasetFacet(fields=[
        schema_dataset.SchemaDatasetFacetFields(name=c.name, type=str(c.type), description=c.description)
        for c in table.columns])}
    if version is not None:  # the Delta table version read or committed
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(version))
    if output:
        facets["plantlake_table"] = TableDatasetFacet(version, rows, quarantined, interval or [])
    if refs is not None:  # the SourceRefsDatasetFacet of the source that wrote it
        facets["plantlake_sourceRefs"] = refs
    return (OutputDataset if output else InputDataset)(namespace=namespace, name=name, facets=facets)


def split_uri(uri: str) -> tuple[str, str]:
    """(namespace, name) of a lake location: `s3://bucket` + key, or `file://<host>` + path."""
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a", "gs", "az", "abfss"):
        return f"{parsed.scheme}://{parsed.netloc}", parsed.path.lstrip("/")
    return f"file://{socket.gethostname()}", uri.removeprefix("file://")


def source_datasets(summary: Any) -> tuple[list[Any], Any]:
    """A run's inputs (one dataset per reference it reads) and the facet naming them."""
    from openlineage.client.event_v2 import InputDataset

    facet = SourceRefsDatasetFacet(summary.source, summary.kind, summary.origin, list(summary.refs))
    parsed = urlparse(summary.origin)
    namespace = f"{parsed.scheme}://{parsed.netloc}" if parsed.netloc else summary.origin
    base = parsed.path if parsed.netloc else ""
    refs = summary.refs or [summary.source]
    return [InputDataset(namespace=namespace, name=f"{base}/{ref}" if base and not ref.startswith("/") else ref,
                         facets={"plantlake_sourceRefs": SourceRefsDatasetFacet(summary.source, summary.kind,
                                                                                summary.origin, [ref])})
            for ref in refs], facet


def record_ingest(context: dict[str, Any], lake: Any, summary: Any) -> None:
    """An ingest run: the source's references in, the curated tables it published out."""
    if not enabled():
        return
    from schemas import get_table

    inputs, facet = source_datasets(summary)
    outputs = [lake_dataset(lake, get_table(name), version=t.version, rows=t.published, quarantined=t.quarantined,
                            interval=[summary.interval_start, summary.interval_end], refs=facet)
               for name, t in summary.tables.items()]
    record(context, inputs, outputs, summary.run_id)


def record_tables(context: dict[str, Any], lake: Any, read: list[tuple[str, int | None]],
                  written: list[tuple[str, Any]], run_id: str, manifests: list[str] | None = None) -> None:
    """A task over lake tables (checks, products): the tables (and versions) read, the ones written
    (name, (version, rows, quarantined, interval))."""
    if not enabled():
        return
    from schemas import get_table

    inputs = [lake_dataset(lake, get_table(t), version=v, output=False) for t, v in read]
    outputs = [lake_dataset(lake, get_table(t), version=v, rows=rows, quarantined=q, interval=iv)
               for t, (v, rows, q, iv) in written]
    record(context, inputs, outputs, run_id, manifests)
