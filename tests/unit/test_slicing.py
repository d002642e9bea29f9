"""The slicing pass (plantlake/pipeline/slicing.py) on raw files as the landing writes them:
every row in exactly one slice with its whole series, in arrival order, and the scratch files
keep the strings dictionary-encoded while a slice's load hands decode the raw schema."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.base import RAW
from plantlake.pipeline.slicing import slices

pytestmark = pytest.mark.unit

SCHEMA = pa.schema([("source_ref", pa.string()), ("unit", pa.string()), ("value", pa.float64())])


def test_every_row_lands_in_the_slice_of_its_series_in_order_with_strings_rebuilt_on_load(tmp_path):
    refs = [f"nsu=urn:plant;s=tag{i % 7}" for i in range(7000)]
    raw = pa.table({"source_ref": refs, "unit": ["kN" if i % 2 else None for i in range(7000)],
                    "value": [float(i) for i in range(7000)]}, schema=SCHEMA)
    paths = []
    for k in range(3):  # three landed chunks, each with its own Parquet dictionaries
        path = tmp_path / f"raw{k}.parquet"
        pq.write_table(raw.slice(k * 2500, 2500), path, row_group_size=600)
        paths.append(str(path))
    spill = tmp_path / "_raw_slices" / "src__iv__0001"
    parts = slices(SimpleNamespace(slice_column="source_ref"), SimpleNamespace(slice_rows=2500),
                   SimpleNamespace(streams={RAW: SimpleNamespace(schema=SCHEMA)}), {RAW: paths}, raw.num_rows, [], spill)
    assert len(parts) == 4  # 7 series of 1000 rows, at most 2500 rows a slice: two series each, then one
    scratch = sorted(spill.iterdir())
    with pa.OSFile(str(scratch[0])) as fh:
        spilled = pa.ipc.open_stream(fh).schema
    assert pa.types.is_dictionary(spilled.field("source_ref").type) and pa.types.is_dictionary(spilled.field("unit").type)
    seen = []
    for load, values, present in parts:
        data = load()[RAW]
        assert data.schema == SCHEMA  # decode sees the raw schema, strings as strings
        assert set(data["source_ref"].to_pylist()) == values and len(present) == 7
        for ref in values:  # a whole series, in arrival order
            mine = [r["value"] for r in data.to_pylist() if r["source_ref"] == ref]
            assert mine == [float(i) for i in range(7000) if refs[i] == ref]
        seen += data.to_pylist()
    assert sorted(seen, key=lambda r: r["value"]) == raw.to_pylist()
    assert not list(spill.iterdir())  # each scratch file is deleted as it is read
