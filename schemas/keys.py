"""Key algebra on Arrow tables: duplicates of a primary key, the last arrival or the newest
version of each key, and rows whose key the lake already holds."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def keep_latest(data: pa.Table, key: tuple[str, ...], version: str) -> tuple[pa.Table, int]:
    """The newest version of each key by `version`; on a tie the later row wins. Rows come out
    sorted by key, so the same input always gives the same file."""
    if data.num_rows == 0:
        return data, 0
    keys = _sort_keys(data, key)
    ver = pc.cast(pc.fill_null(data[version], pa.scalar(0, data.schema.field(version).type)), pa.int64()).to_numpy()
    order = np.lexsort((np.arange(data.num_rows), ver, *keys[::-1]))
    # a row is superseded when the next row in key order has the same key in every column
    same_key = np.ones(len(order) - 1, dtype=bool)
    for k in keys:
        sk = k[order]
        same_key &= sk[1:] == sk[:-1]
    last = np.append(~same_key, True)
    return data.take(pa.array(order[last])), int((~last).sum())


def _sort_keys(data: pa.Table, key: tuple[str, ...]) -> list[np.ndarray]:
    """Each key column as integers that sort like the column (strings by lexicographic rank)."""
    out = []
    for name in key:
        col = data[name]
        if pa.types.is_dictionary(col.type) or pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            enc = (col if pa.types.is_dictionary(col.type) else pc.dictionary_encode(col)).combine_chunks()
            if isinstance(enc, pa.ChunkedArray):
                enc = enc.chunk(0) if enc.num_chunks else pa.array([], col.type)
            rank = np.empty(len(enc.dictionary), dtype=np.int64)
            rank[pc.sort_indices(enc.dictionary).to_numpy()] = np.arange(len(enc.dictionary))
            out.append(rank[enc.indices.to_numpy(zero_copy_only=False)])
        elif pa.types.is_timestamp(col.type):
            out.append(pc.cast(col, pa.int64()).to_numpy())
        else:
            out.append(np.asarray(col.to_numpy()))
    return out


def _fold(keys: list[np.ndarray]) -> np.ndarray | None:
    """All key columns folded into one int64 that sorts the same way, when the ranges fit."""
    spans = []
    capacity = 1
    for k in keys:
        lo, hi = int(k.min()), int(k.max())
        spans.append((lo, hi - lo + 1))
        capacity *= hi - lo + 1
        if capacity >= 2**62:
            return None
    folded = np.zeros(len(keys[0]), dtype=np.int64)
    for k, (lo, span) in zip(keys, spans, strict=True):  # in place: no temporary arrays per key
        folded *= span
        folded += k
        folded -= lo
    return folded


def _key_order(data: pa.Table, key: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(order, last): `last[i]` marks the last arrival of its key among rows `order[i]`.

    When every key is unique, `order` is the identity and `last` all true.
    """
    keys = _sort_keys(data, key)
    folded = _fold(keys)
    if folded is not None:
        if np.all(folded[1:] > folded[:-1]):  # already sorted and unique: the common case
            return np.arange(len(folded)), np.ones(len(folded), dtype=bool)
        sk = np.sort(folded)  # fast unstable sort answers "any duplicates?"
        if np.all(sk[1:] != sk[:-1]):
            return np.arange(len(folded)), np.ones(len(folded), dtype=bool)
        order = np.argsort(folded, kind="stable")  # duplicates: arrival order decides the winner
        sk = folded[order]
        same_as_next = sk[1:] == sk[:-1]
    else:
        order = np.lexsort(keys[::-1])  # lexsort takes the primary key last; it is stable
        same_as_next = np.ones(len(order) - 1, dtype=bool)
        for k in keys:
            sk = k[order]
            same_as_next &= sk[1:] == sk[:-1]
    return order, np.append(~same_as_next, True)


def count_duplicate_keys(data: pa.Table, key: tuple[str, ...]) -> int:
    if data.num_rows < 2 or not key:
        return 0
    _, last = _key_order(data, key)
    return int((~last).sum())


def dedupe(data: pa.Table, key: tuple[str, ...]) -> tuple[pa.Table, int]:
    """Keep the last arrival of each primary key; rows stay in arrival order."""
    if data.num_rows < 2 or not key:
        return data, 0
    order, last = _key_order(data, key)
    if last.all():
        return data, 0  # unique already: keep the arrival order, skip the copy
    return data.take(pa.array(np.sort(order[last]))), int((~last).sum())


def drop_known(data: pa.Table, known: pa.Table, key: tuple[str, ...]) -> tuple[pa.Table, int]:
    """Remove rows whose key is in `known` (published before); rows keep their order."""
    if data.num_rows == 0 or known.num_rows == 0:
        return data, 0
    marked = data.select(list(key)).append_column("__row", pa.array(np.arange(data.num_rows)))
    hits = marked.join(known, keys=list(key), join_type="left semi", use_threads=False)["__row"].to_numpy()
    if len(hits) == 0:
        return data, 0
    keep = np.ones(data.num_rows, dtype=bool)
    keep[hits] = False
    return data.filter(pa.array(keep)), int(len(hits))
