"""Every benchmark, the scale curves, and docs/performance.md with its plots (`make bench`).

Each benchmark runs in its own process (so one's memory never shows in another's peak)
and writes its result as JSON; this script gathers them into docs/performance.md: the
workload, plantlake, the bare-library baseline and the peer of each, measured in the same
run, the median of the per-run ratios, items per second and peak memory, then the scale
curves (plotted into docs/performance/*.png) and the notes kept in bench/notes.md (what
the profiler found, and why a missed target is missed).

    python bench/run.py                 # everything (about 45 minutes on 2 cores)
    python bench/run.py --only conform  # one benchmark and its curve; the others' results are kept
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from harness import Result

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DOCS = ROOT / "docs"
RESULTS = DOCS / "performance"  # the JSON of the last run of each point, and the plots

#: the headline run of each benchmark
MAIN: dict[str, list[str]] = {
    "conform": ["--rows", "5000000", "--repeat", "3"],
    "opcua": ["--lines", "5", "--hours", "1", "--repeat", "3"],
    "mqtt": ["--messages", "100000", "--repeat", "3"],
    "mqtt_sustained": ["--rate", "10000", "--minutes", "10"],
    "images": ["--frames", "real", "--images", "300", "--repeat", "3"],
    "images_small": ["--frames", "small", "--images", "10000", "--repeat", "3"],
    "erp": ["--rows", "1000000", "--repeat", "3"],
    "compaction": ["--rows", "5000000", "--files", "240", "--repeat", "3"],
    "conform_s3": ["--rows", "1000000", "--repeat", "3", "--lake", "s3"],
    "demo": ["--repeat", "3"],
}
#: benchmarks that run another one's script with other arguments
SCRIPT = {"conform_s3": "conform", "images_small": "images"}
#: the scale curves: the size argument, the sizes and how often each is repeated
SCALE: dict[str, tuple[str, list[tuple[int, int]]]] = {
    "conform": ("--rows", [(1_000_000, 3), (5_000_000, 3), (20_000_000, 1)]),
    "mqtt": ("--messages", [(10_000, 3), (100_000, 3), (1_000_000, 1)]),
    "images_small": ("--images", [(1_000, 3), (10_000, 3)]),
}
VERSIONS = ("pyarrow", "great-expectations", "asyncua", "paho-mqtt", "mqtt5", "pillow", "dlt", "duckdb", "apache-airflow")


def run(name: str, args: list[str], out: Path) -> Result:
    print(f"\n== {name} {' '.join(args)}", flush=True)
    t = time.perf_counter()
    script = SCRIPT.get(name, name)
    subprocess.run([sys.executable, str(BENCH / f"{script}.py"), *args, "--json", str(out)], cwd=ROOT, check=True)
    print(f"   ({time.perf_counter() - t:.0f} s)", flush=True)
    return Result.load(out)


def shrink(argv: list[str]) -> list[str]:
    """Sizes / 10 (at least 1) and one run, for --quick."""
    out = list(argv)
    for i, v in enumerate(out):
        if i and out[i - 1] == "--repeat":
            out[i] = "1"
        elif i and out[i - 1] in ("--rows", "--messages", "--images", "--minutes"):
            out[i] = str(max(1, int(v) // 10))
    return out


def point_args(name: str, size: int, repeat: int) -> list[str]:
    flag, _ = SCALE[name]
    args = list(MAIN[name])
    i = args.index(flag)
    args[i + 1] = str(size)
    args[args.index("--repeat") + 1] = str(repeat)
    return args


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated benchmarks to run now (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: every size / 10, one run each, results and docs under /tmp")
    args = ap.parse_args()
    if args.quick:
        global RESULTS, DOCS  # noqa: PLW0603 - a smoke run must not overwrite the published figures
        DOCS = Path(tempfile.mkdtemp(prefix="plantlake-bench-quick-"))
        RESULTS = DOCS / "performance"
        for name, argv in MAIN.items():
            MAIN[name] = shrink(argv)
        for name, (flag, points) in SCALE.items():
            SCALE[name] = (flag, [(max(1, size // 10), 1) for size, _ in points])
    chosen = args.only.split(",") if args.only else list(MAIN)
    unknown = set(chosen) - set(MAIN)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(MAIN)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    finished: dict[str, str] = {}
    for name in chosen:
        main_out = RESULTS / f"{name}.json"
        run(name, MAIN[name], main_out)
        if name in SCALE:
            flag, points = SCALE[name]
            headline = int(MAIN[name][MAIN[name].index(flag) + 1])
            for size, repeat in points:
                out = RESULTS / f"{name}-{size}.json"
                if size == headline:
                    out.write_text(main_out.read_text())
                else:
                    run(name, point_args(name, size, repeat), out)
        finished[name] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_docs(took_s=time.perf_counter() - started, ran=finished)


# ---- docs/performance.md ---------------------------------------------------------------------


def machine() -> str:
    import os

    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for dist in VERSIONS:
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return (f"{os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}; {', '.join(versions)}")


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:,.2f}"


def summary_rows(results: dict[str, Result]) -> list[str]:
    rows = ["| benchmark | workload | plantlake | baseline | peer | ratio (median of runs) | target | "
            "plantlake per s | peak memory |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        ours = r.get("plantlake")
        bases = [c for c in r.contenders if c.role == "baseline"]
        peers = [c for c in r.contenders if c.role == "peer"]
        ratios = [f"{r.ratio(c.name):.2f}x vs {c.name}" for c in bases + peers]
        if r.limit_s is not None:
            ratios.append(f"{ours.median_s:.0f} s of {r.limit_s:.0f} s")
        status = {True: "met", False: "**missed**", None: "—"}[r.met]
        rows.append(
            f"| {name} | {r.workload} | {ours.median_s:.2f} s | "
            f"{'; '.join(f'{b.median_s:.2f} s ({b.label})' for b in bases) or '—'} | "
            f"{'; '.join(f'{p.median_s:.2f} s ({p.label})' for p in peers) or '—'} | {'; '.join(ratios)} | "
            f"{r.target_text}: {status} | {fmt_rate(r.per_s('plantlake'))} {r.unit}/s | "
            f"{max(ours.peak_mib):,.0f} MiB |")
    return rows


def detail(name: str, r: Result) -> list[str]:
    lines = [f"### {name}", "", r.workload + f"; median of {r.repeat} runs.", "",
             "| contender | role | median | per s | peak memory | rise during the run | runs (s) |",
             "|---|---|---|---|---|---|---|"]
    for c in r.contenders:
        lines.append(f"| {c.label} | {c.role} | {c.median_s:.2f} s | {fmt_rate(r.per_s(c.name))} {r.unit}/s | "
                     f"{max(c.peak_mib):,.0f} MiB | {max(c.grew_mib):,.0f} MiB | "
                     f"{', '.join(f'{s:.2f}' for s in c.seconds)} |")
    lines.append("")
    lines += [f"- {n}" for n in r.notes]
    return [*lines, ""]


def scale_section(name: str) -> list[str]:
    flag, points = SCALE[name]
    found = [(size, Result.load(RESULTS / f"{name}-{size}.json")) for size, _ in points
             if (RESULTS / f"{name}-{size}.json").exists()]
    if not found:
        return []
    unit = found[0][1].unit
    base_name = next((c.name for c in found[0][1].contenders if c.role == "baseline"), None)
    lines = [f"### {name}: {', '.join(f'{s:,}' for s, _ in found)} {unit}", "",
             f"![{name} scale curve](performance/{name}-scale.png)", "",
             f"| {unit} | runs | plantlake | per s | peak memory | {base_name} | ratio |", "|---|---|---|---|---|---|---|"]
    for _, r in found:
        ours = r.get("plantlake")
        base = r.get(base_name) if base_name else None
        lines.append(f"| {r.items:,} | {r.repeat} | {ours.median_s:.2f} s | {fmt_rate(r.per_s('plantlake'))} | "
                     f"{max(ours.peak_mib):,.0f} MiB | {f'{base.median_s:.2f} s' if base else '—'} | "
                     f"{f'{r.ratio(base_name):.2f}x' if base else '—'} |")
    r0, r1 = found[0][1], found[-1][1]
    growth = r1.items / r0.items
    t_growth = r1.get("plantlake").median_s / r0.get("plantlake").median_s
    m0, m1 = max(r0.get("plantlake").peak_mib), max(r1.get("plantlake").peak_mib)
    lines += ["", f"From {r0.items:,} to {r1.items:,} {unit} ({growth:.0f}x the work): time x{t_growth:.1f} "
                  f"(time per item x{t_growth / growth:.2f}), peak memory x{m1 / m0:.1f} "
                  f"({m0:,.0f} -> {m1:,.0f} MiB).", ""]
    plot(name, found, unit, base_name)
    return lines


def plot(name: str, found: list[tuple[int, Result]], unit: str, base_name: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r.items for _, r in found]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    ax_t.plot(x, [r.get("plantlake").median_s for _, r in found], "o-", label="plantlake")
    if base_name:
        ax_t.plot(x, [r.get(base_name).median_s for _, r in found], "s--", label=f"{base_name} (baseline)")
    t1 = found[-1][1].get("plantlake").median_s  # through the largest point, where fixed costs matter least
    ax_t.plot([x[0], x[-1]], [t1 * x[0] / x[-1], t1], ":", color="grey", label="linear (through the largest point)")
    ax_t.set(xscale="log", yscale="log", xlabel=unit, ylabel="seconds (median)", title=f"{name}: time")
    ax_t.legend(fontsize=8)
    ax_m.plot(x, [max(r.get("plantlake").peak_mib) for _, r in found], "o-", label="plantlake")
    if base_name:
        ax_m.plot(x, [max(r.get(base_name).peak_mib) for _, r in found], "s--", label=f"{base_name} (baseline)")
    ax_m.set(xscale="log", xlabel=unit, ylabel="peak resident MiB", title=f"{name}: peak memory")
    ax_m.set_ylim(bottom=0)
    ax_m.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}-scale.png", dpi=90)
    plt.close(fig)


def write_docs(*, took_s: float, ran: dict[str, str]) -> None:
    """docs/performance.md from the kept results; `ran`: when each benchmark of this run finished."""
    results = {name: Result.load(RESULTS / f"{name}.json") for name in MAIN if (RESULTS / f"{name}.json").exists()}
    run_info = json.loads((RESULTS / "runs.json").read_text()) if (RESULTS / "runs.json").exists() else {}
    run_info.update(ran)
    (RESULTS / "runs.json").write_text(json.dumps(run_info, indent=1))
    lines = [
        "# Performance", "",
        "Written by `make bench` (`bench/run.py`); do not edit by hand — the prose it includes is in "
        "`bench/notes.md`. Every benchmark runs plantlake and a bare-library baseline (and a peer tool where "
        "there is one) on the same workload, in one process, one after the other, several times; the ratio "
        "is the median of the per-run ratios of their times (higher is faster for plantlake). Machines are "
        "noisy: compare ratios, not seconds. Peak memory is the largest resident set of the benchmark's "
        "process (with its pool workers, without the servers it reads from) while the contender ran; it "
        "includes the workload the benchmark holds (the input table of conform), and plantlake keeps Arrow's "
        "freed memory for reuse (MIMALLOC_PURGE_DELAY=-1), so the rise during a run is what the contender "
        "added over the warm-up's high-water mark.", "",
        f"Machine: {machine()}.", "",
        f"Last run: {', '.join(f'{k} {v}' for k, v in run_info.items())} "
        f"(the last `bench/run.py` took {took_s / 60:.0f} min).", "",
        "## Results", "", *summary_rows(results), "",
        "## Each benchmark", "",
    ]
    for name, r in results.items():
        lines += detail(name, r)
    lines += ["## Scale curves", "",
              "Each point is its own process (so peak memory is that size's alone); the largest points run once.", ""]
    for name in SCALE:
        lines += scale_section(name)
    lines += [(BENCH / "notes.md").read_text().strip(), ""]
    (DOCS / "performance.md").write_text("\n".join(lines))
    print(f"\nwrote {DOCS / 'performance.md'}")


if __name__ == "__main__":
    main()
