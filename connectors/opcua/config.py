"""The site config of a `opcua` source (OPC UA servers): what `sources[]` with `kind: opcua` accepts."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from plantlake.core.config import ConfigModel, SourceBase


class OpcUaNodes(ConfigModel):
    """Variables selected by meaning: namespace URI + browse path, never a namespace index.

    `path` is '/'-separated under Objects; a `{name}` segment matches any child and
    captures its browse name for the `asset` template (e.g. path `Plant/{line}/{machine}`,
    asset `assembly/{line}/{machine}`). A captured browse name fills the template as a slug:
    CamelCase split by `_`, lower case, runs of other characters than letters, digits, `_`
    and `-` made one `_` (`Filler` -> `filler`, `LabelPrinter2` -> `label_printer2`,
    `Line 1` -> `line_1`). An asset is an ISA-95 path, absolute (`acme/shenzhen/assembly/line1`)
    or relative to the site (`assembly/line1`). `variables` is a glob on the variables'
    browse names; the tag is the browse name made a tag name the same way. An object's
    properties (HasProperty references: serial number, manufacturer, nameplate) are never
    readings and are not selected; map one as a tag (`nsu=…;s=…`) if it really is one.
    """

    namespace: str = Field(min_length=1, description="Namespace URI of the path's segments.")
    path: str = Field(min_length=1)
    variables: str = "*"
    exclude: list[str] = Field(default_factory=list)
    asset: str = Field(min_length=1)

    @model_validator(mode="after")
    def _captures(self) -> OpcUaNodes:
        names = set(re.findall(r"{(\w+)}", self.path))
        used = set(re.findall(r"{(\w+)}", self.asset))
        if used - names:
            raise ValueError(f"asset uses {sorted(used - names)} which the path does not capture")
        return self


class OpcUaSource(SourceBase):
    """An OPC UA server: HistoryRead of each data interval, or polling where there is no history."""

    kind: Literal["opcua"]
    mode: Literal["history", "poll"] = "history"
    nodes: list[OpcUaNodes] = Field(default_factory=list)
    batch_nodes: int = Field(50, ge=1, le=5000, description="Nodes per HistoryRead / Read request.")
    parallel_requests: int = Field(4, ge=1, le=32, description="Requests in flight on the session.")
    timeout_s: float = Field(30.0, gt=0)
    poll_samples: int = Field(1, ge=1)
    poll_interval_s: float = Field(1.0, gt=0)
    events: list[str] = Field(default_factory=list, description=(
        "Event notifiers whose event history each run reads into the `events` table (alarms and conditions: "
        "activation, acknowledgement, return to normal): node ids, `i=2253` for the Server object (every event "
        "of the server) or `nsu=<namespace uri>;s=<id>` for an area or machine. Empty: no events."))

    def feeds(self, declared: tuple[str, ...]) -> tuple[str, ...]:
        return declared if self.events else tuple(t for t in declared if t != "events")

    @model_validator(mode="after")
    def _something(self) -> OpcUaSource:
        if not self.nodes and not self.tags:
            raise ValueError("select nodes (nodes: namespace/path/variables) or map tags (tags: ref = nsu=…;s=…)")
        return self
