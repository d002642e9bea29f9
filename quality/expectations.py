"""plantlake's own Great Expectations expectations, for rules that span columns.

GX has no expectation for "the value lies in the physical range of *its* tag" or "the
verdict agrees with the measurement and its limits", so they are written here as GX
multicolumn map expectations: they run inside GX, report unexpected rows like the
built-in ones and render in Data Docs. Importing this module imports GX (seconds), so
only the audit and the docs builder import it, inside tasks.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from great_expectations.compatibility import pydantic
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import MulticolumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import MulticolumnMapMetricProvider
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
    multicolumn_condition_partial,
)

_DOMAIN = ("batch_id", "table", "column_list", "row_condition", "condition_parser", "ignore_row_if")


class _TagValuesInRange(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.plantlake_tag_in_range"
    condition_domain_keys = _DOMAIN
    condition_value_keys = ("ranges",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, ranges: list[list], **kwargs) -> pd.Series:
        asset, tag, value = (column_list.iloc[:, i] for i in range(3))
        known = pd.MultiIndex.from_tuples([(a, t) for a, t, _, _ in ranges])
        pos = known.get_indexer(pd.MultiIndex.from_arrays([asset, tag]))
        lo = np.array([-np.inf if r[2] is None else r[2] for r in ranges] + [-np.inf])[pos]
        hi = np.array([np.inf if r[3] is None else r[3] for r in ranges] + [np.inf])[pos]
        v = value.to_numpy(dtype=float, na_value=np.nan)
        return pd.Series(np.isnan(v) | ((v >= lo) & (v <= hi)), index=column_list.index)


class ExpectTagValuesToBeWithinPhysicalRange(MulticolumnMapExpectation):
    """Each reading's value lies within the physical range the site config gives its
    (asset, tag): `ranges` is a list of [asset_id, tag, min, max] (either bound may be null).
    column_list is (asset column, tag column, value column); tags without a range pass."""

    ranges: list[list] = pydantic.Field(description="[asset_id, tag, min, max] per ranged tag")
    ignore_row_if: str = "never"
    map_metric = "multicolumn_values.plantlake_tag_in_range"
    success_keys = ("mostly", "ranges")
    args_keys = ("column_list", "ranges")
    library_metadata: ClassVar[dict] = {"maturity": "production", "tags": ["plantlake"], "contributors": []}


class _VerdictMatchesLimits(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.plantlake_verdict_matches_limits"
    condition_domain_keys = _DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs) -> pd.Series:
        value, lower, upper, verdict = (column_list.iloc[:, i] for i in range(4))
        within = (value >= lower) & (value <= upper)
        return within == (verdict.astype(str) == "pass")


class ExpectVerdictToMatchMeasurementAndLimits(MulticolumnMapExpectation):
    """An inspection passes exactly when its measured value lies within its limits.
    column_list is (measured value, lower limit, upper limit, verdict); rows missing any
    of them are not judged."""

    ignore_row_if: str = "any_value_is_missing"
    map_metric = "multicolumn_values.plantlake_verdict_matches_limits"
    success_keys = ("mostly",)
    args_keys = ("column_list",)
    library_metadata: ClassVar[dict] = {"maturity": "production", "tags": ["plantlake"], "contributors": []}


#: the expectations above, by class name (specs name them like GX's own)
CUSTOM = {cls.__name__: cls for cls in (ExpectTagValuesToBeWithinPhysicalRange,
                                         ExpectVerdictToMatchMeasurementAndLimits)}
