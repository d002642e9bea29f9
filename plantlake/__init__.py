"""plantlake: one audited Parquet lake from a plant's OPC UA, MQTT, camera and ERP silos.

Its floors, bottom up (each imports only the floors below it; `lint-imports` checks):
`schemas` (tables, units, conform) < `plantlake.core` (site config, connections, lake store,
errors) < `connectors` | `quality` < `plantlake.pipeline` (runner, publish, products) | `simulators`
< `plantlake.app` (CLI, DAG factories, demo). It stays light to import; heavy libraries load
inside functions.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

# Arrow's allocator (mimalloc) hands freed memory back to the OS after 10 ms by default, so
# each batch step touches fresh pages again; on these VMs that doubled the audit of 5M rows.
# A task process runs one batch and exits, so keeping the memory costs nothing. Read when
# Arrow loads, which is after this (heavy libraries load inside tasks); the environment wins.
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "-1")
