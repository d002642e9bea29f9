"""The tables' commit protocol (plantlake/core/tables.py) on S3-compatible object storage: moto's
standalone server on loopback, which the tests start and stop. Reruns replace, upserts keep the
newest version, compaction and vacuum work; two writer processes commit to one table and lose
nothing; a writer SIGKILLed mid-commit leaves the old version or the new, never a partial one."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from plantlake.core import tables
from schemas import get_table
from tests.conftest import ROOT
from tests.servers import s3_server
from tests.unit.test_lake import readings

pytestmark = [pytest.mark.faults, pytest.mark.s3]

SENSOR = get_table("sensor_readings")
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


def _replace(s3, uri: str, data: pa.Table, source: str, key: str) -> int:
    return tables.replace(uri, s3.storage_options, lambda: [data], SENSOR.arrow_schema(), source=source,
                          interval_key=key, partition_column="ts", metadata={"plantlake.table": "sensor_readings"})


def _rows(s3, uri: str) -> pa.Table:
    return tables.dataset(uri, s3.storage_options).to_table()


def test_reruns_replace_upserts_keep_the_newest_and_compaction_vacuums_on_s3(s3):
    uri = s3.uri("roundtrip", "sensor_readings")
    assert _replace(s3, uri, readings(T0, 100), "src", "i1") == 0
    _replace(s3, uri, readings(T0 + timedelta(hours=1), 50), "src", "i2")
    _replace(s3, uri, readings(T0 + timedelta(hours=2), 80), "other", "i1")
    _replace(s3, uri, readings(T0, 10, value=7.0), "src", "i1")  # the rerun of src's first interval
    rows = _rows(s3, uri)
    assert rows.num_rows == 10 + 50 + 80
    owners = rows.group_by(["_source", "_interval"]).aggregate([("value", "count")]).to_pylist()
    assert sorted((o["_source"], o["_interval"], o["value_count"]) for o in owners) == [
        ("other", "i1", 80), ("src", "i1", 10), ("src", "i2", 50)]
    # the replaced files are still in the bucket (older snapshots read them) until the vacuum
    data_keys = [k for k in s3.keys("roundtrip/") if k.endswith(".parquet") and "_delta_log" not in k]
    assert len(data_keys) == 4 and len(tables.file_uris(uri, s3.storage_options)) == 3
    done = tables.compact(uri, s3.storage_options, "2026-03-01", retention_hours=0)
    assert done["numFilesRemoved"] == 3 and done["numFilesAdded"] == 1 and done["vacuumed"] == 4
    assert _rows(s3, uri).num_rows == 140
    assert len([k for k in s3.keys("roundtrip/") if k.endswith(".parquet") and "_delta_log" not in k]) == 1

    orders = get_table("production_orders")
    ouri = s3.uri("roundtrip", "production_orders")
    base = {"material_id": "M1", "line_id": "acme/l1", "status": "released", "quantity_planned": 10,
            "ingested_at": T0, "run_id": "r"}

    def upsert(rows: list[dict]) -> tuple[int, int]:
        return tables.upsert(ouri, s3.storage_options, pa.Table.from_pylist(rows, schema=orders.arrow_schema()),
                             orders.arrow_schema(), key=orders.primary_key, version_column="updated_at", source="erp",
                             interval_key="i", partition_column=None, metadata={})

    upsert([{**base, "order_id": "PO1", "updated_at": T0 + timedelta(hours=2)},
            {**base, "order_id": "PO2", "updated_at": T0}])
    _, replaced = upsert([{**base, "order_id": "PO1", "status": "running", "updated_at": T0 + timedelta(hours=1)},
                          {**base, "order_id": "PO2", "status": "completed", "updated_at": T0 + timedelta(hours=3)}])
    assert replaced == 1  # PO2 only: PO1's late, older version never overwrites the newer one
    got = {r["order_id"]: r["status"] for r in _rows(s3, ouri).to_pylist()}
    assert got == {"PO1": "released", "PO2": "completed"}


WRITER = f"""
import sys
from datetime import UTC, datetime, timedelta
import pyarrow as pa
from plantlake.core import tables
from schemas import get_table
sys.path.insert(0, {str(ROOT)!r})
from tests.unit.test_lake import readings

endpoint, uri, me, rounds, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
options = {{"AWS_ACCESS_KEY_ID": "plantlake-test", "AWS_SECRET_ACCESS_KEY": "plantlake-test",
           "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
           "conditional_put": "etag"}}
