"""Lake store on Delta tables: one commit per publish, reruns replace their own rows, safe paths,
readback by DuckDB, Polars and pandas through the log (offline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plantlake.core.lake import Interval, Lake
from schemas import get_table

pytestmark = pytest.mark.unit

SENSOR = get_table("sensor_readings")
T0 = datetime(2026, 3, 1, 23, tzinfo=UTC)


def readings(start: datetime, n: int, step_s: int = 60, value: float = 1.0) -> pa.Table:
    ts = [start + timedelta(seconds=i * step_s) for i in range(n)]
    return pa.table({
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "server_ts": pa.nulls(n, pa.timestamp("us", tz="UTC")),
        "asset_id": ["acme/s/a/l1/press1"] * n,
        "tag": ["force"] * n,
        "value": [value + i for i in range(n)],
        "value_text": pa.nulls(n, pa.string()),
        "unit": ["kN"] * n,
        "quality": ["good"] * n,
        "status_code": pa.array([0] * n, pa.int64()),
        "source": ["csv"] * n,
        "source_ref": ["P1"] * n,
        "ingested_at": pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
        "run_id": ["r"] * n,
        "message_id": pa.nulls(n, pa.string()),
        "source_name": ["historian"] * n,
        "value_exact": pa.nulls(n, pa.string()),
    }, schema=SENSOR.arrow_schema())


def test_publish_commits_one_version_partitioned_by_utc_day_with_owner_and_schema_version(tmp_path):
    from deltalake import DeltaTable

    lake = Lake(tmp_path).ensure()
    iv = Interval(T0, T0 + timedelta(hours=2))  # crosses midnight
    staged = lake.stage(SENSOR, "src", iv, readings(T0, 120))
    assert lake.publish(staged, "run-1") == 0
    dt = DeltaTable(tmp_path / "curated" / "sensor_readings")
    assert dt.metadata().partition_columns == ["date"]
    parts = sorted((p["date"], p) for p in dt.partitions())
    assert [d for d, _ in parts] == ["2026-03-01", "2026-03-02"]
    commit = dt.history(1)[0]
    assert (commit["plantlake.table"], commit["plantlake.schema_version"], commit["plantlake.source"],
            commit["plantlake.interval"], commit["plantlake.run_id"]) == (
        "sensor_readings", str(SENSOR.version), "src", iv.key, "run-1")
    data = dt.to_pyarrow_table()
    assert data.num_rows == 120 and set(data["_source"].to_pylist()) == {"src"}
    assert set(data["_interval"].to_pylist()) == {iv.key}
    assert pq.read_metadata(lake.files(SENSOR)[0]).row_group(0).column(0).compression == "ZSTD"
    # field descriptions travel into the Delta schema
    assert dt.schema().to_arrow().field("ts").metadata[b"description"].startswith(b"Source timestamp")
    assert not list((tmp_path / "_staging").rglob("*.parquet"))


def test_rerun_replaces_and_removes_files_the_new_run_no_longer_has(tmp_path):
    lake = Lake(tmp_path).ensure()
    iv = Interval(T0, T0 + timedelta(hours=2))
    lake.publish(lake.stage(SENSOR, "src", iv, readings(T0, 120)))
    # the rerun only has rows before midnight: the date=2026-03-02 file must go
    lake.publish(lake.stage(SENSOR, "src", iv, readings(T0, 30, value=100.0)))
    files = lake.files(SENSOR)
    assert [f.split("/")[-2] for f in files] == ["date=2026-03-01"]
    back = lake.read(SENSOR)
    assert back.num_rows == 30 and back["value"][0].as_py() == 100.0


def test_two_runs_of_one_interval_stage_apart_and_both_publish(tmp_path):
    """A backfill and a scheduled run of the same interval, interleaved: neither removes the
    other's staged files, and the lake ends with one file holding one run's rows."""
    lake = Lake(tmp_path).ensure()
    iv = Interval(T0, T0 + timedelta(hours=1))
    a = lake.stage(SENSOR, "src", iv, readings(T0, 30, value=1.0))
    b = lake.stage(SENSOR, "src", iv, readings(T0, 30, value=2.0))
    assert {f.path.parent for f in a.files}.isdisjoint({f.path.parent for f in b.files})
    lake.publish(a)
    lake.publish(b)
    back = lake.read(SENSOR)
    assert sorted(back["value"].to_pylist()) == sorted(readings(T0, 30, value=2.0)["value"].to_pylist())
    assert not list((tmp_path / "_staging").rglob("*.parquet"))


def test_other_sources_and_intervals_are_untouched(tmp_path):
    lake = Lake(tmp_path).ensure()
    a = Interval(T0, T0 + timedelta(minutes=30))
    b = Interval(T0 + timedelta(minutes=30), T0 + timedelta(minutes=60))
    lake.publish(lake.stage(SENSOR, "src", a, readings(T0, 30)))
    lake.publish(lake.stage(SENSOR, "other", a, readings(T0, 30)))
    lake.publish(lake.stage(SENSOR, "src", b, readings(T0 + timedelta(minutes=30), 30)))
    lake.publish(lake.stage(SENSOR, "src", a, readings(T0, 10)))
    assert lake.read(SENSOR).num_rows == 10 + 30 + 30


def test_readback_with_duckdb_polars_and_pandas_through_the_log(tmp_path):
    """A rerun leaves the replaced files on disk until vacuum: a glob of the folder reads them
    too, the Delta readers and the catalog read the snapshot only."""
    import duckdb
    import pandas as pd
    import polars as pl
    from deltalake import DeltaTable

    from plantlake.pipeline.catalog import build_catalog, query

    lake = Lake(tmp_path).ensure()
    iv = Interval(T0, T0 + timedelta(hours=2))
    lake.publish(lake.stage(SENSOR, "src", iv, readings(T0, 120, value=0.0)))
    lake.publish(lake.stage(SENSOR, "src", iv, readings(T0, 120)))  # the rerun replaces every row
    uri = str(tmp_path / "curated" / "sensor_readings")
    glob = f"{uri}/*/*.parquet"
    assert duckdb.connect().execute("select count(*) from read_parquet(?)", [glob]).fetchone()[0] == 240  # not a snapshot

    build_catalog(lake)
    rows = query(lake, "select cast(ts as date) as day, count(*) as n, sum(value) as s from sensor_readings "
                       "group by day order by day").to_pylist()
    assert [(str(r["day"]), r["n"], r["s"]) for r in rows] == [
        ("2026-03-01", 60, sum(1.0 + i for i in range(60))), ("2026-03-02", 60, sum(1.0 + i for i in range(60, 120)))]
    pl_df = pl.scan_delta(uri).filter(pl.col("date") == pl.date(2026, 3, 2)).collect()
    assert pl_df.height == 60 and pl_df["value"].sum() == sum(1.0 + i for i in range(60, 120))
    assert pl_df.schema["ts"] == pl.Datetime("us", "UTC")
    pd_df = DeltaTable(uri).to_pandas()
    assert len(pd_df) == 120 and set(pd_df["date"].astype(str)) == {"2026-03-01", "2026-03-02"}
    assert str(pd_df["ts"].dtype) == "datetime64[us, UTC]"
    assert pd.Series(pd_df["value"]).sum() == sum(1.0 + i for i in range(120))


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", ".hidden", "", "x\x00y"])
def test_names_from_config_never_escape_the_lake(tmp_path, bad):
    lake = Lake(tmp_path)
    with pytest.raises(ValueError, match="not a safe file or folder name"):
        lake.raw(bad)


def test_interval_must_be_aware_and_ordered():
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="is not after start"):
        Interval(T0, T0)
    assert Interval(T0, T0 + timedelta(hours=1)).key == "20260301T230000Z_20260302T000000Z"


def test_state_round_trips_in_versions_and_a_concurrent_writer_is_refused(tmp_path):
    from plantlake.core.errors import StateConflict

    lake = Lake(tmp_path).ensure()
    (tmp_path / "_state" / "src.json").write_text('{"cursor": "2026-02-28T00:00:00Z"}')  # the first layout's file
    assert lake.read_state("src") == {"cursor": "2026-02-28T00:00:00Z"}
    lake.write_state("src", {"cursor": "2026-03-01T00:00:00Z"})
    assert lake.read_state("src") == {"cursor": "2026-03-01T00:00:00Z"}
    assert sorted(p.name for p in (tmp_path / "_state").rglob("*")) == ["0000000001.json", "src"]
    # two workers (two Lake objects, as on two hosts) read version 1; the second to commit is refused
    a, b = Lake(tmp_path), Lake(tmp_path)
    a.read_state("src"), b.read_state("src")
    a.write_state("src", {"cursor": "2026-03-01T01:00:00Z"})
    with pytest.raises(StateConflict, match="another run committed state version 2 after this run read version 1"):
        b.write_state("src", {"cursor": "2026-03-01T00:30:00Z"})
    assert Lake(tmp_path).read_state("src") == {"cursor": "2026-03-01T01:00:00Z"}  # never overwritten
    b.read_state("src")  # the retry reads the newer state, then commits after it
    b.write_state("src", {"cursor": "2026-03-01T02:00:00Z"})
    # the same state from an overlapping run of the same input is no conflict
    c = Lake(tmp_path)
    c.read_state("src")
    Lake(tmp_path).write_state("src", {"cursor": "same"}), c.write_state("src", {"cursor": "same"})
    for k in range(30):
        c.write_state("src", {"k": k})
    kept = sorted(p.name for p in (tmp_path / "_state" / "src").iterdir())
    assert len(kept) == 20 and kept[-1] == "0000000034.json"
    assert not [p for p in (tmp_path / "_state").rglob("*") if p.name.endswith(".tmp")]


def test_a_source_named_like_anothers_prefix_owns_only_its_own_publishes(tmp_path):
    """Sources `line` and `line__b` (both valid names) publish the same keys in different hours:
    each keeps its rows (ownership is the `_source` value, not a name prefix), also after a
    compaction puts both in one file, and a rerun of one replaces nothing of the other's."""
    from datetime import UTC, datetime, timedelta

    from plantlake.pipeline.compaction import compact_day
    from schemas import get_table

    table = get_table("sensor_readings")
    lake = Lake(tmp_path / "lake").ensure()
    t0 = datetime(2026, 1, 2, 6, tzinfo=UTC)
    rows = pa.Table.from_pylist([{"ts": t0 + timedelta(minutes=m), "asset_id": "acme/l1/press", "tag": "force",
                                  "value": float(m), "quality": "good", "status_code": 0, "source": "csv",
                                  "source_ref": "F", "ingested_at": t0, "run_id": "r"} for m in range(10)],
                                schema=table.arrow_schema())
    first, second = Interval(t0, t0 + timedelta(hours=1)), Interval(t0 + timedelta(hours=1), t0 + timedelta(hours=2))
    lake.publish(lake.stage(table, "line__b", first, rows))
    assert lake.published_keys(table, rows, "line", second).num_rows == 0
    assert lake.published_keys(table, rows, "line__b", second).num_rows == 10
    lake.publish(lake.stage(table, "line", second, rows))
    done = compact_day(lake, table, t0.date())
    assert (done.files_before, done.files_after, done.duplicates) == (2, 1, 10)  # one key set, two owners
    lake.publish(lake.stage(table, "line", first, rows.slice(0, 3)))  # `line` never published `first`
    assert lake.read(table).num_rows == 23
    lake.publish(lake.stage(table, "line__b", first, rows.slice(0, 4)))
    assert lake.read(table).num_rows == 3 + 4 + 10


