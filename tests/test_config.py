"""Config: the acceptance file, one clear line per problem, secrets inline/env/file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.config.model import ConfigError, NebulyConfig, SyncdConfig, load_config, parse_config
from tests.conftest import CANARY_API_KEY, modules_imported_by

ACCEPTANCE = """
nebuly:
  base_url: http://127.0.0.1:8931      # default: https://backend.nebuly.com ; or region: eu
  api: platform-users                  # or eligible-users (verbs differ, see nebuly-api.md)
  api_key: ${NEBULY_API_KEY}           # or api_key_file: /run/secrets/nebuly
  batch_size: 500
sources:
  - name: hr
    type: csv
    path: ./roster.csv
    end_user: "{email}"                # template over the record's attributes
    tags:
      department: "{department}"
      region: "{country}"
policy:
  mode: sync                           # sync | upsert-only | create-only
  max_deactivations: "10%"             # a count or a percent of the managed roster
"""

MINIMAL = """
nebuly: {api_key: k}
sources: [{name: hr, type: csv, path: r.csv, end_user: "{email}"}]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    return err.value.problems


def test_acceptance_file_validates_as_written(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEBULY_API_KEY", CANARY_API_KEY)
    path = tmp_path / "syncd.yaml"
    path.write_text(ACCEPTANCE)
    config = load_config(path)
    assert config.nebuly.url == "http://127.0.0.1:8931"
    assert config.nebuly.resolve_api_key() == CANARY_API_KEY
    assert config.sources[0].path == tmp_path / "roster.csv"  # relative to the config file
    assert config.policy.max_deactivations.ceiling(200) == 20
    assert CANARY_API_KEY not in repr(config) and CANARY_API_KEY not in str(config)


def test_region_picks_the_host() -> None:
    config = parse_config(MINIMAL.replace("{api_key: k}", "{api_key: k, region: eu}"))
    assert config.nebuly.url == "https://backend.eu.nebuly.com"
    assert parse_config(MINIMAL).nebuly.url == "https://backend.nebuly.com"


@pytest.mark.parametrize(("text", "expected"), [
    ("nebuly: {api_key: k}\nsources: [{name: a, type: csv, end_user: '{e}'}]",
     "sources[0].path: field required"),
    (MINIMAL + "polcy: {}", "polcy: unknown key"),
    (MINIMAL.replace("r.csv,", "r.csv, colour: red,"), "sources[0].colour: unknown key"),
    (MINIMAL + "policy: {max_deactivations: '150%'}",
     "policy.max_deactivations: a percentage must be between 0% and 100%"),
    (MINIMAL + "policy: {max_deactivations: lots}", "policy.max_deactivations: expected a count"),
    (MINIMAL + "policy: {mode: mirror}", "policy.mode: expected one of 'sync'"),
    (MINIMAL.replace("{api_key: k}", "{api_key: k, batch_size: 0}"),
     "nebuly.batch_size: Input should be greater than or equal to 1"),
    (MINIMAL.replace("{api_key: k}", "{api_key: k, timeout: -3s}"), "nebuly.timeout: expected"),
    (MINIMAL.replace("{api_key: k}", "{}"), "nebuly: api_key or api_key_file is required"),
    (MINIMAL.replace("{api_key: k}", "{api_key: k, api_key_file: /x}"),
     "nebuly: give api_key or api_key_file, not both"),
    ("nebuly: {api_key: k}\nsources: []", "sources: List should have at least 1 item"),
    (MINIMAL.replace("type: csv", "type: excel"),
     "sources[0].type: expected one of 'csv', 'ldap', 'entra', 'okta' or 'google'; got 'excel'"),
    (MINIMAL.replace("type: csv", "type: ldaps"),
     "got 'ldaps'; did you mean ldap?"),
    (MINIMAL.replace("type: csv, ", ""), "sources[0].type: field required"),
    (MINIMAL.replace("type: csv", "type: [csv]"),
     "sources[0].type: expected one of 'csv', 'ldap', 'entra', 'okta' or 'google'; got ['csv']"),
    (MINIMAL.replace("type: csv", "type: {csv: 1}"), "sources[0].type: expected one of"),
    (MINIMAL.replace("type: csv", "type: null"),
     "sources[0].type: expected one of 'csv', 'ldap', 'entra', 'okta' or 'google'; got None"),
    ("nebuly: {api_key: k}\nsources: [hr.csv]",
     "sources[0]: Input should be a valid dictionary or object to extract fields from"),
    (MINIMAL.replace("r.csv,", "r.csv, exclude_ids: ['('],"),
     "sources[0].exclude_ids: '(' is not a valid regular expression"),
    (MINIMAL + "policy: {source_precedence: [ldap]}",
     "source_precedence names 'ldap', which is not a source (sources: hr)"),
    ("nebuly: [1, 2", "line 1"),
    (MINIMAL + "nebuly: {api_key: j}",
     "line 4, column 1: key 'nebuly' is given twice (also on line 2)"),
    ("- just a list", "expected a mapping"),
    ("nebuly: {api_key: '${SYNCD_TEST_UNSET_VAR}'}\nsources: []",
     "nebuly.api_key: environment variable SYNCD_TEST_UNSET_VAR is not set"),
])
def test_bad_config_names_the_field(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems("nebuly: {batch_size: 0}\nsources: [{name: a, type: csv}]")
    assert len(found) >= 3, found


def test_env_default_and_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCD_UNSET", raising=False)
    config = parse_config(MINIMAL.replace("api_key: k", "api_key: '${SYNCD_UNSET:-fallback}'")
                          .replace("{email}", "{email}$$"))
    assert config.nebuly.resolve_api_key() == "fallback"
    assert config.sources[0].end_user == "{email}$"


def test_secret_from_file_is_read_each_time(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text(CANARY_API_KEY + "\n")
    config = parse_config(MINIMAL.replace("api_key: k", f"api_key_file: {secret}"))
    assert config.nebuly.resolve_api_key() == CANARY_API_KEY
    secret.write_text("rotated-key")
    assert config.nebuly.resolve_api_key() == "rotated-key"
    secret.write_text("")
    with pytest.raises(ValueError, match=r"api_key_file: .* is empty"):
        config.nebuly.resolve_api_key()


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syncd.app.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60, check=False)


def test_validate_command(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL)
    (tmp_path / "r.csv").write_text("email\nann@example.com\n")  # validate reads it
    done = run_cli("validate", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert "source 'hr' (csv): reads" in done.stdout and "attributes: email" in done.stdout


def test_validate_connect_reads_a_csv_source(tmp_path: Path) -> None:
    # Nebuly at a closed port: --connect must never contact it.
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL.replace("{api_key: k}", "{api_key: k, base_url: 'http://127.0.0.1:9'}"))
    (tmp_path / "r.csv").write_text("email\na@x.example\nb@x.example\n")
    done = run_cli("validate", "--connect", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert "source 'hr': ok" in done.stdout and "would read 2 people" in done.stdout
    (tmp_path / "r.csv").unlink()
    gone = run_cli("validate", "--connect", "--config", str(path))
    assert gone.returncode == 3
    (line,) = [x.strip() for x in gone.stderr.splitlines() if x.startswith("  ")]
    assert line.startswith("sources[0]: ") and "r.csv" in line


def test_validate_reports_bad_file_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("nebuly: {api_key: k, batchsize: 3}\nsources: [{name: a, type: csv}]")
    done = run_cli("validate", "--config", str(path))
    assert done.returncode == 2
    assert "nebuly.batchsize: unknown key" in done.stderr
    assert "sources[0].path: field required" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_validate_reports_bad_template_and_missing_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL.replace("{email}", "{email")
                    .replace("api_key: k", "api_key_file: /nonexistent/key"))
    done = run_cli("validate", "--config", str(path))
    assert done.returncode == 2, done.stdout
    assert "sources[0].end_user:" in done.stderr and "api_key_file: cannot read" in done.stderr


def test_missing_config_file() -> None:
    done = run_cli("once", "--config", "/nonexistent/syncd.yaml")
    assert done.returncode == 2 and "cannot read the config file" in done.stderr


def test_schema_command() -> None:
    done = run_cli("schema")
    schema = json.loads(done.stdout)
    assert done.returncode == 0 and {"nebuly", "sources"} <= set(schema["properties"])


def test_a_config_loads_only_the_source_types_it_names() -> None:
    # Every start pays for what it imports: a CSV-only config must not import (nor
    # build the config models of) the LDAP, Entra, Okta and Google sources.
    loaded = modules_imported_by(
        "from syncd.config.model import parse_config\n"
        "from syncd.config.security import insecure_transports\n"
        "from syncd.sources.factory import build_source\n"
        "cfg = parse_config('''nebuly: {api_key: k}\n"
        "sources: [{name: hr, type: csv, path: r.csv, end_user: '{email}'}]''')\n"
        "build_source(cfg.sources[0]); insecure_transports(cfg)\n")
    configs = {m for m in loaded if m.startswith("syncd.sources.") and m.endswith(".config")}
    assert configs == {"syncd.sources.csv.config"}


def test_a_source_built_in_code_is_taken_as_it_is() -> None:
    csv = parse_config(MINIMAL).sources[0]
    again = SyncdConfig(nebuly=NebulyConfig(api_key="k"), sources=[csv])
    assert again.sources[0] is csv
