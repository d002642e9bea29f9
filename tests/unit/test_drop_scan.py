"""The drop-folder scan: what it lists, and that it never follows a link out of the folder."""

from __future__ import annotations

import os

import pytest

from connectors.files import scan

pytestmark = pytest.mark.unit


def test_scan_lists_regular_files_and_inner_links_never_what_lies_outside(tmp_path):
    drop, outside = tmp_path / "drop", tmp_path / "outside"
    (drop / "line1").mkdir(parents=True)
    outside.mkdir()
    (drop / "a.jpg").write_bytes(b"a" * 3)
    (drop / "line1" / "b.jpg").write_bytes(b"b" * 5)
    (drop / ".partial.jpg").write_bytes(b"x")  # hidden: an upload in progress
    (drop / "a.json").write_text("{}")  # a sidecar, ignored by suffix
    (outside / "secret.jpg").write_bytes(b"s" * 7)
    os.symlink(outside / "secret.jpg", drop / "escape.jpg")  # a file link out of the folder
    os.symlink(outside, drop / "linked_dir")  # a folder link out of the folder
    os.symlink(drop / "a.jpg", drop / "line1" / "alias.jpg")  # a link that stays inside
    os.symlink(drop / "gone.jpg", drop / "dangling.jpg")
    (drop / "sub.jpg").mkdir()  # a folder whose name matches the pattern

    found = {f.name: f.size for f in scan(drop, "**/*.jpg", ignore_suffixes=(".json",))}

    assert found == {"a.jpg": 3, "line1/b.jpg": 5, "line1/alias.jpg": 3}
    # a pattern naming a level of subfolders enters linked folders: their files are still refused
    assert {f.name for f in scan(drop, "*/*.jpg")} == {"line1/b.jpg", "line1/alias.jpg"}


def test_scan_of_a_folder_reached_through_a_link_lists_its_files(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "c.png").write_bytes(b"c" * 2)
    os.symlink(real, tmp_path / "drop")  # the configured folder itself may be a link

    assert [(f.name, f.size) for f in scan(tmp_path / "drop", "*.png")] == [("c.png", 2)]
