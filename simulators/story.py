"""The story the four silos tell: one battery-cell plant, generated from a seed and a start.

Lines run production orders back to back; each order makes serialized parts at a fixed
cycle; a camera photographs every finished part; the ERP inspects every part. A
defective part had a weld-temperature overshoot while it was being welded, shows a
visible defect in its image and fails its inspection. Sensor faults come in episodes
with Uncertain/Bad status codes.

Everything is a pure function of (seed, start, time): any window can be generated
without simulating what came before, and the same seed gives the same plant, byte for
byte. Values are computed with numpy on whole time grids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np

ENTERPRISE, SITE, AREA = "acme", "shenzhen", "assembly"
NAMESPACE_URI = "urn:acme:shenzhen:plantsim"
GOOD, UNCERTAIN, BAD = 0, 0x40900000, 0x808B0000  # Good, UncertainLastUsableValue, BadSensorFailure
MATERIALS = [
    ("CELL-LFP-100", "LFP prismatic cell 100 Ah", "FERT", "PC"),
    ("CELL-LFP-280", "LFP prismatic cell 280 Ah", "FERT", "PC"),
    ("CELL-NMC-50", "NMC pouch cell 50 Ah", "FERT", "PC"),
    ("ELEC-CATH-01", "Cathode electrode coil", "HALB", "M"),
]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 over uint64 arrays: a fast, stable integer hash."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)).astype(np.uint64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _key(*parts: object) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "little"))


def uniform(seed: int, name: str, k: np.ndarray) -> np.ndarray:
    """Deterministic U[0,1) per integer index k for a named stream."""
    return (_mix(np.asarray(k, dtype=np.int64).astype(np.uint64) ^ _key(seed, name)) >> np.uint64(11)).astype(np.float64) / 2.0**53


@dataclass(frozen=True)
class TagSpec:
    """One signal of a machine: how it looks and which protocol serves it."""

    name: str
    kind: str  # double | int | bool | string | counter
    unit: str = ""  # the unit the device reports in
    base: float = 0.0
    amp: float = 0.0
    noise: float = 0.0
    period_s: float = 3600.0
    protocol: str = "opcua"  # opcua | mqtt | sparkplug
    states: tuple[str, ...] = ()


def _common(prefix: str) -> list[TagSpec]:
    return [
        TagSpec("state", "string", states=("RUNNING", "IDLE", "SETUP")),
        TagSpec("running", "bool"),
        TagSpec(f"{prefix}_count", "counter", base=1.0),
        TagSpec("alarm_count", "int", base=0, amp=2, period_s=5400),
    ]


ROLE_TAGS: dict[str, list[TagSpec]] = {
    "coater": [
        *[TagSpec(f"dryer_temp_zone{z}", "double", "degC", 110 + 5 * z, 2.0, 0.3, 1800 + 200 * z) for z in range(1, 5)],
        TagSpec("web_speed", "double", "m/min", 42, 1.5, 0.2, 2400),
        TagSpec("coating_thickness", "double", "um", 85, 1.2, 0.4, 1500),
        TagSpec("slurry_viscosity", "double", "mPa*s", 5200, 150, 20, 4000),
        TagSpec("web_tension", "double", "N", 180, 6, 1.5, 900),
        *_common("meters"),
        TagSpec("power", "double", "kW", 65, 4, 0.8, 1200, protocol="mqtt"),
        TagSpec("energy", "counter", "kWh", 0.02, protocol="mqtt"),
        TagSpec("ambient_temp", "double", "degC", 24, 1.5, 0.2, 7200, protocol="mqtt"),
    ],
    "press": [
        TagSpec("roll_force", "double", "kN", 1800, 40, 5, 2000),
        TagSpec("roll_gap", "double", "um", 95, 0.8, 0.1, 2500),
        TagSpec("roll_temp", "double", "degC", 85, 1.5, 0.2, 3000),
        TagSpec("line_speed", "double", "m/min", 40, 1.0, 0.2, 2400),
        TagSpec("motor_power", "double", "kW", 45, 3, 0.5, 1100),
        TagSpec("motor_current", "double", "A", 82, 5, 0.8, 1100),
        TagSpec("hydraulic_pressure", "double", "bar", 210, 4, 0.6, 1700),
        *_common("strokes"),
        TagSpec("vibration", "double", "mm/s", 2.2, 0.4, 0.1, 600, protocol="mqtt"),
        TagSpec("power", "double", "W", 47000, 3000, 400, 1200, protocol="mqtt"),
        TagSpec("ambient_temp", "double", "degF", 75, 2.5, 0.3, 7200, protocol="mqtt"),
    ],
    "welder": [
        TagSpec("weld_temp", "double", "degC", 320, 6, 1.0, 1300),
        TagSpec("weld_power", "double", "kW", 3.2, 0.15, 0.03, 900),
        TagSpec("weld_current", "double", "A", 1450, 40, 8, 900),
        TagSpec("weld_voltage", "double", "V", 2.2, 0.05, 0.01, 900),
        TagSpec("weld_time", "double", "ms", 120, 3, 0.5, 1000),
        TagSpec("cooling_water_temp", "double", "degC", 21, 0.8, 0.1, 3600),
        TagSpec("electrode_wear", "double", "%", 35, 10, 0.05, 86400),
        *_common("welds"),
        TagSpec("coolant_flow", "double", "l/min", 12, 0.6, 0.1, 1400, protocol="sparkplug"),
        TagSpec("coolant_supply_temp", "double", "degC", 18, 0.5, 0.05, 3000, protocol="sparkplug"),
        TagSpec("chiller_running", "bool", protocol="sparkplug"),
    ],
    "camera": [
        TagSpec("exposure_time", "double", "ms", 4.0, 0.2, 0.02, 3600),
        TagSpec("light_intensity", "double", "%", 80, 3, 0.3, 5400),
        TagSpec("lens_temp", "double", "degC", 34, 1.0, 0.1, 3600),
        TagSpec("trigger_rate", "double", "1/min", 1.0, 0.05, 0.01, 1800),
        TagSpec("reject_count", "int", base=0, amp=3, period_s=7200),
        *_common("images"),
    ],
}
ROLES = ("coater", "press", "welder", "camera")


@dataclass(frozen=True)
class Machine:
    line: str
    id: str
    role: str

    @property
    def asset_id(self) -> str:
        return f"{ENTERPRISE}/{SITE}/{AREA}/{self.line}/{self.id}"

    def tags(self, protocol: str | None = None) -> list[TagSpec]:
        specs = ROLE_TAGS[self.role]
        if self.line == "line2" and self.role == "coater":  # line 2's coater IoT gateway reports degF
            specs = [TagSpec(**{**s.__dict__, "unit": "degF", "base": s.base * 9 / 5 + 32, "amp": s.amp * 9 / 5})
                     if s.protocol == "mqtt" and s.unit == "degC" else s for s in specs]
        return [s for s in specs if protocol is None or s.protocol == protocol]


@dataclass(frozen=True)
class Order:
    order_id: str
    line: str
    material_id: str
    planned_start: datetime
    planned_end: datetime
    actual_start: datetime
    actual_end: datetime
    quantity_planned: int
    created_at: datetime
    released_at: datetime

    def status_at(self, t: datetime) -> tuple[str, datetime]:
        """(status, time of that transition) as the ERP knows it at time t."""
        if t >= self.actual_end:
            return "completed", self.actual_end
        if t >= self.actual_start:
            return "running", self.actual_start
        if t >= self.released_at:
            return "released", self.released_at
        return "planned", self.created_at


@dataclass(frozen=True)
class Part:
    serial: str
    order_id: str
    line: str
    started_at: datetime
    finished_at: datetime
    defect: bool
    defect_code: str | None
    measured: float  # weld resistance in mOhm

    @property
    def passed(self) -> bool:
        return not self.defect


@dataclass(frozen=True)
class Alarm:
    """A weld-temperature alarm episode on a line's welder: active while defective parts are
    welded (back-to-back ones make one episode), acknowledged by the operator, then back to normal."""

    line: str
    active_from: datetime
    acked_at: datetime
    active_to: datetime


@dataclass
class Plant:
    """The virtual plant. `start` anchors the order schedule; nothing reads the clock."""

    seed: int = 42
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    lines: int = 2
    sample_s: int = 10
    cycle_s: int = 60
    defect_rate: float = 0.08
    fault_rate: float = 0.02
    _orders: dict[str, list[Order]] = field(default_factory=dict, repr=False)

    LSL, USL = 0.20, 0.32  # weld resistance limits, mOhm
    WELD_TEMP_HIGH = 350.0  # degC: the welder's high alarm limit; only the overshoot crosses it
    ACK_S = 20  # the operator acknowledges a weld alarm this many seconds after it comes on

    @cached_property
    def machines(self) -> list[Machine]:
        out = []
        for ln in range(1, self.lines + 1):
            for role in ROLES:
                out.append(Machine(f"line{ln}", f"{role}{ln}", role))
        return out

    @property
    def line_ids(self) -> list[str]:
        return [f"line{i}" for i in range(1, self.lines + 1)]

    def machine(self, line: str, role: str) -> Machine:
        return next(m for m in self.machines if m.line == line and m.role == role)

    # ------------------------------------------------------------------ orders and parts

    def orders(self, start: datetime, end: datetime) -> list[Order]:
        """Orders whose actual window overlaps [start, end)."""
        return [o for line in self.line_ids for o in self._line_orders(line, end)
                if o.actual_end > start and o.actual_start < end]

    def _line_orders(self, line: str, until: datetime) -> list[Order]:
        cached = self._orders.setdefault(line, [])
        t = cached[-1].actual_end if cached else self.start
        i = len(cached)
        ln = int(line.removeprefix("line"))
        while t < until:
            u = uniform(self.seed, f"order/{line}", np.arange(i * 4, i * 4 + 4))
            qty = int(60 + u[0] * 60)  # 60..119 parts
            gap = timedelta(minutes=int(5 + u[1] * 20))  # changeover
            planned_start = t + gap
            actual_start = planned_start + timedelta(minutes=int(u[2] * 10))
            actual_end = actual_start + timedelta(seconds=qty * self.cycle_s)
            material = MATERIALS[int(u[3] * 3)][0]
            cached.append(Order(
                order_id=f"PO{ln}{i + 1:06d}", line=line, material_id=material,
                planned_start=planned_start, planned_end=planned_start + timedelta(seconds=qty * self.cycle_s),
                actual_start=actual_start, actual_end=actual_end, quantity_planned=qty,
                created_at=planned_start - timedelta(days=1), released_at=planned_start - timedelta(hours=1)))
            t, i = actual_end, i + 1
        return cached

    def parts(self, start: datetime, end: datetime) -> list[Part]:
        """Parts finished in [start, end)."""
        out = []
        for o in self.orders(start - timedelta(seconds=self.cycle_s), end):
            out.extend(p for p in self.order_parts(o) if start <= p.finished_at < end)
        return sorted(out, key=lambda p: (p.finished_at, p.line))

    def order_parts(self, o: Order) -> list[Part]:
        n = o.quantity_planned
        u = uniform(self.seed, f"part/{o.order_id}", np.arange(n * 2))
        parts = []
        for k in range(n):
            started = o.actual_start + timedelta(seconds=k * self.cycle_s)
            defect = bool(u[2 * k] < self.defect_rate)
            code = ("WELD_CRACK", "SPATTER", "BURN_MARK")[int(u[2 * k + 1] * 3)] if defect else None
            nominal = self.LSL + (self.USL - self.LSL) * (0.3 + 0.4 * u[2 * k + 1])
            measured = round(self.USL + 0.02 + 0.05 * u[2 * k + 1] if defect else nominal, 4)
            parts.append(Part(f"{o.order_id}-{k + 1:04d}", o.order_id, o.line, started,
                              started + timedelta(seconds=self.cycle_s), defect, code, measured))
        return parts

    def alarms(self, start: datetime, end: datetime) -> list[Alarm]:
        """Weld-temperature alarm episodes overlapping [start, end), by activation time."""
        out = []
        margin = timedelta(hours=2)  # an episode is the same whatever window asks for it
        for line in self.line_ids:
            episodes: list[list[datetime]] = []
            for p in self.parts(start - margin, end + margin):
                if p.line != line or not p.defect:
                    continue
                if episodes and episodes[-1][1] == p.started_at:
                    episodes[-1][1] = p.finished_at
                else:
                    episodes.append([p.started_at, p.finished_at])
            out += [Alarm(line, a, min(a + timedelta(seconds=self.ACK_S), b), b) for a, b in episodes
                    if a < end and b > start]
        return sorted(out, key=lambda a: (a.active_from, a.line))

    # ------------------------------------------------------------------ signals

    def grid(self, start: datetime, end: datetime, step_s: int | None = None) -> np.ndarray:
        """Sample times in [start, end) on the plant's grid, as int64 microseconds since epoch."""
        step = int((step_s or self.sample_s) * 1_000_000)
        s, e = _us(start), _us(end)
        first = -(-s // step) * step
        return np.arange(first, e, step, dtype=np.int64)

    def values(self, machine: Machine, tag: TagSpec, t_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values, status codes) of one tag at the given times. Strings come back as objects."""
        k = t_us // 1_000_000
        name = f"{machine.asset_id}/{tag.name}"
        noise = (uniform(self.seed, name, k) - 0.5) * 2
        phase = uniform(self.seed, name + "/phase", np.array([0]))[0] * 2 * np.pi
        running = self.running(machine.line, t_us)
        if tag.kind == "double":
            v = tag.base + tag.amp * np.sin(2 * np.pi * k / tag.period_s + phase) + tag.noise * noise
            if tag.name == "weld_temp":
                v = v + 45.0 * self.defect_window(machine.line, t_us)  # the overshoot that makes defects
            v = np.where(running, v, tag.base * 0.6 if tag.unit not in ("degC", "degF") else v)
        elif tag.kind == "int":
            v = np.floor(tag.base + tag.amp * (np.sin(2 * np.pi * k / tag.period_s + phase) + 1)).astype(np.int64)
        elif tag.kind == "counter":
            v = np.floor((k - _us(self.start) // 1_000_000) * max(tag.base, 0.01)).astype(np.int64)
        elif tag.kind == "bool":
            v = running.copy()
        else:
            v = np.where(running, tag.states[0] if tag.states else "RUNNING", tag.states[1] if len(tag.states) > 1 else "IDLE").astype(object)
        return v, self.status(name, k)

    def status(self, name: str, k: np.ndarray) -> np.ndarray:
        """Fault episodes: a 10-minute block is Uncertain or Bad with a small probability."""
        block = k // 600
        u = uniform(self.seed, name + "/fault", block)
        return np.where(u < self.fault_rate / 2, BAD, np.where(u < self.fault_rate, UNCERTAIN, GOOD)).astype(np.int64)

    def running(self, line: str, t_us: np.ndarray) -> np.ndarray:
        if len(t_us) == 0:
            return np.zeros(0, dtype=bool)
        orders = self._line_orders(line, _dt(int(t_us.max()) + 1))
        starts = np.array([_us(o.actual_start) for o in orders], dtype=np.int64)
        ends = np.array([_us(o.actual_end) for o in orders], dtype=np.int64)
        i = np.searchsorted(starts, t_us, side="right") - 1
        return (i >= 0) & (t_us < ends[np.clip(i, 0, None)])

    def defect_window(self, line: str, t_us: np.ndarray) -> np.ndarray:
        """1.0 while a defective part is being welded on the line, else 0.0."""
        if len(t_us) == 0:
            return np.zeros(0)
        lo, hi = _dt(int(t_us.min())), _dt(int(t_us.max()) + 1)
        out = np.zeros(len(t_us))
        for p in self.parts(lo, hi + timedelta(seconds=self.cycle_s)):
            if p.line == line and p.defect:
                out[(t_us >= _us(p.started_at)) & (t_us < _us(p.finished_at))] = 1.0
        return out


def _us(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
