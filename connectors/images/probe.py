"""Read one camera file: hash, full decode, EXIF, features and the content-addressed copy.

This runs in worker processes, so it imports only the standard library, NumPy and
Pillow, and returns a plain dict (one raw row). It never raises for a bad file: the
problem comes back as `error` with the column it concerns, for decode to quarantine.

A full decode is the only reliable check: `Image.verify()` passes a truncated JPEG.
Features are computed on a grey image reduced by a whole factor to less than twice
FEATURE_SIDE pixels on its long side (JPEG decodes straight to that scale), so they
stay cheap for large images and comparable across cameras.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from connectors.files import UnsafeFile, open_drop_file
from plantlake.core.lake import BlobStore

FEATURE_SIDE = 256
SIDECAR_BYTES = 1 << 20  # a sidecar is a few hundred bytes of JSON
EXIF_MODEL, EXIF_IFD, EXIF_DATETIME_ORIGINAL, EXIF_EXPOSURE = 0x0110, 0x8769, 0x9003, 0x829A
#: file name endings that fit each content format; the first is the lake copy's
SUFFIXES = {"JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"), "PNG": (".png",), "BMP": (".bmp",), "TIFF": (".tif", ".tiff"),
            "WEBP": (".webp",), "GIF": (".gif",)}
_SUFFIX = {fmt: names[0] for fmt, names in SUFFIXES.items()}


@dataclass(frozen=True)
class Job:
    """One file to read; `sidecar` is the metadata file's path when the folder uses one."""

    path: str
    name: str
    folder: int
    size: int
    mtime_ns: int
    sidecar: str | None = None
    root: str | None = None  # the drop folder: nothing is read through a link or from outside it


@dataclass(frozen=True)
class Probe:
    """What every worker needs besides the job (picklable)."""

    images: BlobStore
    rejected: BlobStore
    extensions: tuple[str, ...]
    max_pixels: int
    link: bool = False
    max_file_bytes: int = 256 * 1024**2
    #: a rejected file larger than this is not copied to quarantine/_files/ (its hash is kept)
    max_reject_copy_bytes: int = 16 * 1024**2

    def __call__(self, job: Job) -> dict[str, Any]:
        return probe(job, self)


def probe(job: Job, opts: Probe) -> dict[str, Any]:
    row: dict[str, Any] = {"file": job.name, "folder": job.folder, "mtime_ns": job.mtime_ns, "size": None,
                           "sha256": None, "sidecar": None, "error": None, "error_column": None, "uri": None}
    root = Path(job.root) if job.root else Path(job.path).parent
    if job.sidecar is not None:
        try:
            with open_drop_file(root, Path(job.sidecar), max_bytes=SIDECAR_BYTES, setting="the sidecar limit",
                                what="sidecar") as fh:
                row["sidecar"] = fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            pass  # decode reports the missing sidecar
        except UnsafeFile as exc:  # a link next to the image is never read (it may point at secrets)
            return _fail(row, "sidecar", str(exc))
    ext = os.path.splitext(job.name)[1].lower()
    if ext not in opts.extensions:
        return _fail(row, "file", f"file: unknown extension, expected one of {', '.join(opts.extensions)} "
                                  f"({job.name})")
    try:
        with open_drop_file(root, Path(job.path), max_bytes=opts.max_file_bytes) as fh:
            data = fh.read()
    except FileNotFoundError:
        return _fail(row, "file", f"file: vanished before it could be read ({job.name})")
    except UnsafeFile as exc:
        return _fail(row, "file", str(exc))
    except OSError as exc:
        return _fail(row, "file", f"file: cannot be read ({job.name}: {exc.strerror or exc})")
    row["size"] = len(data)
    if not data:
        return _fail(row, "file", f"file: empty, 0 bytes ({job.name})")
    digest = hashlib.sha256(data).hexdigest()
    row["sha256"] = digest
    try:
        row.update(_decode(data, opts.max_pixels))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if len(data) <= opts.max_reject_copy_bytes:
            row["uri"] = opts.rejected.put(data, digest, ext if re.fullmatch(r"\.[a-z0-9]{1,10}", ext) else "")
        # Pillow names the in-memory buffer by its address: left out, one broken file gives one reason
        detail = re.sub(r" <[^<>]* at 0x[0-9a-f]+>", "", str(exc))[:120]
        return _fail(row, "image", f"image: cannot be decoded ({job.name}: {exc.__class__.__name__}: {detail})")
    row["uri"] = opts.images.put(data, digest, _SUFFIX.get(row["format"], ext),
                                 link_from=Path(job.path) if opts.link else None)
    return row


def _fail(row: dict[str, Any], column: str, reason: str) -> dict[str, Any]:
    row["error"], row["error_column"] = reason, column
    return row


def _decode(data: bytes, max_pixels: int) -> dict[str, Any]:
    with Image.open(io.BytesIO(data)) as im:
        fmt, (width, height), mode = im.format, im.size, im.mode
        if width * height > max_pixels:
            raise ValueError(f"{width}x{height} pixels exceeds max_pixels ({max_pixels})")
        exif = im.getexif()
        sub = exif.get_ifd(EXIF_IFD)
        model = exif.get(EXIF_MODEL)
        exposure = sub.get(EXIF_EXPOSURE)
        taken = sub.get(EXIF_DATETIME_ORIGINAL)
        factor = max(1, max(width, height) // FEATURE_SIDE)
        # JPEG decodes luminance only, at a reduced DCT scale when the image is large
        im.draft("L", (width // factor, height // factor))
        im.load()  # the full decode: raises on truncated or corrupt data
        grey = im.convert("L")
    factor = max(1, max(grey.size) // FEATURE_SIDE)
    if factor > 1:
        grey = grey.reduce(factor)
    brightness, contrast, sharpness = features(grey)
    return {
        "width": width, "height": height, "format": fmt, "mode": mode,
        "camera_model": _text(model), "exposure_time_s": _number(exposure), "exif_datetime": _text(taken),
        "brightness": brightness, "contrast": contrast, "sharpness": sharpness,
    }


def features(grey: Image.Image) -> tuple[float, float, float]:
    """Mean and standard deviation of the grey levels (from the histogram), and the variance
    of the 4-neighbour Laplacian (blur makes it small), in exact integer arithmetic."""
    hist = np.asarray(grey.histogram(), dtype=np.float64)
    levels = np.arange(256)
    n = hist.sum()
    mean = float((hist * levels).sum() / n)
    std = float(np.sqrt((hist * (levels - mean) ** 2).sum() / n))
    g = np.asarray(grey, dtype=np.int16)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    if not lap.size:
        return mean, std, 0.0
    k = lap.size
    total = int(lap.sum(dtype=np.int64))
    squares = int((lap.astype(np.int32) ** 2).sum(dtype=np.int64))
    return mean, std, squares / k - (total / k) ** 2


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    return str(v).strip("\x00 ") or None


def _number(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
