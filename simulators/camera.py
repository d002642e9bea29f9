"""End-of-line cameras: one image per finished part, written into a drop folder.

Line 1's camera writes JPEG with a sidecar JSON (station, part serial, order, capture
time); line 2's writes PNG whose file name carries station, serial and capture time
(`cam2_<serial>_<YYYYmmddTHHMMSSfff>Z.png`). Both embed EXIF (camera model,
DateTimeOriginal in site local time, exposure). Defective parts show a visible burn
mark or crack. A small, deterministic share of files is truncated or garbage, as real
cameras and file shares produce. Same seed, same bytes.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from PIL import Image, ImageDraw

from simulators.story import Part, Plant, uniform

WIDTH, HEIGHT = 320, 240
SITE_TZ = ZoneInfo("Asia/Shanghai")
EXIF_MODEL, EXIF_MAKE = 0x0110, 0x010F
EXIF_IFD, EXIF_DATETIME_ORIGINAL, EXIF_EXPOSURE = 0x8769, 0x9003, 0x829A


@dataclass(frozen=True)
class Shot:
    """One file the camera wrote, with what a test needs to know about it."""

    name: str
    part: Part
    station: str  # asset id of the camera
    captured_at: datetime
    format: str
    corrupt: str | None  # None, "truncated" or "garbage"
    sha256: str | None  # of the bytes written, when the image is intact
    sidecar: str | None
    label: str  # pass / fail (the ERP verdict)


def render(plant: Plant, part: Part) -> Image.Image:
    """A prismatic cell seen from above: body, two tabs, a label band; defects are visible."""
    u = uniform(plant.seed, f"img/{part.serial}", np.arange(8))
    rng = np.random.default_rng(int(u[0] * 2**32))
    base = rng.normal(200, 6, (HEIGHT, WIDTH)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(np.stack([base, base, base], axis=-1), "RGB")
    d = ImageDraw.Draw(img)
    x0, y0 = 60 + int(u[1] * 10), 50 + int(u[2] * 10)
    d.rectangle([x0, y0, x0 + 200, y0 + 130], fill=(40, 60, 110), outline=(20, 30, 60), width=3)
    d.rectangle([x0 + 30, y0 - 25, x0 + 70, y0], fill=(190, 190, 200))
    d.rectangle([x0 + 130, y0 - 25, x0 + 170, y0], fill=(200, 150, 80))
    d.rectangle([x0 + 10, y0 + 95, x0 + 190, y0 + 120], fill=(230, 230, 230))
    if part.defect:
        cx, cy = x0 + 30 + int(u[3] * 140), y0 - 15
        if part.defect_code == "WELD_CRACK":
            d.line([cx - 20, cy - 8, cx + 25, cy + 12], fill=(10, 10, 10), width=4)
        elif part.defect_code == "SPATTER":
            for i in range(12):
                r = int(u[4] * 3) + 2
                px, py = cx + int((u[(i % 8)] - 0.5) * 60), cy + int((u[(i + 3) % 8] - 0.5) * 40)
                d.ellipse([px - r, py - r, px + r, py + r], fill=(30, 30, 30))
        else:
            d.ellipse([cx - 18, cy - 14, cx + 18, cy + 14], fill=(60, 25, 10))
    return img


#: the frames of real machine-vision cameras: a 5 MP colour sensor (JPEG) and a 2 MP mono one (8-bit PNG)
REAL_FRAMES = {"JPEG": (2592, 1944), "PNG": (1920, 1080)}


def full_frame(img: Image.Image, size: tuple[int, int], fmt: str, seed: int) -> Image.Image:
    """The scene at a camera's own resolution: scaled up, with sensor noise at that resolution (so the
    file compresses as a real frame does: about 2 MB for 5 MP JPEG at quality 88 and for 2 MP PNG);
    PNG frames are 8-bit mono, as machine-vision cameras send them."""
    big = img.resize(size, Image.Resampling.BILINEAR)
    if fmt == "PNG":
        big = big.convert("L")
    arr = np.asarray(big, dtype=np.int16)
    noise = np.random.default_rng(seed).normal(0, 10, arr.shape[:2]).astype(np.int16)
    arr = (arr + (noise[..., None] if arr.ndim == 3 else noise)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def encode(plant: Plant, part: Part, fmt: str, captured_at: datetime, line_no: int,
           size: tuple[int, int] | None = None) -> bytes:
    """The file a camera writes; `size` another resolution than the simulator's small frames."""
    img = render(plant, part)
    if size is not None and size != img.size:
        img = full_frame(img, size, fmt, int(uniform(plant.seed, f"noise/{part.serial}", np.arange(1))[0] * 2**32))
    exif = Image.Exif()
    exif[EXIF_MAKE] = "ACME Vision"
    mp = img.size[0] * img.size[1] / 1e6
    exif[EXIF_MODEL] = f"EOL-Cam {line_no} {mp:.1f}MP" if size else f"EOL-Cam {line_no} 0.3MP"
    ifd = exif.get_ifd(EXIF_IFD)
    ifd[EXIF_DATETIME_ORIGINAL] = captured_at.astimezone(SITE_TZ).strftime("%Y:%m:%d %H:%M:%S")
    ifd[EXIF_EXPOSURE] = 0.004
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=88, exif=exif)
    else:
        img.save(buf, "PNG", exif=exif)
    return buf.getvalue()


