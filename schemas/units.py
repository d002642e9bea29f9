"""Units: one canonical unit per physical quantity, conversions done with pint.

Conversions are affine (scale and offset, e.g. degF -> degC), so each distinct
(source unit, canonical unit) pair is resolved once with pint and then applied to
whole Arrow arrays.
"""

from __future__ import annotations

from functools import lru_cache

import pint

_ALIASES = {"°C": "degC", "°F": "degF", "℃": "degC", "℉": "degF", "%": "percent", "Nm": "N*m", "°": "degree"}


def _preprocess(text: str) -> str:
    for alias, name in _ALIASES.items():
        text = text.replace(alias, name)
    return text


ureg = pint.UnitRegistry(preprocessors=[_preprocess], autoconvert_offset_to_baseunit=False)

#: Canonical unit per dimensionality. A tag mapping may name another canonical unit
#: of the same dimensionality (e.g. rpm instead of Hz for machine speed).
CANONICAL: dict[str, str] = {
    "[temperature]": "degC",
    "[mass] / [length] / [time] ** 2": "bar",
    "[mass] * [length] ** 2 / [time] ** 3": "kW",
    "[mass] * [length] ** 2 / [time] ** 2": "kWh",
    "[length]": "mm",
    "[mass]": "kg",
    "[time]": "s",
    "1 / [time]": "Hz",
    "[current]": "A",
    "[mass] * [length] ** 2 / [time] ** 3 / [current]": "V",
    "[length] / [time]": "m/s",
    "[length] ** 3 / [time]": "l/min",
    "[length] ** 3": "l",
    "[mass] * [length] / [time] ** 2": "kN",
    "[mass] / [time]": "kg/h",
    "dimensionless": "",
}


class UnitError(ValueError):
    """A unit string pint cannot parse, or two units that measure different things."""


@lru_cache(maxsize=1024)
def parse(unit: str | None) -> pint.Unit:
    text = (unit or "").strip()
    try:
        return ureg.Unit(text) if text else ureg.dimensionless
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, SyntaxError) as exc:
        raise UnitError(f"unknown unit {unit!r}") from exc


@lru_cache(maxsize=1024)
def canonical_unit(unit: str | None) -> str:
    """The canonical unit string for the quantity `unit` measures."""
    parsed = parse(unit)
    if parsed == ureg.percent:
        return "%"
    dim = str(ureg.Quantity(1, parsed).dimensionality)
    if dim in CANONICAL:
        return CANONICAL[dim]
    # An unusual quantity keeps its own unit, spelled the way pint spells it.
    return f"{parsed:~}".replace(" ", "")


@lru_cache(maxsize=1024)
def affine(source: str | None, target: str | None) -> tuple[float, float]:
    """(scale, offset) such that value_in_target = scale * value_in_source + offset."""
    src, dst = parse(source), parse(target)
    try:
        y0 = ureg.Quantity(0.0, src).to(dst).magnitude
        y1 = ureg.Quantity(1.0, src).to(dst).magnitude
    except pint.errors.DimensionalityError as exc:
        raise UnitError(f"cannot convert {source!r} to {target!r}: they measure different quantities") from exc
    return float(y1 - y0), float(y0)

