"""Source connectors: one folder per source kind (`connectors/<kind>/`), shared helpers beside them.

A kind's folder holds its site config model (`config.py`), its connector (`connector.py`) and
its declaration in `__init__.py` (a `plantlake.core.kinds.SourceKind`, named in pyproject.toml's
`plantlake.sources` entry points). A connector knows its protocol and nothing about Parquet
paths or GX: it reads a source for one data interval and returns raw Arrow rows plus a cursor,
and decodes raw rows into the input of a curated table. Declarations stay light: a connector's
protocol library is imported only when a run loads it.
"""
