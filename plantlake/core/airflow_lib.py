"""Airflow, imported on demand by code that also runs outside a task (the CLI, tests, notebooks).

The first import of Airflow in a process sets up Airflow's logging on the root logger; `load`
puts the caller's handlers and level back, so plantlake used as a library leaves them alone.
Inside a task Airflow is already imported and nothing changes.
"""

from __future__ import annotations

import logging
import sys
from importlib import import_module
from typing import Any


def load(module: str, name: str) -> Any:
    """`name` from Airflow's `module` (e.g. load("airflow.sdk", "Connection"))."""
    if "airflow" in sys.modules:
        return getattr(import_module(module), name)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return getattr(import_module(module), name)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
