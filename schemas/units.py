"""Units: one canonical unit per quantity *kind*, conversions done with pint.

A unit's dimension does not say what it measures: torque (N·m) and energy (kWh) share one,
so do rotational speed (1/min) and frequency (Hz), density and mass concentration, ratios
and concentrations. plantlake therefore resolves every unit to a quantity kind first —
from the UNECE Recommendation 20 table (`schemas/data/unece_units.csv`: the codes OPC UA
servers send in EngineeringUnits, their symbols, Rec 20's factors), from the spellings
plants write (`N.m`, `Nm`, `m3/h`, `rpm`, `psi`), or from pint's dimensionality where it is
unambiguous — and converts only between units of one kind. A tag mapping may name the kind
(`quantity: energy` for an `ft·lbf` that is work) and another canonical unit of that kind.

Conversions are affine (scale and offset, e.g. degF -> degC), so each distinct
(source unit, canonical unit) pair is resolved once with pint and then applied to whole
Arrow arrays. Canonical units are spelled so that pint (with this registry) parses them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pint

UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
TABLE_PATH = Path(__file__).with_name("data") / "unece_units.csv"

#: The canonical unit of each quantity kind (spelled for pint; analysts see these strings).
CANONICAL: dict[str, str] = {
    "length": "mm", "area": "m^2", "volume": "l", "time": "s", "speed": "m/s",
    "acceleration": "m/s^2", "frequency": "Hz", "rotational_speed": "1/min", "angle": "deg",
    "angular_velocity": "rad/s", "mass": "kg", "density": "kg/m^3", "mass_concentration": "mg/l",
    "force": "kN", "torque": "N*m", "pressure": "bar", "energy": "kWh", "power": "kW",
    "apparent_power": "kVA", "reactive_power": "kvar", "mass_flow": "kg/h", "volume_flow": "m^3/h",
    "temperature": "degC", "current": "A", "voltage": "V", "resistance": "ohm",
    "electric_charge": "A*h", "capacitance": "uF", "conductivity": "uS/cm",
    "dynamic_viscosity": "mPa*s", "kinematic_viscosity": "mm^2/s", "illuminance": "lx",
    "luminous_intensity": "cd", "ratio": "%", "concentration": "ppm", "dimensionless": "",
}
KINDS = tuple(CANONICAL)

#: Kinds whose units convert into each other (same dimension *and* the same meaning);
#: every other kind converts only within itself.
_FAMILY = {"mass_concentration": "density", "concentration": "dimensionless", "ratio": "dimensionless",
           "rotational_speed": "frequency"}

#: Spellings plants write for a symbol of the table (after the generic normalisation below).
_ALIASES = {
    "Nm": "N·m", "kNm": "kN·m", "mNm": "mN·m", "Ncm": "N·cm", "Wh": "W·h", "kWh": "kW·h", "MWh": "MW·h",
    "GWh": "GW·h", "Ws": "W·s", "VA": "V·A", "kVA": "kV·A", "MVA": "MV·A", "kVAr": "kvar", "kVAR": "kvar",
    "Ah": "A·h", "mAh": "mA·h", "kAh": "kA·h", "rpm": "r/min", "RPM": "r/min", "U/min": "r/min",
    "1/min": "r/min", "rev/min": "r/min", "r.p.m.": "r/min", "min-1": "r/min", "min⁻¹": "r/min", "rps": "r/s",
    "U/s": "r/s", "1/s": "s⁻¹", "psi": "lbf/in²", "psia": "lbf/in²", "Ohm": "Ω", "ohm": "Ω", "Ohms": "Ω",
    "kOhm": "kΩ", "MOhm": "MΩ", "mOhm": "mΩ", "percent": "%", "pct": "%", "mmHg": "mm Hg",
    "sec": "s", "hr": "h", "hrs": "h", "lpm": "l/min", "L/min": "l/min", "L/h": "l/h", "L/s": "l/s", "L": "l",
    "mL": "ml", "degC": "°C", "deg C": "°C", "℃": "°C", "C°": "°C", "degF": "°F", "deg F": "°F",
    "℉": "°F", "deg": "°", "degree": "°", "degrees": "°", "kp/cm²": "kgf/cm²", "lbf*ft": "lbf·ft",
    "lb·ft": "lbf·ft", "ft·lb": "lbf·ft", "in·lbf": "lbf·in", "in·lb": "lbf·in",
    # a force times a length written as text is a moment (torque) on a plant; Rec 20's code 85
    # (foot pound-force, energy) stays energy when a server sends the code itself
    "ft·lbf": "lbf·ft",
}
_SUPERSCRIPT = {"2": "²", "3": "³", "4": "⁴", "-1": "⁻¹", "-2": "⁻²", "-3": "⁻³"}


class UnitError(ValueError):
    """A unit string plantlake cannot read, or two units that measure different things."""


@dataclass(frozen=True)
class UneceUnit:
    """One row of the UNECE table: a Rec 20 common code and what plantlake makes of it."""

    code: str
    unit_id: int
    symbol: str
    name: str
    kind: str
    pint: str
    factor: str


def _preprocess(text: str) -> str:
    for old, new in (("·", "*"), ("²", "**2"), ("³", "**3"), ("⁴", "**4"), ("⁻¹", "**-1"), ("⁻²", "**-2"),
                     ("µ", "u"), ("μ", "u"), ("Ω", "ohm"), ("°C", "degC"), ("°F", "degF"), ("°R", "degR"),
                     ("°", "degree"), ("%", "percent"), ("‰", "permille")):
        text = text.replace(old, new)
    return text


ureg = pint.UnitRegistry(preprocessors=[_preprocess], autoconvert_offset_to_baseunit=False)
ureg.define("ppb = 1e-9")
ureg.define("var = volt * ampere")
ureg.define("thou_inch = inch / 1000")


@lru_cache(maxsize=1)
def unece_table() -> tuple[UneceUnit, ...]:
    """plantlake's UNECE Rec 20 table (facts from the OPC Foundation's and UN/CEFACT's tables)."""
    with TABLE_PATH.open(encoding="utf-8") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    return tuple(UneceUnit(r["code"], int(r["unit_id"]), r["symbol"], r["name"], r["kind"], r["pint"], r["factor"])
                 for r in csv.DictReader(lines))


