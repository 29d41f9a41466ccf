"""`syncd schema` accepts every bundled config (issue 18, finding 4): an editor that
uses it must not underline a correct file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
BUNDLED = sorted(p for folder in ("config", "deploy")
                 for p in (REPO / folder).rglob("*.y*ml")
                 if re.search(r"^nebuly:", p.read_text(encoding="utf-8"), re.MULTILINE))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    done = run_cli("schema")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_syncd_config_in_the_repository_is_checked() -> None:
    names = {p.relative_to(REPO).as_posix() for p in BUNDLED}
    assert {"config/demo.yaml", "config/example-ad.yaml", "config/example-entra.yaml",
            "config/example-ldap.yaml", "deploy/kubernetes/config.yaml",
            "deploy/compose/config.yaml", "deploy/systemd/config.yaml"} <= names


@pytest.mark.parametrize("path", BUNDLED, ids=[p.relative_to(REPO).as_posix() for p in BUNDLED])
def test_the_schema_accepts_a_bundled_config(path: Path,
                                             validator: jsonschema.Draft202012Validator) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize(("key", "value"), [
    ("nebuly.batch_size", "many"), ("policy.max_deactivations", "ten"),
    ("schedule.interval", "soon"), ("policy.mode", "mirror"), ("nebuly.colour", "blue"),
])
def test_the_schema_still_rejects_wrong_values(key: str, value: str,
                                               validator: jsonschema.Draft202012Validator
                                               ) -> None:
    document = yaml.safe_load((REPO / "config/demo.yaml").read_text(encoding="utf-8"))
    section, name = key.split(".")
    document.setdefault(section, {})[name] = value
    assert list(validator.iter_errors(document)), key
