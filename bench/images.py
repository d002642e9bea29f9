"""Images: the connector vs a bare single-process Pillow loop, same files, same run.

The camera simulator writes `--images` distinct part images (JPEG + sidecar, PNG with
metadata in the name) into a drop folder. Then, in this process:

- bare: a loop that reads each file, hashes its bytes and opens it with Pillow and
  `verify()`s it — what a script would do;
- connector, 1 worker: `run_source` for the interval with the pool off — the same work
  the connector does per file (full decode, EXIF, features, content-addressed copy,
  metadata, conform, audit, publish) on one core;
- connector: `run_source` with one worker per core, copying the bytes (the default) and
  hard-linking them (`copy_mode: link`);
- the peer: the bare loop's work in a process pool with one process per core, the most
  any parallel reader of these files can get on this machine.

Every connector run starts from an empty lake; Great Expectations is imported before
timing (a task process pays that once). Peak memory counts the pool's workers: it stays
flat with the folder's size because files are probed and landed in batches.

    python bench/images.py --images 10000 --repeat 3 [--json out.json]
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Contender, Result, arguments, measure, report
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 1, 1, 6, tzinfo=UTC)


def _check(path: Path) -> bool:
    """What a script would do with one image: read it, hash the bytes, Pillow `verify()`."""
    data = path.read_bytes()
    hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        return True
    except Exception:  # noqa: BLE001 - a corrupt file is an outcome here, not an error
        return False


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".jpg", ".png"))


def bare(folder: Path) -> tuple[int, int]:
    """The bare loop, one process: (images seen, verified)."""
    files = _images(folder)
    return len(files), sum(_check(p) for p in files)


def bare_pool(folder: Path, workers: int) -> int:
    """The bare loop's work in a process pool of `workers`: the parallel ceiling of the bare approach."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    files = _images(folder)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return sum(1 for _ in pool.map(_check, files, chunksize=64))


def connector(cfg, lake: Path, end: datetime, workers: int, copy_mode: str = "copy") -> tuple[int, int]:
    from plantlake.core.config import with_source
    from plantlake.core.lake import Lake
    from plantlake.pipeline.runner import run_source

    shutil.rmtree(lake, ignore_errors=True)
    variant = with_source(cfg, "camera_images", workers=workers, copy_mode=copy_mode)
    s = run_source("camera_images", START, end, config=variant, lake=Lake(lake))
    return s.stats["files"], s.published


def main() -> None:
    from plantlake.core.config import load_config
    from simulators.camera import Camera
    from simulators.story import Plant

    args = arguments(__doc__, images=10_000, repeat=3).parse_args()
    import great_expectations  # noqa: F401 - imported once before timing, as a task process has it

    work = Path(tempfile.mkdtemp(prefix="plantlake-bench-images-"))
    shutil.copy(ROOT / "plant.yaml", work / "plant.yaml")
    cfg = load_config(work / "plant.yaml")
    cam = Camera(Plant(seed=42), work / "drop" / "images")
    end, made = START, 0
    while made < args.images:  # whole hours of production until there are enough images
        made += len(cam.shots(end, end + timedelta(hours=1)))
        end += timedelta(hours=1)
    files = [p for p in (work / "drop" / "images").iterdir() if p.suffix in (".jpg", ".png")]
    size = sum(p.stat().st_size for p in files)
    verified = bare(work / "drop" / "images")[1]  # untimed: also puts every file in the page cache
    cores = os.cpu_count() or 1
    base = Contender("bare", "baseline", "bare loop: read, sha256, Pillow verify (1 process)")
    ours = Contender("plantlake", "plantlake", f"plantlake run_source, {cores} workers, copy into the lake")
    link = Contender("link", "variant", f"plantlake run_source, {cores} workers, copy_mode=link")
    one = Contender("one_worker", "variant", "plantlake run_source, 1 worker, copy into the lake")
    pool = Contender("bare_pool", "peer", f"bare loop in a process pool of {cores} (spawned per run)")
    published = set()
    try:
        for run in range(args.repeat):
            for who in ((base, pool, ours, link, one) if run % 2 == 0 else (one, link, ours, pool, base)):
                if who is base:
                    measure(who, lambda: bare(work / "drop" / "images")[0], len(files))
                    continue
                if who is pool:
                    measure(who, lambda: bare_pool(work / "drop" / "images", cores), len(files))
                    continue
                workers, mode = (1, "copy") if who is one else (cores, "link" if who is link else "copy")
                shutil.rmtree(work / "lake", ignore_errors=True)

                def run_once(workers=workers, mode=mode):
                    n, pub = connector(cfg, work / "lake", end, workers=workers, copy_mode=mode)
                    published.add(pub)
                    return n
                measure(who, run_once, len(files))
        assert len(published) == 1, published
        pub = published.pop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    k = len(files)
    report(Result(
        "images", f"{k:,} camera files (JPEG + sidecar, PNG; {size / k / 1024:.0f} KiB avg, 320x240; "
                  f"{k - pub} corrupt or without metadata, quarantined) in one drop folder, {cores} cores",
        "images", k, args.repeat, [ours, link, one, base, pool], target=1.5,
        target_text="images >= 1.5x a bare single-process Pillow verify + sha256 loop",
        notes=[f"the bare loop's verify passed {verified:,} files",
               f"pool speed-up ({cores} workers over 1): {one.median_s / ours.median_s:.2f}x"]), args.json)


if __name__ == "__main__":
    main()
