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
]


def sections() -> list[tuple[str, type[BaseModel]]]:
    """The fixed sections, then per installed source kind its model and the models inside it."""
    from plantlake.core.kinds import source_kinds

    c.bind_source_kinds()
    out = list(SECTIONS)
    for kind in source_kinds().values():
        out.append((f"sources[] kind: {kind.name}", kind.config))
        out += _nested(kind.config, f"sources[] kind: {kind.name} → ", {c.TagMapping, c.UnitRule})
    return out


def _nested(model: type[BaseModel], prefix: str, seen: set) -> list[tuple[str, type[BaseModel]]]:
    out = []
    for name, field in model.model_fields.items():
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in seen:
                many = typing.get_origin(field.annotation) is list
                title = f"{prefix}{field.alias or name}{'[]' if many else ''}"
                seen.add(arg)
                out += [(title, arg), *_nested(arg, title + ".", seen)]
    return out


def _type(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union and len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        if typing.get_origin(inner) is typing.Annotated:  # an optional constrained type (`Slug | None`)
            return _type(typing.get_args(inner)[0]) + " \\| None"
    text = str(annotation).replace("typing.", "").replace("NoneType", "None")
    text = re.sub(r"connectors\.\w+\.config\.", "", text)
    for name in ("plantlake.core.config.", "pathlib._local.", "pathlib.", "datetime."):
        text = text.replace(name, "")
    text = re.sub(r"Annotated\[(.*?), FieldInfo\(.*?\)\]", r"\1", text)  # the source kinds' union
    text = re.sub(r"Union\[([\w, ]+)\]", lambda m: m.group(1).replace(", ", " | "), text)
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
        "Generated from `plantlake/core/config.py` and each source kind's `connectors/<kind>/config.py`",
        "by `plantlake config docs`; do not edit by hand.",
        "`plant.yaml` is checked with `plantlake config check`: errors name the field path, the",
        "value found and what was expected. Secrets never go here: sources name an Airflow",
        "connection id (`connection_id`), resolved from `AIRFLOW_CONN_<ID>` or Airflow itself.",
        "",
    ]
    for title, model in sections():
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