def test_a_conflicting_commit_is_tried_again_with_backoff_then_fails_as_transient(monkeypatch):
    from deltalake.exceptions import CommitFailedError

    from plantlake.core import tables
    from plantlake.core.errors import Transient

    slept: list[float] = []
    monkeypatch.setattr(tables.time, "sleep", slept.append)
    calls = []

    def twice_then_ok():
        calls.append(1)
        if len(calls) <= 2:
            raise CommitFailedError("concurrent transaction deleted the same data")
        return 7

    assert tables.commit(twice_then_ok, "publish of src") == 7
    assert len(calls) == 3 and len(slept) == 2 and slept[1] > 0

    def never():
        raise CommitFailedError("concurrent transaction deleted the same data")

    with pytest.raises(tables.CommitConflict, match=r"publish of src: the commit conflicted with other writers 8 "
                                                    r"times \(concurrent transaction deleted the same data\)") as err:
        tables.commit(never, "publish of src")
    assert isinstance(err.value, Transient)  # Airflow's retry runs the task again
    assert max(slept) <= tables.BACKOFF_MAX_S * 1.5


def test_a_table_gains_a_declared_column_additively_and_older_rows_read_null(tmp_path):
    """Schema evolution on Delta: rows written before a nullable column was declared (sensor_readings
    v3 had no value_exact) stay readable; the column merges into the table's schema (schema_mode
    merge) and is null for them."""
    from deltalake import DeltaTable

    from plantlake.core import tables

    lake = Lake(tmp_path).ensure()
    old = SENSOR.arrow_schema()
    old = pa.schema([f for f in old if f.name != "value_exact"], metadata=old.metadata)
    v3 = readings(T0, 5).drop_columns(["value_exact"]).cast(old)
    tables.replace(lake.table_uri(SENSOR), None, lambda: [v3], old, source="src", interval_key="a",
                   partition_column="ts", metadata={})
    assert "value_exact" not in DeltaTable(lake.table_uri(SENSOR)).schema().to_arrow().names
    v4 = readings(T0 + timedelta(hours=1), 3)
    v4 = v4.set_column(v4.column_names.index("value_exact"), SENSOR.arrow_schema().field("value_exact"),
                       pa.array(["9007199254740993"] * 3))
    lake.publish(lake.stage(SENSOR, "src", Interval(T0 + timedelta(hours=1), T0 + timedelta(hours=2)), v4))
    assert "value_exact" in DeltaTable(lake.table_uri(SENSOR)).schema().to_arrow().names
    back = lake.read(SENSOR, columns=["ts", "value_exact"]).sort_by("ts")
    assert back["value_exact"].to_pylist() == [None] * 5 + ["9007199254740993"] * 3


