"""The config mistakes an admin makes in the first week (issue 18), in one table.

Each is a one-line slip in an otherwise good config. `syncd validate` must answer
every one with exit 2 and a single problem line that names the field (and its
line, where the YAML has one) and says what to write instead; nothing reaches
Nebuly, and no traceback or internals appear.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncd.run.report import ExitCode

GOOD = """\
nebuly:
  base_url: http://127.0.0.1:9
  api_key: ${NEBULY_API_KEY:-demo-key}
sources:
  - name: hr
    type: csv
    path: ./roster.csv
    end_user: "{email}"
    tags:
      department: "{department}"
policy:
  mode: sync
  max_deactivations: "10%"
schedule:
  interval: 1h
state_dir: ./state
"""

CSV_SOURCE = """\
  - name: hr
    type: csv
    path: ./roster.csv"""

LDAP_SOURCE = """\
  - name: hr
    type: ldap
    url: {url}
    base_dn: {base_dn}
    bind_dn: cn=syncd,dc=corp,dc=example
    bind_password: not-a-real-password"""


@dataclass(frozen=True)
class Slip:
    name: str
    old: str
    new: str
    expected: tuple[str, ...]  # every one in the first problem line
    also: str = ""  # a second problem line, when the slip makes two


def _ldap(url: str, base_dn: str) -> str:
    return LDAP_SOURCE.format(url=url, base_dn=base_dn)


SLIPS = [
    Slip("template-names-a-column-the-csv-lacks", '"{department}"', '"{dept}"',
         ("sources[0].path", "tags.department: {dept}", "columns: email, department")),
    Slip("misspelt-section", "schedule:", "shedule:",
         ("shedule: unknown key; did you mean schedule?", "(line 14)")),
    Slip("tag-map-indented-level-with-tags", '      department: "{department}"',
         '    department: "{department}"',
         ("sources[0].tags: has no value", "indented under it", "(line 9)"),
         also="sources[0].department: unknown key; if it belongs under tags, indent it "
         "under tags (line 10)"),
    Slip("mode-misspelt", "mode: sync", "mode: upsert",
         ("policy.mode: expected one of 'sync', 'upsert-only' or 'create-only'; got 'upsert'; "
          "did you mean upsert-only?", "(line 12)")),
    Slip("cap-in-words", '"10%"', '"ten percent"',
         ("policy.max_deactivations", "such as '10%'", "(line 13)")),
    Slip("interval-without-a-unit", "interval: 1h", "interval: hourly",
         ("schedule.interval", "such as 30s, 15m, 1h", "(line 15)")),
    Slip("unknown-time-zone", "interval: 1h", 'cron: "0 * * * *"\n  timezone: Europe/Milano',
         ("schedule.timezone", "Europe/Milano")),
    Slip("interval-and-cron", "interval: 1h", 'interval: 1h\n  cron: "0 * * * *"',
         ("schedule", "interval or cron, not both")),
    Slip("csv-path-wrong", "./roster.csv", "./rooster.csv",
         ("sources[0].path", "rooster.csv", "file not found")),
    Slip("api-key-variable-unset", "${NEBULY_API_KEY:-demo-key}", "${NEBULY_KEY_UNSET}",
         ("nebuly.api_key", "NEBULY_KEY_UNSET is not set", "export it")),
    Slip("base-url-without-scheme", "http://127.0.0.1:9", "api.nebuly.com",
         ("nebuly.base_url", "https://", "(line 2)")),
    Slip("plain-http-to-a-remote-host", "http://127.0.0.1:9", "http://nebuly.corp.example",
         ("nebuly.base_url", "use https://", "allow_plaintext")),
    Slip("end-user-forgotten", '    end_user: "{email}"\n', "",
         ("sources[0].end_user", "field required")),
    Slip("source-name-twice", "policy:", CSV_SOURCE + '\n    end_user: "{email}"\npolicy:',
         ("sources: source name 'hr' is used twice", "(line 4)")),
    Slip("tab-in-indentation", "  mode: sync", "\tmode: sync",
         ("line 12, column 1", "a tab in the indentation; YAML indents with spaces only")),
    Slip("state-dir-where-nothing-can-be-created", "./state", "/proc/syncd-state",
         ("state_dir", "/proc/syncd-state")),
    Slip("semicolon-csv", "./roster.csv", "./semicolon.csv",
         ("sources[0].path", "set delimiter: ';'")),
    Slip("plain-ldap", CSV_SOURCE, _ldap("ldap://dc1.corp.example", "ou=people,dc=corp"),
         ("sources[0]", "plain LDAP", "ldaps://", "start_tls")),
    Slip("dn-list-split-by-yaml", CSV_SOURCE,
         _ldap("ldaps://dc1.corp.example", "[ou=people, dc=corp, dc=example]"),
         ("sources[0].base_dn", "split at its commas", "quote each DN")),
    Slip("okta-org-url-without-scheme", CSV_SOURCE,
         CSV_SOURCE.replace("type: csv\n    path: ./roster.csv",
                            "type: okta\n    org_url: acme.okta.com\n    api_token: not-a-token"),
         ("sources[0].org_url", "'acme.okta.com' is not an http(s) URL",
          "write it like https://acme.okta.com", "(line 7)")),
    Slip("yaml-alias", "state_dir: ./state", "state_dir: ./state\nx: &a [1]\ny: *a",
         ("line 18", "aliases", "write the value out")),
]


def _validate(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    """`syncd validate` of `config` beside the table's two rosters, with no API key set."""
    roster = "email,department\nada@example.com,Legal\n"
    (tmp_path / "roster.csv").write_text(roster, encoding="utf-8")
    (tmp_path / "semicolon.csv").write_text(roster.replace(",", ";"), encoding="utf-8")
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("NEBULY_API_KEY", "NEBULY_KEY_UNSET")}
    return subprocess.run([sys.executable, "-m", "syncd.app.cli", "validate", "--config",
                           str(cfg)], capture_output=True, text=True, timeout=120,
                          check=False, env=env, cwd=tmp_path)


@pytest.mark.parametrize("slip", SLIPS, ids=[s.name for s in SLIPS])
def test_a_common_config_mistake_is_exit_2_with_one_line_naming_the_field(
        tmp_path: Path, slip: Slip) -> None:
    assert slip.old in GOOD, slip.name
    done = _validate(tmp_path, GOOD.replace(slip.old, slip.new, 1))
    assert done.returncode == ExitCode.CONFIG_ERROR, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "Input should be" not in done.stderr
    lines = [line.strip() for line in done.stderr.splitlines() if line.startswith("  ")]
    assert lines[1:] == ([slip.also] if slip.also else []), done.stderr
    for words in slip.expected:
        assert words in lines[0], (words, lines[0])


def test_the_good_config_of_the_table_is_valid(tmp_path: Path) -> None:
    done = _validate(tmp_path, GOOD)
    assert done.returncode == 0, done.stderr
