"""GX Data Docs for the lake, built from the kept validation results into `_quality/docs/`.

Every suite (each table's, plus the per-source suites that carry site rules, plus the
cross-source checks) gets a page; every validation result under `_quality/results/` gets a
page, linked from the index. Pages already built are not rendered again: a build renders
the results written since the last one and refreshes the index.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from plantlake.core.config import PlantConfig
from plantlake.core.lake import Lake
from quality.results import kept_results

SITE = "plantlake"


def docs_dir(lake: Lake) -> Path:
    return lake.quality_dir / "docs"


def _suites(cfg: PlantConfig) -> list[Any]:
    from quality import cross_source
    from quality.suites import build_suite, site_rules
    from schemas import get_table
    from schemas.tables import TABLES

    suites = {}
    for table in TABLES.values():
        s = build_suite(table)
        suites[s.name] = s
        for src in cfg.sources:
            if site_rules(table, src):
                s = build_suite(table, src)
                suites[s.name] = s
    s = build_suite(get_table(cross_source.TABLE), None, cross_source.specs(cfg))
    suites[s.name] = s
    return list(suites.values())


def build_data_docs(lake: Lake, cfg: PlantConfig) -> Path:
    """Build (or bring up to date) the Data Docs site; return its index.html."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    import quality.expectations  # noqa: F401 - registers plantlake's own expectations for rendering

    out = docs_dir(lake)
    index = out / "index.html"
    built_at = index.stat().st_mtime if index.exists() else 0.0
    ctx = gx.get_context(mode="ephemeral")
    ctx.add_data_docs_site(SITE, {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    fresh: list[Any] = []
    for suite in _suites(cfg):
        ctx.suites.add(suite)
        fresh.append(ExpectationSuiteIdentifier(suite.name))
    schema = ExpectationSuiteValidationResultSchema()
    for stem, kept in kept_results(lake):
        if not kept.get("validation"):
            continue  # the staged files failed their file-level checks before GX ran
        key = ValidationResultIdentifier(
            ExpectationSuiteIdentifier(kept["suite"]),
            RunIdentifier(run_name=kept["run_id"], run_time=kept["validated_at"]),
            batch_identifier=f"{kept['source']}__{stem}" if kept["source"] not in stem else stem)
        ctx.validation_results_store.set(key, schema.load(kept["validation"]))
        if datetime.fromisoformat(str(kept["validated_at"])).timestamp() >= built_at:
            fresh.append(key)
    ctx.build_data_docs(site_names=[SITE], resource_identifiers=fresh)
    return index