def _log_actions(table_dir) -> list[list[tuple[str, str]]]:
    """Per commit of a Delta table, its (action, path) pairs, read from the JSON log itself."""
    import json

    out = []
    for f in sorted((table_dir / "_delta_log").glob("*.json")):
        out.append([(k, v["path"]) for line in f.read_text().splitlines()
                    for k, v in json.loads(line).items() if k in ("add", "remove")])
    return out


def test_a_publish_commits_the_audited_staged_files_as_they_are(tmp_path):
    """The files a run staged and audited are the files the commit adds (same bytes, by name), a
    rerun removes exactly the files its owner had, and other owners' files stay as they were."""
    from deltalake import DeltaTable

    lake = Lake(tmp_path).ensure()
    a, b = Interval(T0, T0 + timedelta(hours=2)), Interval(T0 + timedelta(hours=2), T0 + timedelta(hours=4))
    staged = lake.stage(SENSOR, "src", a, readings(T0, 120))
    # in the table a file is named as staged plus the staging token: unique among the interval's runs
    names = sorted(f"{f.path.parent.name}/{f.path.stem}__{staged.token}.parquet" for f in staged.files)
    content = {f"{f.path.parent.name}/{f.path.stem}__{staged.token}.parquet": f.path.read_bytes() for f in staged.files}
    assert [n.split("/")[0] for n in names] == ["date=2026-03-01", "date=2026-03-02"]  # one file per UTC day
    lake.publish(staged)
    lake.publish(lake.stage(SENSOR, "src", b, readings(T0 + timedelta(hours=2), 60)))
    table_dir = tmp_path / "curated" / "sensor_readings"
    log = _log_actions(table_dir)
    assert sorted(p for _, p in log[0]) == names and {k for k, _ in log[0]} == {"add"}
    assert all((table_dir / n).read_bytes() == content[n] for n in names)
    other = [p for _, p in log[1]]
    lake.publish(lake.stage(SENSOR, "src", a, readings(T0, 10, value=7.0)))  # the rerun of `a`
    rerun = _log_actions(table_dir)[2]
    assert sorted(p for k, p in rerun if k == "remove") == names
    assert [p for k, p in rerun if k == "add"][0].startswith("date=2026-03-01/src__" + a.key)
    assert not set(other) & {p for _, p in rerun}
    back = DeltaTable(table_dir).to_pyarrow_table()
    assert back.num_rows == 10 + 60
    assert sorted(set(back.filter(pa.compute.equal(back["_interval"], a.key))["value"].to_pylist())) == \
        [7.0 + i for i in range(10)]


