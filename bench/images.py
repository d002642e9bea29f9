"""Images: the connector vs a bare single-process Pillow loop, same files, same run.

The camera simulator writes `--images` distinct part images (JPEG + sidecar, PNG with
metadata in the name) into a drop folder. Then, in this process:

- bare: a loop that reads each file, hashes its bytes and opens it with Pillow and
  `verify()`s it — what a script would do;
- connector, 1 worker: `run_source` for the interval with the pool off — the same work
  the connector does per file (full decode, EXIF, features, content-addressed copy,
  metadata, conform, audit, publish) on one core;
- connector: `run_source` with one worker per core, copying the bytes (the default) and
  hard-linking them (`copy_mode: link`).

Both connector runs start from an empty lake. Peak RSS of the parent and of the pool's
workers is printed: it stays flat with the folder's size because files are probed and
landed in batches.

    python bench/images.py --images 10000
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 1, 1, 6, tzinfo=UTC)


def bare(folder: Path) -> int:
    """Open each image with Pillow, verify it, hash the bytes; count the good ones."""
    good = 0
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".jpg", ".png"):
            continue
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.verify()
            good += 1
        except Exception:  # noqa: BLE001 - a corrupt file is an outcome here, not an error
            pass
    return good


def connector(cfg, lake: Path, end: datetime, workers: int, copy_mode: str = "copy") -> tuple[int, int]:
    from plantlake.config import with_source
    from plantlake.lake import Lake
    from plantlake.runner import run_source

    shutil.rmtree(lake, ignore_errors=True)
    variant = with_source(cfg, "camera_images", workers=workers, copy_mode=copy_mode)
    s = run_source("camera_images", START, end, config=variant, lake=Lake(lake))
    return s.stats["files"], s.published


def main() -> None:
    from plantlake.config import load_config
    from simulators.camera import Camera
    from simulators.story import Plant

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="plantlake-bench-images-"))
    shutil.copy(ROOT / "plant.yaml", work / "plant.yaml")
    cfg = load_config(work / "plant.yaml")
    plant = Plant(seed=42)
    cam = Camera(plant, work / "drop" / "images")
    end, made = START, 0
    while made < args.images:  # whole hours of production until there are enough images
        made += len(cam.shots(end, end + timedelta(hours=1)))
        end += timedelta(hours=1)
    files = [p for p in (work / "drop" / "images").iterdir() if p.suffix in (".jpg", ".png")]
    size = sum(p.stat().st_size for p in files)
    try:
        t = time.perf_counter()
        good = bare(work / "drop" / "images")
        tb = time.perf_counter() - t
        t = time.perf_counter()
        n1, pub1 = connector(cfg, work / "lake", end, workers=1)
        t1 = time.perf_counter() - t
        cores = os.cpu_count() or 1
        t = time.perf_counter()
        n, pub = connector(cfg, work / "lake", end, workers=cores)
        tc = time.perf_counter() - t
        t = time.perf_counter()
        nl, publ = connector(cfg, work / "lake", end, workers=cores, copy_mode="link")
        tl = time.perf_counter() - t
        assert n == n1 == nl == len(files) and pub == pub1 == publ, (n, n1, nl, len(files), pub, pub1, publ)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        k = len(files)
        print(f"Images: {k:,} camera files ({size / k / 1024:.0f} KiB avg, {pub:,} published, {k - pub} "
              f"quarantined; the bare loop's verify passed {good:,}), {cores} cores")
        print(f"  bare loop (read, sha256, Pillow verify), 1 process  : {tb:6.2f} s  {k / tb:8,.0f} images/s")
        print(f"  connector, copy_mode=copy, 1 worker                 : {t1:6.2f} s  {k / t1:8,.0f} images/s")
        print(f"  connector, copy_mode=copy, {cores} workers               : {tc:6.2f} s  {k / tc:8,.0f} images/s")
        print(f"  connector, copy_mode=link, {cores} workers               : {tl:6.2f} s  {k / tl:8,.0f} images/s")
        print(f"  ratio (connector / bare images/s): copy {tb / tc:.2f}x, link {tb / tl:.2f}x   target >= 1.5x")
        print(f"  pool speed-up ({cores} workers / 1 worker, copy): {t1 / tc:.2f}x")
        print(f"  peak RSS: parent {rss:,.0f} MiB, largest worker {child:,.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
