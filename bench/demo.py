"""`make demo` end to end: the virtual plant, every DAG through Airflow, products, catalog, report.

Runs `python -m plantlake demo` on the embedded defaults (plant.yaml copied into a fresh
folder, so nothing is left from a previous run) `--repeat` times, and measures each run's
wall time and the peak memory of its whole process tree (the demo, its OPC UA server
thread, Mosquitto, the camera and ERP simulators). There is no bare baseline for a whole
pipeline: the target is a time, under 60 seconds.

    python bench/demo.py --repeat 3 [--json out.json]
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Contender, PeakRSS, Result, arguments, report

ROOT = Path(__file__).resolve().parent.parent
SOURCES = 5  # opcua_plant, historian_export, mqtt_plant, camera_images, erp


def demo_once(folder: Path) -> tuple[float, float, str]:
    """(seconds, peak MiB, last lines of output) of one `plantlake demo` in `folder`."""
    shutil.copy(ROOT / "plant.yaml", folder / "plant.yaml")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "plantlake", "--config", str(folder / "plant.yaml"), "demo"],
                            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with PeakRSS(proc.pid, every=0.05) as mem:
        out, _ = proc.communicate()
    took = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"plantlake demo failed ({proc.returncode}):\n{out[-3000:]}")
    return took, mem.peak_mib, out


def main() -> None:
    args = arguments(__doc__, repeat=3).parse_args()
    ours = Contender("plantlake", "plantlake", "plantlake demo (python -m plantlake demo)")
    published: set[int] = set()
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="plantlake-bench-demo-") as tmp:
            took, peak, out = demo_once(Path(tmp))
        ours.seconds.append(took)
        ours.peak_mib.append(peak)
        ours.grew_mib.append(peak)
        # "<source>: 3 hourly intervals, <n> rows published, <m> quarantined", one line per source
        per_source = [int(m.group(1)) for m in re.finditer(r"hourly intervals, (\d+) rows published", out)]
        if len(per_source) != SOURCES:
            raise RuntimeError(f"expected a summary line for each of {SOURCES} sources:\n{out[-3000:]}")
        published.add(sum(per_source))
    report(Result("demo", "make demo on the embedded defaults: the virtual plant, 5 sources x 3 hourly DAG runs "
                          "through Airflow dag.test, 3 quality runs, the products DAG, catalog and report "
                          "(rows: those the ingest runs published; the wall clock moves, so they vary a little)",
                  "rows", max(published), args.repeat, [ours], limit_s=60.0,
                  target_text="make demo end to end under 60 s",
                  notes=[f"rows published per run: {', '.join(f'{n:,}' for n in sorted(published))}"]), args.json)


if __name__ == "__main__":
    main()
