"""How a run reads its landed raw rows for decode: in one pass, or in slices of whole series.

One slice (everything) unless the interval holds more than the source's `slice_rows` raw rows
and the connector names a `slice_column`; see `slices`. Each slice is decoded, conformed,
staged and audited on its own, and all are published together (plantlake.pipeline.publish).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plantlake.core.lake import STALE_STAGING_S


def slices(connector: Any, src: Any, extract: Any, raw_paths: dict[str, list[str]], raw_rows: int,
           tables: list, spill: Path, open_raw: Callable[[str], Any] = str,
           ) -> list[tuple[Callable[[], Any], set | None, set | None]]:
    """How the landed raw rows are read for decode: (loader, the slice's `slice_column`
    values, every value of the interval) per slice; the values are None for one pass.

    One slice (everything) unless the interval holds more than the source's `slice_rows` raw
    rows and the connector names a `slice_column` (its decode treats rows on their own, and the
    column decides the key's series, e.g. the node or tag reference). Then the column's values
    are packed, in sorted order, into slices of at most `slice_rows` rows (a value with more
    rows is a slice of its own), and one pass over the raw files, a batch at a time, writes each
    row to its slice's file under `spill`: every row of a series, and so every possible
    duplicate key, is in one slice, rows keep their arrival order, and memory is bounded by the
    slice, not by the interval. Upserted tables (key_scope 'latest') are never sliced. Only the
    main stream (`RAW`) is sliced; a source's other streams (an OPC UA server's events) come whole
    with the first slice.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from connectors.base import RAW

    def whole(names: Any = None) -> Any:
        return {name: pa.concat_tables([pq.read_table(open_raw(p), schema=s.schema) for p in raw_paths[name]])
                if raw_paths[name] else (s.schema or pa.schema([])).empty_table() for name, s in extract.streams.items()
                if names is None or name in names}

    column = getattr(connector, "slice_column", None)
    if (RAW not in extract.streams or column is None or raw_rows <= src.slice_rows
            or any(t.key_scope == "latest" for t in tables)):
        return [(whole, None, None)]
    paths = raw_paths[RAW]
    schema = extract.streams[RAW].schema or pq.read_schema(open_raw(paths[0]))
    counts: Counter[Any] = Counter()
    for p in paths:
        values = pq.read_table(open_raw(p), columns=[column])[column]
        for entry in pc.value_counts(values):
            counts[entry["values"].as_py()] += entry["counts"].as_py()
    slice_of: dict[Any, int] = {}
    current = filled = 0
    for value in sorted(counts, key=lambda v: (v is None, v or "")):
        if filled and filled + counts[value] > src.slice_rows:
            current, filled = current + 1, 0
        slice_of[value] = current
        filled += counts[value]
    n = current + 1
    prefix = spill.name.rsplit("__", 1)[0]  # a killed run of this interval may have left its scratch files
    for old in spill.parent.glob(f"{prefix}__*") if spill.parent.exists() else ():
        if time.time() - old.stat().st_mtime > STALE_STAGING_S:
            shutil.rmtree(old, ignore_errors=True)
    spill.mkdir(parents=True, exist_ok=True)
    # scratch files, read once: Arrow IPC streams (no compression), never fsynced. String columns
    # stay dictionary-encoded as Parquet stores them (raw rows repeat their node, asset, tag and
    # unit): the pass moves indices, not strings, and a slice's strings are built once, on load.
    # A stream (not the IPC file format) lets each batch bring its own dictionaries.
    strings = [f.name for f in schema if pa.types.is_string(f.type)]
    spilled = pa.schema([pa.field(f.name, pa.dictionary(pa.int32(), f.type), f.nullable) if f.name in strings else f
                         for f in schema])
    writers = [pa.ipc.new_stream(spill / f"{i:04d}.arrows", spilled) for i in range(n)]
    try:
        for p in paths:
            for batch in pq.ParquetFile(open_raw(p), read_dictionary=strings).iter_batches(batch_size=256 * 1024):
                batch = pa.Table.from_batches([batch]).cast(spilled)
                enc = pc.dictionary_encode(batch[column]).combine_chunks()
                # a Parquet dictionary may name values no row of the batch has: any slice does for them
                ids = np.array([slice_of.get(v, 0) for v in enc.dictionary.to_pylist()], dtype=np.int32)
                target = ids[enc.indices.fill_null(0).to_numpy()] if len(ids) else np.zeros(batch.num_rows, np.int32)
                if enc.null_count:
                    target[enc.is_null().to_numpy(zero_copy_only=False)] = slice_of[None]
                if n == 1:
                    writers[0].write_table(batch)
                    continue
                # one stable reorder by slice, then a zero-copy range per slice (not a filter per slice)
                grouped = batch.take(pa.array(np.argsort(target, kind="stable")))
                ends = np.cumsum(np.bincount(target, minlength=n))
                for i in np.flatnonzero(np.bincount(target, minlength=n)):
                    start = ends[i - 1] if i else 0
                    writers[i].write_table(grouped.slice(start, ends[i] - start))
    finally:
        for w in writers:
            w.close()

    def load(i: int) -> Any:
        path = spill / f"{i:04d}.arrows"
        with pa.OSFile(str(path)) as fh:
            data = pa.ipc.open_stream(fh).read_all()
        path.unlink()
        # the source's other streams (an OPC UA server's events) are small: whole, with the first slice
        return {RAW: data.cast(schema), **(whole(set(extract.streams) - {RAW}) if i == 0 else {})}

    present = set(counts)
    return [(lambda i=i: load(i), {v for v, k in slice_of.items() if k == i}, present) for i in range(n)]


def slice_source(src: Any, values: set | None, present: set | None, first: bool) -> Any:
    """The source config a slice's audit sees: a required tag is required of the slice that
    holds its reference, and of the first slice when no slice does (so its absence fails)."""
    if values is None or not any(t.required for t in src.tags):
        return src
    keep = [t for t in src.tags if not t.required or t.ref in values or (first and t.ref not in present)]
    return src.model_copy(update={"tags": keep})