schema = get_table("sensor_readings").arrow_schema()
t0 = datetime(2026, 3, 1, tzinfo=UTC)
for k in range(rounds):
    data = readings(t0 + timedelta(hours=k % 24), rows, step_s=0.001, value=float(me * 100000 + k))
    data = data.set_column(2, schema.field("asset_id"), pa.array([f"acme/s/a/l1/press{{me}}"] * rows))
    tables.replace(uri, options, lambda: [data], schema, source=f"writer{{me}}", interval_key=f"i{{k % 24}}",
                   partition_column="ts", metadata={{"plantlake.run_id": f"w{{me}}-{{k}}"}})
    print(k, flush=True)
"""


def _writer(s3, uri: str, me: int, rounds: int, rows: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, s3.endpoint, uri, str(me), str(rounds), str(rows)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_commit_to_one_s3_table_and_lose_nothing(s3, reliability):
    uri = s3.uri("concurrent", "sensor_readings")
    rounds, rows = 8, 500
    procs = [_writer(s3, uri, me, rounds, rows) for me in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    data = _rows(s3, uri)
    keys = set(zip(data["asset_id"].to_pylist(), data["ts"].to_pylist(), strict=True))
    assert data.num_rows == len(keys) == 2 * rounds * rows
    history = tables.load(uri, s3.storage_options).history()
    runs = [h["plantlake.run_id"] for h in reversed(history) if "plantlake.run_id" in h]
    assert sorted(runs) == sorted(f"w{me}-{k}" for me in (1, 2) for k in range(rounds))
    reliability("two writer processes commit to one table on S3 (moto)", data_in=2 * rounds * rows,
                data_out=len(keys), lost=2 * rounds * rows - len(keys), duplicates=data.num_rows - len(keys),
                unit="sensor rows", note=f"{len(runs)} commits, one version each")


def test_a_writer_killed_mid_commit_on_s3_leaves_the_old_version_or_the_new(s3, reliability):
    uri = s3.uri("killed", "sensor_readings")
    rows = 200_000
    first = _writer(s3, uri, 1, 1, rows)
    assert first.wait(300) == 0, first.stderr.read()
    rng = random.Random(3)
    seen = set()
    for _ in range(4):
        proc = _writer(s3, uri, 1, 1000, rows)  # rewrites interval i0, i1, … with the round in the value
        t0 = time.monotonic()
        assert proc.stdout.readline().strip() == "0", proc.stderr.read()
        cycle = time.monotonic() - t0
        time.sleep(rng.random() * min(cycle, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        data = _rows(s3, uri)
        by_interval = data.group_by(["_interval"]).aggregate([("value", "count"), ("value", "min"), ("value", "max")])
        for r in by_interval.to_pylist():  # each interval holds one whole write: all its rows, one round's values
            assert r["value_count"] == rows and r["value_max"] - r["value_min"] == rows - 1, r
        seen.add(tables.load(uri, s3.storage_options).version())
    assert len(seen) >= 2, f"no commit went through between the kills: {seen}"
    reliability("writer SIGKILLed mid-commit on S3 (4 kills)", data_in=rows, data_out=rows, lost=0, duplicates=0,
                unit="rows of each interval", note="every interval holds one whole write; versions seen: "
                f"{sorted(seen)}")


def test_state_versions_on_s3_are_create_only_so_one_of_two_racing_writers_wins(s3):
    """The compare-and-swap versioned state rests on (plantlake.core.storage): a version created
    on S3 is never overwritten; of two processes creating the same version, exactly one succeeds."""
    from plantlake.core.storage import open_storage

    storage = open_storage(s3.uri("cas"), s3.storage_options)
    assert storage.create("_state/erp/0000000001.json", b'{"v": 1}')
    assert not storage.create("_state/erp/0000000001.json", b'{"v": "other"}')
    assert storage.get("_state/erp/0000000001.json") == b'{"v": 1}'
    race = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from plantlake.core.storage import open_storage
from tests.servers import S3Server
s3 = S3Server(sys.argv[1], "lake")
st = open_storage(s3.uri("cas"), s3.storage_options)
print(sum(st.create(f"_state/race/{{k:010d}}.json", sys.argv[2].encode()) for k in range(40)), flush=True)
"""
    procs = [subprocess.Popen([sys.executable, "-c", race, s3.endpoint, f"writer{me}"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for me in (1, 2)]
    won = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        won.append(int(out.strip()))
    assert sum(won) == 40  # every version created exactly once, by one writer or the other
    assert len(storage.list("_state/race")) == 40
