"""Units from the standards, not from our simulator: every row of plantlake's UNECE table is
checked against UN/CEFACT Recommendation 20's conversion factor and OPC UA Part 8's UnitId rule,
and the spellings plants write resolve to the right quantity kind."""

from __future__ import annotations

import math
import re

import pytest

from schemas import units
from schemas.units import UnitError, affine, canonical_unit, kind_of, resolve, unece_table, ureg

pytestmark = pytest.mark.unit

_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
#: Rec 20 rows that are wrong as printed, with the correction (checked by hand against the unit's
#: definition): C94 reciprocal minute names s where s⁻¹ is meant; H67 millimetre per hour is
#: 1e-3 m / 3600 s = 2.777 777 778 x 10⁻⁷ m/s, Rec 20's exponent is one off.
ERRATA = {"C94": "1,666 667 x 10⁻² s⁻¹", "H67": "0,277 777 778 × 10⁻⁶ m x s⁻¹"}
#: Rows where Rec 20 keeps an older definition than pint (relative difference allowed, why):
NEWER_DEFINITION = {
    "GLI": (1e-6, "the UK gallon is 4.546 09 l exactly since 1985; Rec 20 keeps 4.546 092"),
    "A53": (1e-6, "the electronvolt is exact since the 2019 SI; Rec 20 keeps the CODATA 2006 value"),
}


def rec20_factor(text: str) -> tuple[float, float, str]:
    """(value, tolerance, SI unit) from Rec 20's notation: decimal comma, spaces between digit
    groups, 'x 10ⁿ', '5/9 x K'. The tolerance is one unit in the last digit Rec 20 gives (its
    factors are rounded or truncated there); integers and powers of ten are exact."""
    t = text.replace("×", "x").strip()
    t = re.sub(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)", lambda m: "10^" + m.group(1).translate(_SUP), t)
    t = re.sub(r"([A-Za-zΩ)])([⁻]?[¹²³⁴])", lambda m: m.group(1) + "^" + m.group(2).translate(_SUP), t)
    value, decimals, exp = 1.0, 0, 0
    m = re.match(r"^(\d+)/(\d+)\s*x\s*", t)
    if m:
        value, t = int(m.group(1)) / int(m.group(2)), t[m.end():]
    else:
        m = None if t.startswith("10^") else re.match(r"^(\d[\d ]*(?:,[\d ]*\d)?)", t)
        if m:
            digits = m.group(1).replace(" ", "")
            whole, _, frac = digits.partition(",")
            value, decimals, t = float(f"{whole}.{frac or 0}"), len(frac), t[m.end():].strip()
        m = re.match(r"^(?:x\s*)?10(?:\^(-?\d+))?(?![\d,])", t)
        if m and (m.group(1) is not None or t.startswith("x")):
            exp, t = int(m.group(1) or 1), t[m.end():].strip()
    t = re.sub(r"^x\s*", "", t.strip())
    unit = t.replace(" x ", "*").replace("x ", "*").replace("^", "**").strip() or "dimensionless"
    unit = "1" + unit if unit.startswith("/") else unit
    scale = 10.0 ** exp
    tol = (10.0 ** -decimals) * scale if decimals else abs(value * scale) * 1e-9
    return value * scale, tol, unit


def test_the_notation_parser_reads_rec20_as_written():
    assert rec20_factor("1,355 818 J") == pytest.approx((1.355818, 1e-6, "J"))
    v, tol, unit = rec20_factor("7,030 696 x 10² kg/m²")
    assert v == pytest.approx(703.0696) and tol == pytest.approx(1e-4) and unit == "kg/m**2"
    assert rec20_factor("10⁻³ m")[::2] == (1e-3, "m")
    assert rec20_factor("1 013 25 Pa")[::2] == (101325.0, "Pa")
    assert rec20_factor("5/9 x K")[::2] == pytest.approx((5 / 9, "K"))
    assert rec20_factor("1,67 x 10⁻²/s")[2] == "1/s"
    assert rec20_factor("2,777 78 × 10⁻⁴ kg x s⁻¹")[2] == "kg*s**-1"


@pytest.mark.parametrize("row", unece_table(), ids=lambda r: f"{r.code}:{r.symbol}")
def test_every_code_converts_as_rec20_says(row):
    value, tol, si = rec20_factor(ERRATA.get(row.code, row.factor))
    if row.code in NEWER_DEFINITION:
        tol = max(tol, abs(value) * NEWER_DEFINITION[row.code][0])
    mine = ureg.parse_expression(row.pint or row.symbol)
    if row.kind == "temperature":  # Rec 20 gives the scale of an interval; offsets are tested below
        got = ureg.Quantity(1, "delta_" + str(mine.units)).to(si).magnitude if str(mine.units) in (
            "degree_Celsius", "degree_Fahrenheit") \
            else mine.to(si).magnitude
    elif row.kind == "rotational_speed" and "rad" in si:  # Rec 20's revolution is 2π rad (code M44)
        got = mine.to("1/s").magnitude
        value, tol = value / (2 * math.pi), tol / (2 * math.pi)
        si = "1/s"
    else:
        got = mine.to(si).magnitude
    assert abs(got - value) <= tol, f"{row.code} {row.name}: pint gives {got} {si}, Rec 20 says {row.factor}"
    assert row.kind in units.CANONICAL, f"{row.code}: unknown kind {row.kind}"
    # and plantlake converts it into its kind's canonical unit
    scale, _ = affine(f"unece:{row.code}", canonical_unit(f"unece:{row.code}"))
    assert math.isfinite(scale) and scale > 0


