"""The drop-folder scan: what it lists, and that it never follows a link out of the folder."""

from __future__ import annotations

import os

import pytest

from connectors.files import UnsafeFile, open_drop_file, scan

pytestmark = pytest.mark.unit


def test_scan_lists_files_and_links_and_open_refuses_every_link(tmp_path):
    """A link in a shared folder is listed (so it is claimed and quarantined with a reason) and never
    read: not the one out of the folder, not the one that stays inside, not a file through a linked folder."""
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

    found = {f.name: f for f in scan(drop, "**/*.jpg", ignore_suffixes=(".json",))}
    assert sorted(found) == ["a.jpg", "dangling.jpg", "escape.jpg", "line1/alias.jpg", "line1/b.jpg"]
    assert (found["a.jpg"].size, found["line1/b.jpg"].size) == (3, 5)
    with open_drop_file(drop, found["a.jpg"].path) as fh:
        assert fh.read() == b"aaa"
    for name in ("escape.jpg", "line1/alias.jpg", "dangling.jpg"):
        with pytest.raises(UnsafeFile, match=rf"file: {name} is a symbolic link; links in a drop folder are never followed"):
            open_drop_file(drop, found[name].path)
    # a pattern naming a level of subfolders enters linked folders: their files are listed, then refused
    through = {f.name: f for f in scan(drop, "*/*.jpg")}
    assert sorted(through) == ["line1/alias.jpg", "line1/b.jpg", "linked_dir/secret.jpg"]
    with pytest.raises(UnsafeFile, match="lies outside the drop folder"):
        open_drop_file(drop, through["linked_dir/secret.jpg"].path)


def test_open_refuses_what_is_not_a_regular_file_or_too_large(tmp_path):
    os.mkfifo(tmp_path / "pipe.csv")  # would block a plain open() for ever
    with pytest.raises(UnsafeFile, match="file: pipe.csv is not a regular file"):
        open_drop_file(tmp_path, tmp_path / "pipe.csv")
    (tmp_path / "big.csv").write_bytes(b"x" * 101)
    with pytest.raises(UnsafeFile, match=r"file: big.csv is 101 bytes, over max_file_bytes \(100\)"):
        open_drop_file(tmp_path, tmp_path / "big.csv", max_bytes=100)
    with pytest.raises(FileNotFoundError):
        open_drop_file(tmp_path, tmp_path / "never.csv")
    latin = os.fsdecode(b"Pr\xfcfung.csv")  # a Latin-1 file name on a UTF-8 system
    (tmp_path / latin).write_bytes(b"z")
    assert [f.name for f in scan(tmp_path, "Pr*")] == ["Pr\\xfcfung.csv"]


def test_scan_of_a_folder_reached_through_a_link_lists_its_files(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "c.png").write_bytes(b"c" * 2)
    os.symlink(real, tmp_path / "drop")  # the configured folder itself may be a link

    assert [(f.name, f.size) for f in scan(tmp_path / "drop", "*.png")] == [("c.png", 2)]
