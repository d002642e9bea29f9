"""What every benchmark shares: timing several contenders in one process, peak memory, results.

A benchmark measures plantlake against a bare-library baseline (and a peer tool where
there is one) on the same workload in the same process, `repeat` times, and reports the
median time of each, the median of the per-run ratios (machines are noisy: a ratio of two
runs made side by side holds better than either time) and the peak memory of each.

Memory is sampled, not traced: a thread reads the resident set of this process and of its
children (pool workers, servers the benchmark started) every few milliseconds while a
contender runs. `peak_mib` is the largest resident set seen, `grew_mib` how far it rose
above where it started, which is what the contender itself needed.

Each benchmark script prints its result and, with `--json PATH`, writes it for
`bench/run.py`, which gathers them into docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil


class PeakRSS:
    """Largest resident set of this process tree while the block runs (sampled every `every` s)."""

    def __init__(self, pid: int | None = None, every: float = 0.005, children: bool = True) -> None:
        self.proc = psutil.Process(pid)
        self.every = every
        self.children = children
        self.start = self.peak = 0
        self._stop = threading.Event()

    def rss(self) -> int:
        total = 0
        for p in [self.proc, *self._children()]:
            try:
                total += p.memory_info().rss
            except psutil.Error:  # a worker that exited between the listing and the read
                pass
        return total

    def _children(self) -> list[psutil.Process]:
        if not self.children:
            return []
        try:
            return self.proc.children(recursive=True)
        except psutil.Error:
            return []

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = self.rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20

    @property
    def grew_mib(self) -> float:
        return (self.peak - self.start) / 2**20


@dataclass
class Contender:
    name: str
    role: str  # plantlake | baseline | peer | variant (another plantlake setting)
    label: str  # what it does, for the reader
    seconds: list[float] = field(default_factory=list)
    peak_mib: list[float] = field(default_factory=list)
    grew_mib: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Result:
    bench: str
    workload: str
    unit: str  # rows, messages, values, images, runs
    items: int  # units of work per run
    repeat: int
    contenders: list[Contender]
    target: float | None = None  # plantlake's ratio over the baseline (or the peer named by target_vs) must reach
    target_vs: str = "baseline"
    target_text: str = ""
    limit_s: float | None = None  # or: plantlake's median time must stay under this
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: a condition of the target besides the ratio or time, judged by the benchmark (e.g. a queue that does not grow)
    verdict: bool | None = None

    def get(self, name: str) -> Contender:
        return next(c for c in self.contenders if c.name == name or c.role == name)

    def ratio(self, vs: str, who: str = "plantlake") -> float:
        """Median over the runs of (the other's time / plantlake's time) = plantlake's speed as a multiple."""
        a, b = self.get(who), self.get(vs)
        return statistics.median(o / p for o, p in zip(b.seconds, a.seconds, strict=True))

    def per_s(self, name: str) -> float:
        return self.items / self.get(name).median_s

    @property
    def met(self) -> bool | None:
        met = None
        if self.target is not None:
            met = self.ratio(self.target_vs) >= self.target
        elif self.limit_s is not None:
            met = self.get("plantlake").median_s <= self.limit_s
        if self.verdict is not None:
            met = self.verdict and met is not False
        return met

    def text(self) -> str:
        lines = [f"{self.bench}: {self.workload} (median of {self.repeat})"]
        width = max(len(c.label) for c in self.contenders)
        for c in self.contenders:
            lines.append(f"  {c.label:<{width}} : {c.median_s:8.2f} s  {self.per_s(c.name):12,.0f} {self.unit}/s  "
                         f"peak {statistics.median(c.peak_mib):7,.0f} MiB (+{statistics.median(c.grew_mib):,.0f})")
        for c in self.contenders:
            if c.role in ("baseline", "peer") and any(x.role == "plantlake" for x in self.contenders):
                lines.append(f"  ratio plantlake / {c.name}: {self.ratio(c.name):.2f}x")
        if self.met is not None:
            lines.append(f"  target: {self.target_text} -> {'met' if self.met else 'MISSED'}")
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)

    def dump(self, path: Path) -> None:
        data = asdict(self)
        path.write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: Path) -> Result:
        data = json.loads(path.read_text())
        data["contenders"] = [Contender(**c) for c in data["contenders"]]
        return cls(**data)


def measure(contender: Contender, fn: Callable[[], int], expected: int | None, *, children: bool = True) -> int:
    """Run `fn` once for `contender`, recording its time and memory; `fn` returns how many items
    it handled, which must be `expected` (a faster wrong answer is not a result). `children`:
    count this process's children too (pool workers), not when they are the servers read from."""
    with PeakRSS(children=children) as mem:
        t = time.perf_counter()
        n = fn()
        took = time.perf_counter() - t
    if expected is not None and n != expected:
        raise AssertionError(f"{contender.name} handled {n:,} items, expected {expected:,}")
    contender.seconds.append(took)
    contender.peak_mib.append(mem.peak_mib)
    contender.grew_mib.append(mem.grew_mib)
    return n


def arguments(doc: str | None, **defaults: Any) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, value in defaults.items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    ap.add_argument("--json", type=Path, help="also write the result here (for bench/run.py)")
    return ap


def report(result: Result, json_path: Path | None) -> None:
    print(result.text(), flush=True)
    if json_path:
        result.dump(json_path)