@lru_cache(maxsize=1)
def _by_code() -> dict[str, UneceUnit]:
    return {u.code: u for u in unece_table()}


@lru_cache(maxsize=1)
def _by_symbol() -> dict[str, UneceUnit]:
    out: dict[str, UneceUnit] = {}
    for u in unece_table():
        out.setdefault(u.symbol, u)  # the first row of a symbol wins (RPM before M46 for r/min)
    return out


def unit_id(code: str) -> int:
    """OPC UA Part 8: the EUInformation UnitId of a Rec 20 common code (its ASCII bytes, big-endian)."""
    return int.from_bytes(code.encode("ascii"), "big")


def code_of(unit_id_value: int) -> str | None:
    """The Rec 20 common code an EUInformation UnitId stands for (None for -1 or garbage)."""
    if unit_id_value is None or unit_id_value <= 0 or unit_id_value >= 2**32:
        return None
    raw = unit_id_value.to_bytes(4, "big").lstrip(b"\0")
    try:
        code = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return code if re.fullmatch(r"[0-9A-Z]{2,3}", code) else None


def unece(code: str) -> UneceUnit | None:
    """The table's row for a Rec 20 common code (None when plantlake does not map it)."""
    return _by_code().get(code)


def from_eu_information(namespace_uri: str | None, unit_id_value: int | None, display: str | None) -> str | None:
    """The unit text for an OPC UA EUInformation: the Rec 20 symbol when the UnitId is a UNECE code
    plantlake maps, `unece:<code>` for a UNECE code it does not, else the display name."""
    if unit_id_value is not None and (namespace_uri or UNECE_NAMESPACE) == UNECE_NAMESPACE:
        code = code_of(unit_id_value)
        if code is not None:
            row = unece(code)
            if row is None:
                return f"unece:{code}"
            # the symbol, unless another row owns the symbol with another kind (e.g. code 85's ft·lbf)
            return row.symbol if _resolve_text(row.symbol).kind == row.kind else f"unece:{code}"
    return display.strip() if display and display.strip() else None


@dataclass(frozen=True)
class Resolved:
    """A unit as plantlake understands it: pint's quantity for one of it, and its kind (None when
    the dimension alone cannot tell and the text does not say)."""

    quantity: pint.Quantity
    kind: str | None


def _normalise(text: str) -> str:
    """Plant spellings to the table's symbols: `N.m`/`N*m` -> `N·m`, `m3/h`/`m^3/h` -> `m³/h`."""
    t = text.strip()
    if t in _ALIASES:
        return _ALIASES[t]
    t = re.sub(r"(?<=[A-Za-zµΩ°])\s*[.*]\s*(?=[A-Za-zµΩ°])", "·", t)  # product separators
    t = re.sub(r"(?<=[A-Za-z])(?:\*\*|\^)?(-?[1-4])(?![0-9])", lambda m: _SUPERSCRIPT.get(m.group(1), m.group(0)), t)
    t = re.sub(r"^u(?=[A-Za-z])", "µ", t)  # uS/cm, um, ul
    return _ALIASES.get(t, t)


