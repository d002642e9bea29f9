"""The report, as a headless Chromium renders it with the network refused: its DOM after load and a
screenshot, and no request leaving the machine."""

from __future__ import annotations

import re
import subprocess

import pytest
from PIL import Image

from plantlake.core.config import load_config
from plantlake.pipeline.products import build_day
from plantlake.pipeline.report import THUMBS, build_report
from quality.cross_source import run_checks
from tests.browser import offline
from tests.conftest import ROOT
from tests.unit.test_cross_source import IV, T
from tests.unit.test_products import lake as lake  # noqa: F401 - the small hand-made lake fixture

pytestmark = pytest.mark.integration

def _chromium(tmp_path, url: str, *args: str) -> subprocess.CompletedProcess:
    """The page rendered with every network request refused; none may have been made."""
    done, requests = offline(tmp_path, url, *args)
    assert requests == [], f"the report asked the network for {requests}"
    return done


def test_the_report_renders_every_section_plot_and_thumbnail(lake, tmp_path):  # noqa: F811
    cfg = load_config(ROOT / "plant.yaml")
    build_day(lake, cfg, T.date(), "r1")
    run_checks(lake, cfg, IV, "r1")
    from schemas import get_table

    for i, uri in enumerate(lake.read(get_table("inspection_images"))["uri"].to_pylist()):  # the images' copies
        (lake.root / uri).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (320, 240), (40 * i, 90, 160)).save(lake.root / uri)
    index = build_report(lake)
    url = index.as_uri()

    dom = _chromium(tmp_path, url, "--dump-dom").stdout
    for section in ("Tables and freshness", "Rows per day", "Quality", "Sensor trends and alarms per line",
                    "Baseline model card", "Images and labels"):
        assert f"<h2>{section}</h2>" in dom
    # the table of tables: Delta version, files of the snapshot and rows as counted in the lake
    assert re.search(r"<td>sensor_readings</td><td>curated</td><td>0</td><td>1</td><td>30</td>", dom)
    assert re.search(r"<td>image_training_set</td><td>products</td><td>0</td><td>1</td><td>3</td>", dom)
    # plots and thumbnails all loaded (the page counts them after load)
    ok = int(re.search(r'data-images-ok="(\d+)"', dom).group(1))
    broken = int(re.search(r'data-images-broken="(\d+)"', dom).group(1))
    assert broken == 0 and ok == 1 + 1 + 3  # rows per day, line 1's trends, three thumbnails
    assert 'alt="sensor trends on acme/shenzhen/assembly/line1"' in dom
    assert "line1: 2 orders" in dom
    labels = re.findall(r'<figure class="thumb (\w+)">', dom)
    assert labels == ["fail", "pass", "unlabelled"] and len(labels) <= THUMBS  # failed parts first

    shot = tmp_path / "report.png"
    _chromium(tmp_path, url, f"--screenshot={shot}", "--window-size=1200,2400")
    with Image.open(shot) as im:
        assert im.size == (1200, 2400)
        grey = im.convert("L")
        colours = len(grey.getcolors(maxcolors=256) or [])
        assert colours > 20  # text, tables, plots: not a blank page
        # the shaded order windows of the trend plot are in the picture (pale green/orange)
        rgb = im.convert("RGB").resize((300, 600))
        pixels = list(rgb.getdata())
        assert sum(1 for r, g, b in pixels if g > r + 10 and g > b + 10) > 50


def test_the_report_of_an_empty_lake_says_so(tmp_path):
    from plantlake.core.lake import Lake

    index = build_report(Lake(tmp_path / "lake").ensure())
    dom = _chromium(tmp_path, index.as_uri(), "--dump-dom").stdout
    assert "No sensor readings on lines with orders yet." in dom
    assert "No images in the training set yet." in dom
    assert 'data-images-broken="0"' in dom
