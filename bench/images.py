"""Images: the connector vs a bare single-process Pillow loop, same files, same run.

The camera simulator writes `--images` distinct part images into a drop folder: with
`--frames real` (the headline) as real machine-vision cameras write them, 5 MP JPEG
(2592x1944, colour) with a sidecar and 2 MP 8-bit mono PNG (1920x1080) with the metadata
in the name; with `--frames small` the simulator's 320x240 frames. Then, in this process:

- bare: a loop doing the connector's checks naively — read each file, sha256 its bytes,
  decode it fully with Pillow (`load()`; `verify()` passes a truncated JPEG) and copy it
  under its hash into a folder (no fsync) — what a script would do;
- verify: the same loop with `Image.verify()` instead of the decode and without the copy
  (the cheapest look at a file; it checks much less);
- connector, 1 worker: `run_source` for the interval with the pool off — the same work
  the connector does per file (full decode, EXIF, features, durable content-addressed
  copy, metadata, conform, audit, publish) on one core;
- connector: `run_source` with one worker per core, copying the bytes (the default) and
  hard-linking them (`copy_mode: link`);
- the peer: the bare loop in a process pool with one process per core, the most a
  parallel naive reader of these files gets on this machine.

Every connector run starts from an empty lake; Great Expectations is imported before
timing (a task process pays that once). Peak memory counts the pool's workers: it stays
flat with the folder's size because files are probed and landed in batches.

    python bench/images.py --frames real --images 300 --repeat 3 [--json out.json]
    python bench/images.py --frames small --images 10000 --repeat 3
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


def _verify(path: Path) -> bool:
    """The cheapest look: read, sha256, Pillow `verify()` (no pixels decoded)."""
    data = path.read_bytes()
    hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        return True
    except Exception:  # noqa: BLE001 - a corrupt file is an outcome here, not an error
        return False


def _naive(job: tuple[Path, Path]) -> bool:
    """The connector's checks done naively: read, sha256, full decode, copy under the hash."""
    path, dest = job
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception:  # noqa: BLE001 - a corrupt file is an outcome here, not an error
        return False
    (dest / f"{digest}{path.suffix}").write_bytes(data)
    return True


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".jpg", ".png"))


def _fresh(dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    return dest


def bare(folder: Path, dest: Path) -> int:
    """The naive loop, one process: how many files it looked at."""
    files, dest = _images(folder), _fresh(dest)
    sum(_naive((p, dest)) for p in files)
    return len(files)


def verify(folder: Path) -> tuple[int, int]:
    """The verify loop, one process: (files seen, verified)."""
    files = _images(folder)
    return len(files), sum(_verify(p) for p in files)


def bare_pool(folder: Path, dest: Path, workers: int) -> int:
    """The naive loop in a process pool of `workers`: the parallel ceiling of the naive approach."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    files, dest = _images(folder), _fresh(dest)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        sum(pool.map(_naive, [(p, dest) for p in files], chunksize=max(1, min(64, len(files) // (4 * workers)))))
    return len(files)


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
    from simulators.camera import REAL_FRAMES, Camera
    from simulators.story import Plant

    ap = arguments(__doc__, images=300, repeat=3)
    ap.add_argument("--frames", choices=["real", "small"], default="real")
    args = ap.parse_args()
    import great_expectations  # noqa: F401 - imported once before timing, as a task process has it

    real = args.frames == "real"
    work = Path(tempfile.mkdtemp(prefix="plantlake-bench-images-"))
    shutil.copy(ROOT / "plant.yaml", work / "plant.yaml")
    cfg = load_config(work / "plant.yaml")
    drop = work / "drop" / "images"
    cam = Camera(Plant(seed=42), drop, frames=REAL_FRAMES if real else None)
    end, made = START, 0
    step = timedelta(minutes=10)
    while made < args.images:  # production until there are enough images
        made += len(cam.shots(end, end + step))
        end += step
    files = _images(drop)
    size = {ext: [p.stat().st_size for p in files if p.suffix == ext] for ext in (".jpg", ".png")}
    verified = verify(drop)[1]  # untimed: also puts every file in the page cache
    cores = os.cpu_count() or 1
    base = Contender("bare", "baseline", "bare loop: read, sha256, full decode, copy (1 process)")
    quick = Contender("verify", "baseline", "bare loop: read, sha256, Pillow verify, no copy (1 process)")
    ours = Contender("plantlake", "plantlake", f"plantlake run_source, {cores} workers, copy into the lake")
    link = Contender("link", "variant", f"plantlake run_source, {cores} workers, copy_mode=link")
    one = Contender("one_worker", "variant", "plantlake run_source, 1 worker, copy into the lake")
    pool = Contender("bare_pool", "peer", f"bare loop in a process pool of {cores} (spawned per run)")
    published = set()
    order = [base, quick, pool, ours, link, one]
    try:
        for run in range(args.repeat):
            for who in (order if run % 2 == 0 else order[::-1]):
                if who is base:
                    measure(who, lambda: bare(drop, work / "copies"), len(files))
                    os.sync()
                    continue
                if who is quick:
                    measure(who, lambda: verify(drop)[0], len(files))
                    continue
                if who is pool:
                    measure(who, lambda: bare_pool(drop, work / "copies", cores), len(files))
                    os.sync()
                    continue
                workers, mode = (1, "copy") if who is one else (cores, "link" if who is link else "copy")
                shutil.rmtree(work / "lake", ignore_errors=True)

                def run_once(workers=workers, mode=mode):
                    n, pub = connector(cfg, work / "lake", end, workers=workers, copy_mode=mode)
                    published.add(pub)
                    return n
                measure(who, run_once, len(files))
                os.sync()  # untimed: the bare loops' copies are not synced; nobody pays for another's dirty pages
        assert len(published) == 1, published
        pub = published.pop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    k = len(files)

    def avg(ext: str) -> str:
        return f"{sum(size[ext]) / len(size[ext]) / 2**20:.1f} MiB" if real else f"{sum(size[ext]) / len(size[ext]) / 1024:.0f} KiB"
    frames = (f"JPEG 2592x1944 (5 MP colour, {avg('.jpg')} avg) + sidecar and 8-bit mono PNG 1920x1080 (2 MP, "
              f"{avg('.png')} avg)" if real else f"JPEG + sidecar ({avg('.jpg')} avg) and PNG ({avg('.png')} avg), "
              "320x240")
    report(Result(
        "images" if real else "images_small",
        f"{k:,} camera frames: {frames}; {k - pub} corrupt, quarantined; one drop folder, {cores} cores",
        "images", k, args.repeat, [ours, link, one, base, quick, pool],
        target=2.5 if real else None,
        target_text="images >= 2.5x the bare loop (read, sha256, full decode, copy)" if real else "",
        notes=[f"the verify loop passed {verified:,} files",
               f"pool speed-up ({cores} workers over 1): {one.median_s / ours.median_s:.2f}x",
               "plantlake's copy is durable (fsynced) and content-addressed in the lake; the bare loop's is not "
               "fsynced"]), args.json)


if __name__ == "__main__":
    main()