def test_a_rerun_after_compaction_mixed_owners_in_one_file_rewrites_only_its_rows(tmp_path):
    """Compaction bin-packs two intervals' rows into one file: the rerun of one of them cannot drop
    that file whole, so it is a predicate overwrite that keeps the other interval's rows."""
    from deltalake import DeltaTable

    from plantlake.pipeline.compaction import compact_day

    lake = Lake(tmp_path).ensure()
    t0 = datetime(2026, 3, 1, 6, tzinfo=UTC)
    a, b = Interval(t0, t0 + timedelta(hours=1)), Interval(t0 + timedelta(hours=1), t0 + timedelta(hours=2))
    lake.publish(lake.stage(SENSOR, "src", a, readings(t0, 60)))
    lake.publish(lake.stage(SENSOR, "src", b, readings(t0 + timedelta(hours=1), 60)))
    assert compact_day(lake, SENSOR, t0.date()).files_after == 1
    lake.publish(lake.stage(SENSOR, "src", a, readings(t0, 5, value=50.0)))
    back = DeltaTable(tmp_path / "curated" / "sensor_readings").to_pyarrow_table()
    assert back.num_rows == 65
    mine = back.filter(pa.compute.equal(back["_interval"], a.key))
    assert sorted(mine["value"].to_pylist()) == [50.0 + i for i in range(5)]
    assert back.filter(pa.compute.equal(back["_interval"], b.key)).num_rows == 60
    # and the next rerun, now of files this owner has alone again, commits its staged files
    lake.publish(lake.stage(SENSOR, "src", a, readings(t0, 3, value=9.0)))
    assert lake.read(SENSOR).num_rows == 63


