"""The site config of an `images` source (camera drop folders): what `sources[]` with `kind: images` accepts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from plantlake.core.config import CAPTURE, ConfigModel, SourceBase, relative_glob


class ImageSidecar(ConfigModel):
    """Metadata in a JSON file next to each image (same stem, `suffix`): field names to read."""

    suffix: str = Field(".json", pattern=r"^\.[A-Za-z0-9]{1,10}$")
    asset: str = Field("station", description="Field with the station: an asset of the hierarchy.")
    part_serial: str | None = "part_serial"
    order_id: str | None = "order_id"
    captured_at: str | None = Field("captured_at", description="ISO 8601; without a zone, site local time.")


class ImageFolder(ConfigModel):
    """One camera drop folder and how its files carry station, part and capture time.

    Either a `sidecar` JSON per image, or a `name_pattern` whose `{name}` captures fill
    `asset` (a template such as `assembly/line{n}/camera{n}`), `part_serial`,
    `order_id` and `captured_at` (parsed with `captured_at_format`). Without either,
    the capture time comes from EXIF and the station from `asset`.
    """

    path: str = Field(min_length=1, description="Drop folder, relative to the config file.")
    pattern: str = Field("*", description="Glob of the files to consider (sidecars are never images).")
    sidecar: ImageSidecar | None = None
    name_pattern: str | None = Field(None, description="e.g. 'cam{n}_{part_serial}_{captured_at}.png'")
    asset: str | None = Field(None, description="Station asset, or a template over name_pattern captures.")
    codes: dict[str, str] = Field(default_factory=dict, description="Station codes as the camera or sidecar "
                                  "writes them -> assets of the hierarchy (e.g. {L1-EOL: assembly/line1/camera1}), "
                                  "as the ERP's `codes` do; a code not listed must be an asset itself.")
    captured_at_format: str | None = Field(None, description="strptime format of {captured_at} in file names.")

    _pattern = field_validator("pattern")(classmethod(lambda cls, v: relative_glob(v)))

    @field_validator("codes", mode="before")
    @classmethod
    def _text_codes(cls, v: Any) -> Any:
        return {str(a): str(b) for a, b in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _metadata(self) -> ImageFolder:
        if self.sidecar and self.name_pattern:
            raise ValueError("use either sidecar or name_pattern for a folder, not both")
        if not self.sidecar and not self.asset:
            raise ValueError("set asset (the station, or a template over name_pattern captures) or a sidecar")
        captures = set(CAPTURE.findall(self.name_pattern or ""))
        missing = set(CAPTURE.findall(self.asset or "")) - captures
        if missing:
            raise ValueError(f"asset uses {sorted(missing)} which name_pattern does not capture")
        unknown = captures - {"part_serial", "order_id", "captured_at"} - set(CAPTURE.findall(self.asset or ""))
        if unknown:
            raise ValueError(f"name_pattern captures {sorted(unknown)} that nothing uses "
                             "(known: part_serial, order_id, captured_at and the asset template's names)")
        return self


class ImageSource(SourceBase):
    """Camera images from drop folders: one `inspection_images` row per distinct image."""

    kind: Literal["images"]
    folders: list[ImageFolder] = Field(min_length=1)
    extensions: list[str] = Field(default_factory=lambda: [".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"],
                                  description="Image file endings; other files are quarantined.")
    settle_s: float = Field(2.0, ge=0, description="A file must be unchanged this long before it is read.")
    workers: int = Field(0, ge=0, le=64, description="Decode/hash processes; 0 = one per core.")
    batch_files: int = Field(500, ge=1, le=100_000, description="Files per landed raw batch.")
    max_pixels: int = Field(100_000_000, ge=1, description="Larger images are quarantined (decompression bombs).")
    max_file_bytes: int = Field(256 * 1024**2, ge=1, description="Larger files are quarantined unread (a camera "
                                "frame is a few MB).")
    delete_after_publish: bool = Field(False, description="Remove the operator's file once its row is published.")
    copy_mode: Literal["copy", "link"] = Field(
        "copy", description="How the lake keeps its copy: 'copy' the bytes, or 'link' (a hard link: no copy, "
                            "for a drop folder on the lake's filesystem whose files are never rewritten in place).")
    timezone: str | None = Field(None, description="Zone of naive times (EXIF, file names); default the site's.")

    def file_folders(self) -> list[tuple[str, str]]:
        return [(f"folders[{k}].path", f.path) for k, f in enumerate(self.folders)]
