"""The errors plantlake raises on purpose, in two kinds: what a retry may fix, and what a person
must fix.

- `Transient`: the source is unreachable, timed out or refused the session for now. Airflow retries
  the task (the source's `retries`, with backoff); the next interval's run tries again anyway.
- `Terminal`: the site config, a connection, the source's schema or its answer needs a person (a
  mapping, a setting, the ERP's cursor column, a server that serves no history), or the audit
  held a batch back. Retrying repeats the same failure, so the ingest task fails at once
  (`AirflowFailException`) and its message names the setting that fixes it.

Errors that are neither (a bug) are retried, like any failure Airflow does not know.
"""

from __future__ import annotations


class PlantlakeError(Exception):
    """Every error plantlake raises on purpose; its message is meant for the person who reads it."""


class Transient(PlantlakeError):
    """A retry may succeed: the source did not answer this time."""


class Terminal(PlantlakeError):
    """A retry repeats the failure: a person must change the config, the source or the data."""


class SourceUnavailable(Transient, ConnectionError):
    """The source (OPC UA server, MQTT broker, ERP database) cannot be reached, timed out or refused
    the session."""


class ConfigError(Terminal, ValueError):
    """A site config that cannot be used; the message names file, field path and value."""


class ConnectionNotFound(Terminal, LookupError):
    """A source names a connection id no Airflow Connection or environment variable defines."""


class ConnectionInvalid(Terminal, ValueError):
    """A connection whose text cannot be read; the message names the connection, never its text."""


class SchemaDrift(Terminal, ValueError):
    """A mapped source column is gone or changed type, or a file is not what the source says:
    the mapping needs a person."""


class CursorMismatch(Terminal, ValueError):
    """A window read nothing while the table holds rows changed in it: the cursor compares unlike forms."""


class HistoryRefused(Terminal, RuntimeError):
    """The server does not serve history for the selected nodes: use poll mode."""


class StateInvalid(Terminal, ValueError):
    """A source's stored state is not one its connector writes (edited by hand, or written by a
    newer plantlake)."""


class StateConflict(Transient, RuntimeError):
    """Another run of the same source committed its state after this run read it (two workers, two
    hosts): this run's rows are published, its state is not; the retry starts from the newer state."""


class AuditFailed(Terminal, RuntimeError):
    """A staged batch failed a batch-level check; nothing was published."""


class NothingPublished(Terminal, RuntimeError):
    """A run had input and published none of it: every row was quarantined or matched no mapping."""


class SourcesUnhealthy(Terminal, RuntimeError):
    """The freshness check found a source stale (behind its `freshness`) or with a failed run."""
