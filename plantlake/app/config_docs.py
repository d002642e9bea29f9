"""The configuration reference (docs/configuration.md), generated from the pydantic models.

Every field of the site config with its type, default and description, per section and per
source kind, so the reference can never drift from what `load_config` accepts.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from plantlake.core import config as c

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("top level", c.PlantConfig),
    ("enterprise", c.Enterprise),
    ("enterprise.sites[]", c.Site),
    ("…areas[]", c.Area),
    ("…lines[]", c.Line),
    ("…cells[]", c.Cell),
    ("lake", c.LakeSettings),
    ("sources[].tags[] (every kind)", c.TagMapping),
    ("sources[].units[] (every kind)", c.UnitRule),
    ("sources[] kind: csv", c.CsvSource),
    ("sources[] kind: csv → columns", c.CsvColumns),
    ("sources[] kind: opcua", c.OpcUaSource),
    ("sources[] kind: opcua → nodes[]", c.OpcUaNodes),
    ("sources[] kind: mqtt", c.MqttSource),
    ("sources[] kind: mqtt → json[]", c.MqttJson),
    ("sources[] kind: mqtt → sparkplug[]", c.MqttSparkplug),
    ("sources[] kind: images", c.ImageSource),
    ("sources[] kind: images → folders[]", c.ImageFolder),
    ("sources[] kind: images → folders[].sidecar", c.ImageSidecar),
    ("sources[] kind: erp", c.ErpSource),
    ("sources[] kind: erp → tables[]", c.ErpTable),
    ("sources[] kind: erp → tables[].csv", c.ErpCsv),
]


def _type(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("NoneType", "None")
    for name in ("plantlake.core.config.", "pathlib._local.", "pathlib.", "datetime."):
        text = text.replace(name, "")
    text = re.sub(r"Annotated\[(.*?), FieldInfo\(.*?\)\]", r"\1", text)  # the source kinds' union
    if text.startswith("<class '"):
        text = text[8:-2]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        text = " | ".join(repr(a) for a in typing.get_args(annotation))
    return text.replace("|", "\\|")


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default is not PydanticUndefined:
        return "" if field.default is None else f"`{field.default!r}`"
    if field.default_factory is not None:
        try:
            return f"`{field.default_factory()!r}`"
        except TypeError:
            return ""
    return ""


def reference() -> str:
    lines = [
        "# Site configuration reference",
        "",
        "Generated from `plantlake/core/config.py` by `plantlake config docs`; do not edit by hand.",
        "`plant.yaml` is checked with `plantlake config check`: errors name the field path, the",
        "value found and what was expected. Secrets never go here: sources name an Airflow",
        "connection id (`connection_id`), resolved from `AIRFLOW_CONN_<ID>` or Airflow itself.",
        "",
    ]
    for title, model in SECTIONS:
        doc = " ".join((model.__doc__ or "").split())
        lines += [f"## {title}", "", doc, ""] if doc else [f"## {title}", ""]
        lines += ["| field | type | default | description |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            key = field.alias or name
            desc = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{key}` | `{_type(field.annotation)}` | {_default(field)} | {desc} |")
        lines.append("")
    return "\n".join(lines)


def write_reference(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reference(), encoding="utf-8")
    return path
