"""Build manifests: what a product build read, so that the set can be built again exactly.

A build pins every table it reads to the table's Delta version before it reads, stamps its
rows with its run id and build time, and keeps a manifest beside the product table
(`products/_manifests/<product>/date=<day>/`): the input versions, the product settings it
used, the set's content hash (sha256 of the rows written as Parquet with fixed settings), and
the product table version its publish committed.

`rebuild` replays a manifest — the same input versions, settings and stamp — and writes the
same bytes: a training set can be taken again exactly as a model was trained on it, after new
data and corrected verdicts arrived. The label is the verdict the pinned `quality_inspections`
version held: what the lake knew at build time, never a later correction. An as-of time with
no build of that day at or before it builds from each input's version current at that time.

Replays need the input versions' files: compaction vacuums files replaced longer ago than
`lake.vacuum_retention_hours`, and a replay older than that fails naming the setting.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from plantlake.core.config import PlantConfig, ProductSettings
from plantlake.core.errors import ConfigError
from plantlake.core.lake import Lake

log = logging.getLogger(__name__)

PREFIX = "products/_manifests"


@dataclass
class Manifest:
    product: str
    day: str
    run_id: str
    #: the build's time: the rows' ingested_at and, for open orders, "now"
    built_at: str
    #: each input table's Delta version the build read (None: the table did not exist)
    inputs: dict[str, int | None]
    settings: dict[str, Any]
    rows: int
    #: sha256 of the set as `parquet_bytes` writes it
    content_hash: str
    #: the product table's version the publish committed, and what the audit let through
    version: int | None = None
    published: int | None = None
    quarantined: int | None = None
    #: the libraries whose output the hash depends on
    software: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        stamp = datetime.fromisoformat(self.built_at).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{PREFIX}/{self.product}/date={self.day}/{stamp}__{self.content_hash[:12]}.json"

    @property
    def when(self) -> datetime:
        return datetime.fromisoformat(self.built_at)


def software() -> dict[str, str]:
    import duckdb
    import pyarrow as pa

    import plantlake

    return {"plantlake": plantlake.__version__, "pyarrow": pa.__version__, "duckdb": duckdb.__version__}


def parquet_bytes(data: Any) -> bytes:
    """The set as one Parquet file with fixed settings: the bytes the content hash is taken of and
    a rebuild writes."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(data, buf, compression="zstd", row_group_size=1 << 20, write_statistics=True)
    return buf.getvalue()


def content_hash(data: Any) -> str:
    return hashlib.sha256(parquet_bytes(data)).hexdigest()


def pin(lake: Lake, tables: tuple[str, ...], at: datetime | None = None) -> dict[str, int | None]:
    """Each table's Delta version now (or current at `at`)."""
    from schemas import get_table

    if at is None:
        return {t: lake.version(get_table(t)) for t in tables}
    return {t: lake.version_at(get_table(t), at) for t in tables}


def save(lake: Lake, manifest: Manifest) -> str:
    lake.storage.put(manifest.key, json.dumps(asdict(manifest), indent=1, sort_keys=True).encode())
    return manifest.key


def manifests(lake: Lake, product: str, day: date | None = None) -> list[Manifest]:
    """The product's manifests (of one day), oldest build first."""
    prefix = f"{PREFIX}/{product}" + (f"/date={day.isoformat()}" if day else "")
    found = [Manifest(**json.loads(lake.storage.get(k))) for k in lake.storage.list(prefix) if k.endswith(".json")]
    return sorted(found, key=lambda m: (m.built_at, m.key))


def find(lake: Lake, product: str, as_of: int | datetime, day: date | None) -> Manifest | None:
    """The build that committed product table version `as_of`, or the newest build of `day` at or
    before the time `as_of` (None: there was none)."""
    if isinstance(as_of, int):
        hit = [m for m in manifests(lake, product) if m.version == as_of]
        if not hit:
            raise ConfigError(f"products: no build of {product} committed version {as_of} "
                              f"(manifests under {lake.storage.uri(PREFIX)}/{product}); "
                              "`plantlake products manifests` lists them")
        return hit[-1]
    if day is None:
        raise ConfigError("products build --as-of <time> needs --day: the UTC day whose set to rebuild")
    before = [m for m in manifests(lake, product, day) if m.when <= as_of]
    return before[-1] if before else None


def build(lake: Lake, cfg: PlantConfig, product: str, day: date, run_id: str, *,
          inputs: dict[str, int | None] | None = None, built_at: datetime | None = None) -> tuple[Any, Manifest]:
    """Build one product of one day from pinned inputs (default: every input's current version);
    returns the set and its manifest (not yet saved: the publish adds its version)."""
    from plantlake.pipeline.products import PRODUCTS, order_context, training_set

    builders = {"order_context": order_context.build, "image_training_set": training_set.build}
    built_at = built_at or datetime.now(UTC)
    inputs = inputs if inputs is not None else pin(lake, PRODUCTS[product])
    data = builders[product](lake, cfg, day, run_id, versions=inputs, now=built_at)
    return data, Manifest(product, day.isoformat(), run_id, built_at.isoformat(), inputs,
                          cfg.products.model_dump(), data.num_rows, content_hash(data), software=software())


def rebuild(lake: Lake, cfg: PlantConfig, product: str, as_of: int | datetime,
            day: date | None = None) -> tuple[Any, Manifest, Manifest | None]:
    """The product's set as it was: the build that committed version `as_of`, or the build of `day`
    in effect at the time `as_of`, replayed — or, with none at that time, built from each input's
    version current then. Returns the set, its manifest and the replayed one (None: no build)."""
    from plantlake.pipeline.products import PRODUCTS

    past = find(lake, product, as_of, day)
    if past is None:
        assert isinstance(as_of, datetime)
        return (*build(lake, cfg, product, day, f"as-of {as_of.isoformat()}",  # type: ignore[arg-type]
                       inputs=pin(lake, PRODUCTS[product], as_of), built_at=as_of), None)
    from schemas import get_table

    for name, version in past.inputs.items():
        gone = [] if version is None else lake.missing_files(get_table(name), version)
        if gone:
            raise ConfigError(f"products: the {past.day} build of {product} read {name} version {version}, and "
                              f"{len(gone)} of its files were vacuumed since (e.g. {gone[0]}); set "
                              "lake.vacuum_retention_hours longer than the age of the sets you rebuild")
    replay = cfg.model_copy(update={"products": ProductSettings(**past.settings)})
    data, now = build(lake, replay, product, date.fromisoformat(past.day), past.run_id,
                      inputs=past.inputs, built_at=past.when)
    if now.content_hash != past.content_hash:
        log.warning("rebuild of %s %s: content hash %s differs from the build's %s (software then %s, now %s)",
                    product, past.day, now.content_hash[:12], past.content_hash[:12], past.software, now.software)
    return data, now, past
