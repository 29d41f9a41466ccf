"""A plain `pip install syncd` (no extras), made from this environment without a network.

The test venv has every extra installed, so "the admin forgot `[entra]`" cannot be
seen in it. This builds a directory holding links to exactly the distributions
syncd requires without extras (followed transitively through their metadata); a
child Python started with `-S` (no site-packages) and this directory plus the
repository on its path is a plain install.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def _required(name: str) -> list[str]:
    dist = distribution(name)
    names = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


def build_plain_site(target: Path) -> Path:
    """Link the base dependencies of syncd (and theirs) into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    todo, seen = _required("syncd"), set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a marker for another platform or Python
        for file in dist.files or []:
            top = file.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            link = target / top
            if not link.exists():
                link.symlink_to(Path(str(dist.locate_file(top))))
        todo += _required(name)
    return target


def run_plain(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`syncd ARGS` on a plain install."""
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}"}
    return subprocess.run([sys.executable, "-S", "-m", "syncd.app.cli", *args],
                          capture_output=True, text=True, timeout=120, check=False, env=env,
                          cwd=REPO)