class Camera:
    """Writes the images of the parts finished in a window into `folder`."""

    def __init__(self, plant: Plant, folder: Path, corrupt_rate: float = 0.02,
                 frames: dict[str, tuple[int, int]] | None = None) -> None:
        self.plant = plant
        self.folder = Path(folder)
        self.corrupt_rate = corrupt_rate
        #: resolution per format (e.g. REAL_FRAMES); None: the small 320x240 frames
        self.frames = frames or {}

    def shots(self, start: datetime, end: datetime, *, write: bool = True) -> list[Shot]:
        """The shots of parts finished in [start, end); written (mtime = capture + 1 s) when asked."""
        import hashlib

        out = []
        for part in self.plant.parts(start, end):
            line_no = int(part.line.removeprefix("line"))
            cam = self.plant.machine(part.line, "camera")
            captured = part.finished_at + timedelta(seconds=2)
            u = uniform(self.plant.seed, f"file/{part.serial}", np.arange(2))
            corrupt = None if u[0] >= self.corrupt_rate else ("truncated" if u[1] < 0.5 else "garbage")
            stamp = captured.strftime("%Y%m%dT%H%M%S") + f"{captured.microsecond // 1000:03d}Z"
            if line_no % 2 == 1:
                fmt, name, sidecar = "JPEG", f"{part.serial}.jpg", f"{part.serial}.json"
            else:
                fmt, name, sidecar = "PNG", f"cam{line_no}_{part.serial}_{stamp}.png", None
            data = encode(self.plant, part, fmt, captured, line_no, self.frames.get(fmt))
            if corrupt == "truncated":
                data = data[: len(data) // 2]
            elif corrupt == "garbage":
                data = np.random.default_rng(int(u[1] * 2**32)).integers(0, 256, 4096, dtype=np.uint8).tobytes()
            digest = None if corrupt else hashlib.sha256(data).hexdigest()
            shot = Shot(name, part, cam.asset_id, captured, fmt, corrupt, digest, sidecar,
                        "fail" if part.defect else "pass")
            if write:
                self._write(shot, data)
            out.append(shot)
        return out

    def _write(self, shot: Shot, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        when = (shot.captured_at + timedelta(seconds=1)).timestamp()
        if shot.sidecar:  # the sidecar first: a reader that sees the image can trust its metadata
            meta = {"station": shot.station, "part_serial": shot.part.serial, "order_id": shot.part.order_id,
                    "captured_at": shot.captured_at.isoformat().replace("+00:00", "Z")}
            p = self.folder / shot.sidecar
            p.write_text(json.dumps(meta, indent=1))
            os.utime(p, (when, when))
        p = self.folder / shot.name
        p.write_bytes(data)
        os.utime(p, (when, when))