def test_statistics_from_the_footer_never_make_a_reader_skip_a_matching_row(tmp_path):
    """Delta keeps timestamps to the millisecond: the max of a file whose last row is at .123456 s
    must not be .123 (a reader asking for ts >= .1234 would skip the file). NaN and all-null
    columns leave no statistics to mislead."""
    import json

    import polars as pl
    from deltalake import DeltaTable

    lake = Lake(tmp_path).ensure()
    t = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    rows = readings(t, 3, step_s=0)
    rows = rows.set_column(rows.schema.get_field_index("value"), "value", pa.array([float("nan"), 1.0, 2.0]))
    iv = Interval(datetime(2026, 3, 1, 10, tzinfo=UTC), datetime(2026, 3, 1, 11, tzinfo=UTC))
    lake.publish(lake.stage(SENSOR, "src", iv, readings(iv.start, 1)))  # the table exists: the next is a commit of files
    lake.publish(lake.stage(SENSOR, "src2", iv, rows))
    table_dir = tmp_path / "curated" / "sensor_readings"
    add = [json.loads(line)["add"] for line in (table_dir / "_delta_log" / "00000000000000000001.json").read_text().splitlines()
           if "add" in json.loads(line)][0]
    stats = json.loads(add["stats"])
    assert stats["numRecords"] == 3
    assert stats["minValues"]["ts"] == "2026-03-01T10:00:00.123Z" and stats["maxValues"]["ts"] == "2026-03-01T10:00:00.124Z"
    assert stats["nullCount"]["value_text"] == 3 and "value_text" not in stats["minValues"]
    assert stats["minValues"]["_source"] == stats["maxValues"]["_source"] == "src2"
    late = datetime(2026, 3, 1, 10, 0, 0, 123400, tzinfo=UTC)
    got = pl.scan_delta(str(table_dir)).filter(pl.col("ts") >= late).collect()
    assert got.height == 3
    assert DeltaTable(table_dir).to_pyarrow_table(filters=[("value", ">", 1.5)]).num_rows == 1


