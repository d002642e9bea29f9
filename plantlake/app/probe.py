"""`plantlake config check --probe`: every enabled source connected and asked, per rule and tag
mapping, what it matches now — so a wrong ref, namespace, topic or column shows before a run
quarantines or misses data. Reads only. Exit 1 when anything configured matches nothing or a
source cannot be reached."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from plantlake.core.config import PlantConfig
from plantlake.core.connections import get_connection
from plantlake.core.errors import PlantlakeError
from plantlake.core.kinds import source_kind


def probe_sources(cfg: PlantConfig, say: Callable[[str], None], *, only: list[str] | None = None,
                  seconds: float = 5.0) -> int:
    """Probe each enabled source (or `only` these), `say`ing a line per finding; the exit code."""
    from plantlake.pipeline.schedule import previous_interval  # imports Airflow: only when probing

    sources = [s for s in cfg.sources if s.enabled and (not only or s.name in only)]
    if only and len(sources) < len(set(only)):
        missing = sorted(set(only) - {s.name for s in sources})
        say(f"plantlake: no enabled source named {', '.join(missing)}")
        return 2
    failed = 0
    for src in sources:
        began = time.monotonic()
        interval = previous_interval(src, datetime.now(UTC))
        try:
            connection = get_connection(src.connection_id) if src.connection_id else None
            connector: Any = source_kind(src.kind).load()(src, cfg, connection)
            findings = connector.probe(interval, listen_s=seconds)
        except (PlantlakeError, OSError, ValueError) as exc:
            say(f"{src.name} ({src.kind}): UNREACHABLE: {exc.__class__.__name__}: {str(exc)[:500]}")
            failed += 1
            continue
        bad = [f for f in findings if not f.matched]
        failed += bool(bad)
        say(f"{src.name} ({src.kind}, window {interval.start:%Y-%m-%d %H:%M}..{interval.end:%H:%M} UTC): "
              f"{len(findings) - len(bad)} of {len(findings)} matched, {time.monotonic() - began:.1f} s")
        for f in findings:
            say(f"  {'ok  ' if f.matched else 'NONE'} {f.place}: {f.detail}")
    say(f"probe: {len(sources) - failed} of {len(sources)} source(s) match everything configured"
          if failed else f"probe: all {len(sources)} source(s) match everything configured")
    return 1 if failed else 0
