"""Config and CSV mistakes an admin makes on the first day (issue 18, findings 8 and 9):
the answer names the line, suggests the key meant, and a Windows export can be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncd.config.model import ConfigError, load_config
from syncd.run.orchestrator import preview
from syncd.sources.base import SourceError
from tests.conftest import run_cli
from tests.test_bad_input import BASE

HEADER = "email,department\n"


def _config(tmp_path: Path, extra: str = "", nebuly: str = "") -> Path:
    """test_bad_input's one-CSV-source file (lines 1-11), `nebuly` lines added to its
    nebuly section (from line 5), `extra` appended (from line 12)."""
    cfg = tmp_path / "syncd.yaml"
    text = BASE.format(url="http://127.0.0.1:9", key="k")
    cfg.write_text(text.replace("sources:\n", nebuly + "sources:\n") + extra, encoding="utf-8")
    return cfg


def _problems(cfg: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    return caught.value.problems


def test_an_unknown_key_names_its_line_and_the_key_meant(tmp_path: Path) -> None:
    (problem,) = _problems(_config(tmp_path, nebuly="  batchsize: 100\n"))
    assert problem == ("nebuly.batchsize: unknown key; did you mean batch_size? "
                       "(see `syncd schema`) (line 5)")
    cfg = _config(tmp_path, "policy:\n  max_deactivation: 5\n")
    done = run_cli("validate", "--config", str(cfg))
    assert done.returncode == 2
    assert "policy.max_deactivation: unknown key; did you mean max_deactivations?" in done.stderr
    assert "(line 13)" in done.stderr


def test_a_misindented_tag_map_reads_as_a_config_mistake_not_internals(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "      region:\n        template: \"{country}\"\n"
                  "        mapp: {FR: EMEA}\n")
    (problem,) = _problems(cfg)
    assert problem == ("sources[0].tags.region.mapp: unknown key; did you mean map? "
                       "(see `syncd schema`) (line 14)")
    assert ".str" not in problem and "TagTemplate" not in problem


def test_a_windows_1252_export_names_its_line_and_reads_with_encoding(tmp_path: Path) -> None:
    (tmp_path / "roster.csv").write_bytes(
        (HEADER + "ann@example.com,Sales\nbob@example.com,Recherche et d\xe9veloppement\n")
        .encode("cp1252"))
    with pytest.raises(SourceError) as caught:
        preview(load_config(_config(tmp_path)))
    assert "line 3" in caught.value.message and "encoding: cp1252" in caught.value.message
    cfg = _config(tmp_path, "    encoding: cp1252\n")
    users = preview(load_config(cfg)).users
    assert users["bob@example.com"].tags["department"] == "Recherche et d\u00e9veloppement"
    (bad,) = _problems(_config(tmp_path, "    encoding: latin-42\n"))
    assert "sources[0].encoding" in bad and "latin-42" in bad


def test_repeated_identical_skips_are_one_line_with_a_count(
        tmp_path: Path, _logs_without_secrets: list[dict[str, Any]]) -> None:
    rows = "".join(f",Dept{i % 2}\n" for i in range(30))  # 30 rows without an email
    (tmp_path / "roster.csv").write_text(HEADER + "ann@example.com,Sales\n" + rows)
    preview(load_config(_config(tmp_path)))
    skipped = [e for e in _logs_without_secrets if e["event"] == "record.skipped"]
    assert len(skipped) == 1
    assert skipped[0]["count"] == 30 and skipped[0]["record"] == "roster.csv line 3"
    assert skipped[0]["last"] == "roster.csv line 32"


def test_a_section_left_empty_by_its_indentation_says_so(tmp_path: Path) -> None:
    # `department:` written level with `tags:` leaves `tags:` empty (None in YAML).
    cfg = tmp_path / "syncd.yaml"
    text = BASE.format(url="http://127.0.0.1:9", key="k")
    cfg.write_text(text.replace('      department: "{department}"',
                                '    department: "{department}"'), encoding="utf-8")
    problems = _problems(cfg)
    assert problems[0] == ("sources[0].tags: has no value; the entries meant for it must be "
                           "indented under it (line 10)")
    assert not any("Input should be" in p for p in problems)


def test_a_typo_is_matched_against_its_own_section_first(tmp_path: Path) -> None:
    # `deparment` beside a source's keys is not policy's `departed`.
    (typo,) = _problems(_config(tmp_path, "    deparment: x\n"))
    assert typo == ("sources[0].deparment: unknown key (check the spelling; see `syncd "
                    "schema`) (line 12)")
    # A key of another section written in the wrong one says where it belongs.
    (misplaced,) = _problems(_config(tmp_path, nebuly="  max_deactivations: 5\n"))
    assert misplaced == ("nebuly.max_deactivations: not a key of this section: it belongs to "
                         "another one (see `syncd schema`) (line 5)")