def test_two_writers_replacing_one_owner_at_once_leave_exactly_one_runs_rows(tmp_path, monkeypatch):
    """A backfill and a scheduled run of one interval commit at the same moment: the second writer
    commits between the first one's snapshot and its commit. Appends of files alone would both
    go in (the rows doubled: there was no file of the owner's to remove, whose removal would
    conflict); the owner's application transaction makes them conflict, and the
    retry on the new snapshot removes what the other run added."""
    from plantlake.core.storage import LocalStorage

    lake = Lake(tmp_path).ensure()
    iv = Interval(T0 - timedelta(hours=1), T0)
    lake.publish(lake.stage(SENSOR, "other", iv, readings(iv.start, 10)))  # the table exists; `src` has no rows yet
    first = lake.stage(SENSOR, "src", iv, readings(iv.start, 20, value=100.0))
    second = lake.stage(SENSOR, "src", iv, readings(iv.start, 30, value=200.0))
    original, raced = LocalStorage.put_file, []

    def other_writer_commits_first(self, key, path):
        if not raced:
            raced.append(key)
            lake.publish(second)  # the first writer has its snapshot and its RemoveActions by now
        return original(self, key, path)

    monkeypatch.setattr(LocalStorage, "put_file", other_writer_commits_first)
    lake.publish(first)
    assert raced
    back = lake.read(SENSOR)
    assert back.num_rows == 10 + 20
    assert sorted(back["value"].to_pylist())[10:] == [100.0 + i for i in range(20)]


def test_a_staged_file_whose_rows_were_all_set_aside_is_not_committed(tmp_path):
    """The audit may set aside every row of one day's file: that empty file is not added (it would
    carry no owner statistics and send every later rerun of the owner down the slow path)."""
    import json

    lake = Lake(tmp_path).ensure()
    iv = Interval(T0, T0 + timedelta(hours=2))
    staged = lake.stage(SENSOR, "src", iv, readings(T0, 120))
    emptied = next(f for f in staged.files if f.day == "2026-03-02")
    pq.write_table(pq.read_table(emptied.path).slice(0, 0), emptied.path)
    emptied.rows = 0
    lake.publish(staged)
    log = (tmp_path / "curated" / "sensor_readings" / "_delta_log" / "00000000000000000000.json").read_text()
    adds = [json.loads(line)["add"]["path"] for line in log.splitlines() if "add" in json.loads(line)]
    assert [a.split("/")[0] for a in adds] == ["date=2026-03-01"]
    assert lake.read(SENSOR).num_rows == 60


def test_put_file_links_where_it_can_and_copies_across_filesystems(tmp_path, monkeypatch):
    """A staged file on the lake's filesystem becomes the table's file by a hard link; where the
    link is refused (EXDEV: staging on another filesystem) it is an fsynced copy, no temp left."""
    import errno
    import os

    from plantlake.core.storage import LocalStorage

    store = LocalStorage(tmp_path / "lake")
    staged = tmp_path / "staged.parquet"
    staged.write_bytes(b"PAR1" + os.urandom(3 << 20) + b"PAR1")
    store.put_file("t/date=2026-03-01/a.parquet", staged)
    assert os.stat(tmp_path / "lake/t/date=2026-03-01/a.parquet").st_ino == staged.stat().st_ino

    def no_link(*_args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    store.put_file("t/date=2026-03-01/b.parquet", staged)
    copied = tmp_path / "lake/t/date=2026-03-01/b.parquet"
    assert copied.read_bytes() == staged.read_bytes() and copied.stat().st_ino != staged.stat().st_ino
    assert not [p for p in copied.parent.iterdir() if p.name.endswith(".tmp")]
