"""Airflow's constraints file minus the packages plantlake pins itself.

Airflow publishes a constraints file per version that pins every dependency it was tested
with. plantlake pins some of the same packages to newer versions (pandas, pyarrow, numpy, ...)
in pyproject.toml; pip cannot satisfy both pins, so the image build drops exactly those lines
and keeps Airflow's constraints for everything else.

    python deploy/constraints.py constraints.txt pyproject.toml > plantlake-constraints.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(pyproject: Path) -> set[str]:
    """The distributions pyproject.toml pins (main dependencies), normalized."""
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    return {normalize(re.split(r"[\[=<>!~ ;]", d, maxsplit=1)[0]) for d in deps}


def filtered(constraints: str, drop: set[str]) -> str:
    keep = []
    for line in constraints.splitlines():
        name = re.split(r"[=<>!~ ;\[]", line.strip(), maxsplit=1)[0]
        if line.strip() and not line.lstrip().startswith("#") and normalize(name) in drop:
            continue
        keep.append(line)
    return "\n".join(keep) + "\n"


if __name__ == "__main__":
    sys.stdout.write(filtered(Path(sys.argv[1]).read_text(encoding="utf-8"),
                              pinned(Path(sys.argv[2])) - {"apache-airflow"}))
