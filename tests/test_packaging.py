"""What `pip install .` ships: the syncd package, and no stand-in or test code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_syncd_and_no_stand_in(tmp_path: Path) -> None:
    # A copy of the tree as `pip install .` sees it, built by setuptools' PEP 517
    # hook in place (pip's isolated build environment would need the network).
    tree = tmp_path / "tree"
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "build", "demo-state"))
    code = "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))"
    built = subprocess.run([sys.executable, "-c", code, str(tmp_path / "dist")], cwd=tree,
                           capture_output=True, text=True, check=False, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = tmp_path / "dist" / built.stdout.strip().splitlines()[-1]
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {
        "syncd"}
    assert not [n for n in names if "standin" in n]
    assert {"syncd/core/plan.py", "syncd/run/orchestrator.py", "syncd/app/cli.py"} <= set(names)
