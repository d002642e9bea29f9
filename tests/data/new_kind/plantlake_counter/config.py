from typing import Literal

from pydantic import Field

from plantlake.core.config import SourceBase


class CounterSource(SourceBase):
    """A counter that reads `every_s` seconds apart."""

    kind: Literal["counter"]
    every_s: int = Field(60, ge=1, description="Seconds between two readings.")
