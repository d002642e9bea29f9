"""Where plantlake's OpenLineage events go: the Airflow settings that turn the provider on with
plantlake's extractor, and `LakeFileTransport`, an OpenLineage transport appending each event
(one JSON a line) to the file `PLANTLAKE_LINEAGE_FILE` names when it is emitted — under the lake
(`<lake>/_lineage/events.jsonl`), where `plantlake trace` reads it. Light: no Airflow import, so
the settings can be made before Airflow loads.

A deployment may use any OpenLineage transport instead (HTTP to Marquez, Kafka, a file of its
own) by setting `AIRFLOW__OPENLINEAGE__TRANSPORT`; `plantlake trace` then reads the lake's rows,
manifests and raw files, and the lineage events only where it finds them.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import attr
from openlineage.client.transport.transport import Config, Transport

from plantlake.core.lake import LINEAGE_FILE_ENV as FILE_ENV


def airflow_settings() -> dict[str, str]:
    """Airflow's OpenLineage settings for plantlake's in-process runs (the demo's and the tests'
    `dag.test()`): events through `LakeFileTransport`, plantlake's extractor, emitted in a thread
    of the task's process (a forked child of a process running servers and threads can deadlock),
    without the tasks' source code, and task events only — the DAG-run events go through a process
    pool that, in-process, is started after each run and waited for by the next task (0.5 to 1 s a
    run); a scheduler keeps that pool, and the compose file leaves them on."""
    return {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": f"{__name__}.LakeFileTransport"}),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "plantlake",
            "AIRFLOW__OPENLINEAGE__EXTRACTORS": "plantlake.app.lineage.PlantlakeExtractor",
            "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
            "AIRFLOW__OPENLINEAGE__DISABLE_SOURCE_CODE": "True",
            "AIRFLOW__OPENLINEAGE__EMISSION_POLICY": json.dumps([{"scope": {}, "controls": {"emit_dag_events": False}}])}


@attr.define
class LakeFileConfig(Config):
    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> LakeFileConfig:
        return cls()


class LakeFileTransport(Transport):
    """Appends each event to the file `PLANTLAKE_LINEAGE_FILE` names (read at every emit: one
    process may run the tasks of several lakes, as the tests do); no file named, no event kept."""

    kind = "plantlake_lake_file"
    config_class = LakeFileConfig

    def __init__(self, config: LakeFileConfig) -> None:
        self.config = config

    def emit(self, event: Any) -> None:
        from openlineage.client.serde import Serde

        target = os.environ.get(FILE_ENV)
        if not target:
            return
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = Serde.to_json(event) + "\n"
        with path.open("a", encoding="utf-8") as fh:  # one line per event, whole, whoever else appends
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(line)
            fh.flush()
