"""The benchmark harness and the report it writes (no timing is asserted: only the arithmetic)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import harness  # noqa: E402
import run  # noqa: E402

pytestmark = pytest.mark.unit


def result(name: str, items: int, ours: list[float], bare: list[float], *, target: float = 0.8,
           peak: float = 100.0) -> harness.Result:
    return harness.Result(
        name, f"{items:,} things", "rows", items, len(ours),
        [harness.Contender("plantlake", "plantlake", "plantlake", ours, [peak] * len(ours), [1.0] * len(ours)),
         harness.Contender("bare", "baseline", "bare library", bare, [50.0] * len(bare), [0.0] * len(bare))],
        target=target, target_text=f"plantlake >= {target}x bare")


def test_the_ratio_is_the_median_of_the_per_run_ratios_not_of_the_medians():
    r = result("x", 1000, ours=[1.0, 1.0, 4.0], bare=[2.0, 0.5, 2.0])
    # per run 2.0, 0.5, 0.5 -> 0.5; the ratio of the median times would say 2.0
    assert r.ratio("bare") == 0.5
    assert r.get("bare").median_s / r.get("plantlake").median_s == 2.0
    assert r.per_s("plantlake") == 1000.0 and r.met is False
    assert result("x", 1000, ours=[1.0, 1.0, 1.0], bare=[0.8, 0.9, 0.7]).met is True


def test_a_time_limit_is_met_by_the_median_run():
    ours = harness.Contender("plantlake", "plantlake", "demo", [170.0, 200.0, 150.0], [1.0] * 3, [1.0] * 3)
    r = harness.Result("demo", "demo", "rows", 10, 3, [ours], limit_s=180.0)
    assert r.met is True
    ours.seconds[2] = 190.0
    assert r.met is False


def test_a_verdict_besides_the_ratio_must_hold_too():
    r = result("x", 1000, ours=[1.0], bare=[2.0], target=1.0)
    assert r.met is True
    r.verdict = False  # e.g. the sustained MQTT queue grew although capacity was enough on average
    assert r.met is False
    r.verdict = True
    assert r.met is True
    assert result("x", 1000, ours=[4.0], bare=[2.0], target=1.0).met is False


def test_results_round_trip_through_json(tmp_path):
    r = result("x", 5, ours=[1.0], bare=[2.0])
    r.notes.append("a note")
    r.dump(tmp_path / "x.json")
    back = harness.Result.load(tmp_path / "x.json")
    assert back == r and back.ratio("bare") == 2.0


def test_peak_memory_sees_what_a_block_allocates():
    with harness.PeakRSS() as mem:
        block = b"\x01" * (200 * 2**20)  # touched, so resident
        time.sleep(0.1)
    del block
    assert mem.grew_mib >= 150, mem.grew_mib


def test_the_report_lists_each_result_and_scale_point_and_plots_the_curves(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "DOCS", tmp_path)
    monkeypatch.setattr(run, "RESULTS", tmp_path / "performance")
    monkeypatch.setattr(run, "SCALE", {"conform": ("--rows", [(1000, 3), (10000, 1)])})
    (tmp_path / "performance").mkdir()
    result("conform", 10000, ours=[4.0, 4.0, 4.0], bare=[1.0, 1.0, 1.0], target=0.25).dump(
        tmp_path / "performance" / "conform.json")
    result("conform", 1000, ours=[0.5, 0.5, 0.5], bare=[0.1, 0.1, 0.1], peak=80.0).dump(
        tmp_path / "performance" / "conform-1000.json")
    result("conform", 10000, ours=[4.0], bare=[1.0], peak=120.0).dump(tmp_path / "performance" / "conform-10000.json")
    result("mqtt", 100, ours=[2.0, 2.0, 2.0], bare=[1.0, 1.0, 1.0]).dump(tmp_path / "performance" / "mqtt.json")

    run.write_docs(took_s=60, ran={"conform": "2026-11-23 10:00 UTC"})

    doc = (tmp_path / "performance.md").read_text()
    assert "| conform | 10,000 things | 4.00 s | 1.00 s (bare library) | — | 0.25x vs bare |" in doc
    assert "plantlake >= 0.25x bare: met" in doc
    assert "| mqtt | 100 things | 2.00 s |" in doc and "plantlake >= 0.8x bare: **missed**" in doc
    assert "| 1,000 | 3 | 0.50 s | 2,000 | 80 MiB | 0.10 s | 0.20x |" in doc
    assert "| 10,000 | 1 | 4.00 s | 2,500 | 120 MiB | 1.00 s | 0.25x |" in doc
    assert "time x8.0 (time per item x0.80), peak memory x1.5 (80 -> 120 MiB)" in doc
    assert "![conform scale curve](performance/conform-scale.png)" in doc
    assert (tmp_path / "performance" / "conform-scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Last run: conform 2026-11-23 10:00 UTC" in doc
    assert "## Profile and fix" in doc  # bench/notes.md is included