_TEXT_KINDS = (  # kind of a pint-parsed unit whose dimension is shared, by the names in it
    ("torque", re.compile(r"newton|force|dyne|poundal")),
    ("rotational_speed", re.compile(r"revolution|rpm")),
    ("angle", re.compile(r"radian|degree|arcminute|arcsecond|turn|gradian")),
    ("concentration", re.compile(r"ppm|ppb|permille|parts_per")),
    ("ratio", re.compile(r"percent")),
)


@lru_cache(maxsize=1)
def _dimension_kinds() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for kind, unit in CANONICAL.items():
        out.setdefault(str(ureg.Quantity(1, unit).dimensionality), []).append(kind)
    return out


@lru_cache(maxsize=2048)
def _resolve_text(text: str) -> Resolved:
    t = text.strip()
    if not t:
        return Resolved(ureg.Quantity(1, ""), "dimensionless")
    if t.startswith("unece:"):
        row = unece(t[6:])
        if row is None:
            raise UnitError(f"UNECE unit code {t[6:]!r} is not in plantlake's table (schemas/data/unece_units.csv); "
                            "declare the tag's unit in the site config")
        return Resolved(ureg.parse_expression(row.pint), row.kind)
    row = _by_symbol().get(t) if t not in _ALIASES else None
    if row is None:
        row = _by_symbol().get(_normalise(t))
    if row is not None:
        return Resolved(ureg.parse_expression(row.pint or row.symbol), row.kind)
    try:
        q = ureg.parse_expression(t)
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, SyntaxError, KeyError) as exc:
        raise UnitError(f"unknown unit {text!r}") from exc
    if not isinstance(q, pint.Quantity):
        raise UnitError(f"unknown unit {text!r} (a number, not a unit)")
    candidates = _dimension_kinds().get(str(q.dimensionality), [])
    if len(candidates) == 1:
        return Resolved(q, candidates[0])
    names = " ".join(str(u) for u in q.units._units)
    for kind, pattern in _TEXT_KINDS:
        if kind in candidates and pattern.search(names):
            return Resolved(q, kind)
    default = {"torque": "energy", "frequency": "frequency", "density": "density", "power": "power",
               "dimensionless": "dimensionless"}
    for kind in candidates:
        if kind in default:
            return Resolved(q, default[kind])
    return Resolved(q, None)


def resolve(unit: str | None) -> Resolved:
    """What `unit` is (UNECE symbol, `unece:<code>`, a plant spelling, or anything pint reads)."""
    return _resolve_text(unit or "")


def parse(unit: str | None) -> pint.Unit:
    """The pint unit of `unit` (raises UnitError when plantlake cannot read it)."""
    return resolve(unit).quantity.units


def kind_of(unit: str | None) -> str | None:
    return resolve(unit).kind


@lru_cache(maxsize=2048)
def canonical_unit(unit: str | None, quantity: str | None = None) -> str:
    """The canonical unit for what `unit` measures (`quantity` names the kind when the unit cannot)."""
    r = resolve(unit)
    kind = quantity or r.kind
    if kind in CANONICAL:
        return CANONICAL[kind]
    # an unusual quantity keeps its own unit, spelled the way pint spells it
    return f"{r.quantity.units:~}".replace(" ", "")


def _family(kind: str | None) -> str | None:
    return _FAMILY.get(kind, kind) if kind else None


@lru_cache(maxsize=2048)
def affine(source: str | None, target: str | None, quantity: str | None = None) -> tuple[float, float]:
    """(scale, offset) such that value_in_target = scale * value_in_source + offset.

    Refuses units of different quantity kinds even where pint would convert them (torque to
    energy, rotational speed in rad/s to 1/min); `quantity` is the kind of the source's values.
    """
    src, dst = resolve(source), resolve(target)
    src_kind = quantity or src.kind
    if src_kind and dst.kind and _family(src_kind) != _family(dst.kind):
        raise UnitError(f"cannot convert {source!r} ({src_kind.replace('_', ' ')}) to {target!r} "
                        f"({dst.kind.replace('_', ' ')}): they measure different quantities; set the tag's "
                        "`quantity` or `canonical_unit` in the site config")
    try:
        if src.quantity.magnitude == 1 and dst.quantity.magnitude == 1:  # offset units stay affine (degF)
            y0 = ureg.Quantity(0.0, src.quantity.units).to(dst.quantity.units).magnitude
            y1 = ureg.Quantity(1.0, src.quantity.units).to(dst.quantity.units).magnitude
        else:  # a scaled expression (e.g. ppht = 1e-5): no offset
            y0, y1 = 0.0, src.quantity.to(dst.quantity.units).magnitude / dst.quantity.magnitude
    except pint.errors.DimensionalityError as exc:
        raise UnitError(f"cannot convert {source!r} to {target!r}: they measure different quantities") from exc
    return float(y1 - y0), float(y0)