def test_unit_ids_follow_opc_ua_part8():
    """UnitId is the code's ASCII bytes as a big-endian integer (values as the OPC Foundation lists them)."""
    for row in unece_table():
        assert row.unit_id == units.unit_id(row.code), row.code
        assert units.code_of(row.unit_id) == row.code
    assert units.unit_id("NU") == 20053 and units.unit_id("RPM") == 5394509 and units.unit_id("CEL") == 4408652
    assert units.code_of(-1) is None and units.code_of(0) is None


def test_table_is_hundreds_of_industrial_codes():
    codes = [r.code for r in unece_table()]
    assert len(codes) == len(set(codes)) >= 300
    kinds = {r.kind for r in unece_table()}
    assert {"torque", "energy", "rotational_speed", "frequency", "volume_flow", "mass_flow", "pressure",
            "concentration", "temperature"} <= kinds


@pytest.mark.parametrize("text,value,expected,unit", [
    # the values the first version published wrong
    ("N.m", 2.5, 2.5, "N*m"), ("N*m", 2.5, 2.5, "N*m"), ("Nm", 2.5, 2.5, "N*m"), ("N·m", 2.5, 2.5, "N*m"),
    ("rpm", 1200, 1200, "1/min"), ("r/min", 1200, 1200, "1/min"), ("U/min", 1200, 1200, "1/min"),
    ("1/min", 1200, 1200, "1/min"), ("rps", 20, 1200, "1/min"),
    ("m3/h", 12, 12, "m^3/h"), ("m³/h", 12, 12, "m^3/h"), ("l/min", 100, 6, "m^3/h"),
    ("ppm", 250, 250, "ppm"), ("ppb", 250, 0.25, "ppm"), ("%", 12.5, 12.5, "%"),
    ("lbf", 1000, 4.448222, "kN"), ("ft*lbf", 10, 13.55818, "N*m"), ("lbf·ft", 10, 13.55818, "N*m"),
    ("kWh", 1.5, 1.5, "kWh"), ("J", 3.6e6, 1.0, "kWh"), ("W·h", 500, 0.5, "kWh"),
    ("°F", 212, 100, "degC"), ("degF", 32, 0, "degC"), ("K", 273.15, 0, "degC"), ("psi", 14.503774, 1.0, "bar"),
    ("kPa", 250, 2.5, "bar"), ("mbar", 1013.25, 1.01325, "bar"), ("kg/h", 36, 36, "kg/h"), ("t/h", 1.2, 1200, "kg/h"),
    ("kVA", 2, 2, "kVA"), ("mm/s", 4.5, 0.0045, "m/s"), ("µS/cm", 500, 500, "uS/cm"), ("mS/cm", 1.2, 1200, "uS/cm"),
    ("cSt", 32, 32, "mm^2/s"), ("cP", 12, 12, "mPa*s"), ("kN", 12, 12, "kN"), ("mm", 12, 12, "mm"), ("in", 1, 25.4, "mm"),
])
def test_plant_spellings_convert_by_quantity_kind(text, value, expected, unit):
    canon = canonical_unit(text)
    assert canon == unit
    scale, offset = affine(text, canon)
    assert scale * value + offset == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_units_of_different_kinds_never_convert_into_each_other():
    for source, target in (("N*m", "kWh"), ("N·m", "J"), ("kWh", "N*m"), ("rad/s", "1/min"), ("kVA", "kW"),
                           ("deg", "%"), ("kg/m^3", "kg/h")):
        with pytest.raises(UnitError, match="different quantities"):
            affine(source, target)
    # a mapping that says what the values are decides: an N·m that is work converts to energy
    assert affine("N*m", "kWh", "energy")[0] == pytest.approx(1 / 3.6e6)
    assert canonical_unit("ft*lbf", "energy") == "kWh"


def test_canonical_units_resolve_to_their_own_kind():
    for kind, unit in units.CANONICAL.items():
        assert kind_of(unit) in (kind, units._FAMILY.get(kind)) or (kind, kind_of(unit)) == ("ratio", "ratio"), kind
        assert affine(unit, unit) == (1.0, 0.0)


def test_opc_ua_eu_information_reads_the_unece_code_first():
    ns = units.UNECE_NAMESPACE
    assert units.from_eu_information(ns, units.unit_id("NU"), "Nm") == "N·m"
    assert units.from_eu_information(ns, units.unit_id("RPM"), None) == "r/min"
    assert units.from_eu_information(ns, units.unit_id("MQH"), "m3/h") == "m³/h"
    # a code plantlake does not map still says what it is; the display name is the last resort
    assert units.from_eu_information(ns, units.unit_id("XYZ"), "furlongs") == "unece:XYZ"
    assert units.from_eu_information("urn:vendor:units", 42, "bar") == "bar"
    assert units.from_eu_information(ns, -1, "°C") == "°C"
    with pytest.raises(UnitError, match="not in plantlake's table"):
        resolve("unece:XYZ")
    # code 85 (foot pound-force) is work in Rec 20, while the text ft·lbf is read as a moment
    assert kind_of(units.from_eu_information(ns, units.unit_id("85"), "ft·lbf")) == "energy"


def test_units_reference_is_generated_from_the_table():
    from pathlib import Path

    from schemas.docs import units_reference

    committed = (Path(__file__).resolve().parents[2] / "docs" / "units.md").read_text(encoding="utf-8")
    assert committed == units_reference(), "run: plantlake schemas docs"
    assert "| `NU` | 20053 | N·m | newton metre | torque |" in committed
