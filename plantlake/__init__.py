"""plantlake: one audited Parquet lake from a plant's OPC UA, MQTT, camera and ERP silos.

This package is the core: site config, lake store, pipeline runner, DAG factory,
products and CLI. It stays light to import; heavy libraries load inside functions.
"""

from __future__ import annotations

__version__ = "0.1.0"
