"""The floors import one way: `lint-imports` keeps the layers contract in pyproject.toml, and
an upward import in a copy of the code breaks it (so the contract checks something)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit
PACKAGES = ("plantlake", "connectors", "quality", "schemas", "simulators")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_code_keeps_the_layers_contract():
    done = _lint(ROOT)
    assert done.returncode == 0 and "1 kept, 0 broken" in done.stdout, done.stdout + done.stderr


def test_an_upward_import_breaks_it(tmp_path):
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    views = tmp_path / "plantlake" / "core" / "views.py"
    views.write_text(views.read_text() + "\n\ndef _upward():\n    from plantlake.pipeline import runner  # noqa\n")
    done = _lint(tmp_path)
    assert done.returncode == 1 and "0 kept, 1 broken" in done.stdout, done.stdout + done.stderr
    assert "plantlake.core.views -> plantlake.pipeline.runner" in done.stdout
