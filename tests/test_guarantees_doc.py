"""README's Guarantees table cites tests that exist: a promise without its test is a bug."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_guarantee_cites_tests_that_exist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    defined = set(re.findall(r"^def (test_\w+)", "\n".join(
        p.read_text(encoding="utf-8") for p in (REPO / "tests").glob("test_*.py")), re.M))
    assert len(rows) >= 10, "the Guarantees table lost its rows"
    for row in rows[1:]:
        cited = re.findall(r"`(test_[\w*]+)`", row)
        assert cited, f"a guarantee without a test: {row}"
        for name in cited:
            assert fnmatch.filter(defined, name), f"{name} (cited in README) does not exist"
