"""Bad input of every kind: broken config files (through the CLI), broken directory
data, and Nebuly rosters of unexpected shapes.

Config: each broken file is answered by `syncd validate` and by `syncd once` with
exit code 2, one clear line naming the field, no traceback and no call to Nebuly.
(tests/test_config.py covers further broken files in-process.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import pytest

from standins.nebuly.server import Fault, NebulyStandIn
from syncd.config.model import load_config
from syncd.core.model import id_key
from syncd.run.orchestrator import ExitCode, run_once
from tests.conftest import CANARIES, CANARY_API_KEY, person, write_csv

REPO = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 22)

BASE = """\
nebuly:
  base_url: {url}
  api_key: {key}
  max_retries: 0
sources:
  - name: hr
    type: csv
    path: roster.csv
    end_user: "{{email}}"
    tags:
      department: "{{department}}"
"""


@dataclass(frozen=True)
class BadConfig:
    name: str
    make: Callable[[str], str | bytes]  # the valid base text -> the broken file
    expected: str  # the one line must contain this (it names the field)
    # Found by the config loader (both commands print the plain problem list), or
    # only once secrets and templates are checked (`once` logs config.invalid).
    at_load: bool = True


def _sub(old: str, new: str) -> Callable[[str], str]:
    def make(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)
    return make


def _add(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def _nebuly(extra: str) -> Callable[[str], str]:
    return _sub("  max_retries: 0\n", f"  max_retries: 0\n  {extra}\n")


def _source(extra: str) -> Callable[[str], str]:
    return _sub("    type: csv\n", f"    type: csv\n    {extra}\n")


BAD_CONFIGS = [
    BadConfig("batch-size-not-a-number", _nebuly("batch_size: lots"),
              "nebuly.batch_size: Input should be a valid integer"),
    BadConfig("batch-size-negative", _nebuly("batch_size: -5"),
              "nebuly.batch_size: Input should be greater than or equal to 1"),
    BadConfig("max-retries-fraction", _sub("max_retries: 0", "max_retries: 1.5"),
              "nebuly.max_retries: Input should be a valid integer"),
    BadConfig("timeout-in-words", _nebuly("timeout: 10 minutes"),
              "nebuly.timeout: expected a duration such as 30s, 15m, 1h; got '10 minutes'"),
    BadConfig("retry-wait-zero", _nebuly("max_retry_wait: 0"),
              "nebuly.max_retry_wait: must be greater than zero"),
    BadConfig("interval-in-weeks", _add("schedule: {interval: 1w}\n"),
              "schedule.interval: expected a duration"),
    BadConfig("cron-with-four-fields", _add("schedule: {cron: '0 * * *'}\n"),
              "schedule: cron '0 * * *': expected 5 fields"),
    BadConfig("interval-and-cron", _add("schedule: {interval: 1h, cron: '0 * * * *'}\n"),
              "schedule: give interval or cron, not both"),
    BadConfig("region-unknown", lambda t: re.sub(r"  base_url: .*\n", "  region: asia\n", t),
              "nebuly.region: expected one of 'us' or 'eu'; got 'asia'"),
    BadConfig("api-flavour-unknown", _nebuly("api: users"),
              "nebuly.api: expected one of 'platform-users' or 'eligible-users'; got 'users'"),
    BadConfig("duplicate-source-names",
              _add("  - {name: hr, type: csv, path: r.csv, end_user: '{email}'}\n"),
              "source name 'hr' is used twice"),
    BadConfig("source-type-missing", _sub("    type: csv\n", ""),
              "sources[0].type: field required"),
    BadConfig("source-type-unknown", _sub("type: csv", "type: ldif"),
              "sources[0].type: expected one of 'csv', 'ldap', 'entra', 'okta' or 'google'; "
              "got 'ldif'"),
    BadConfig("sources-is-a-mapping",
              lambda t: t.split("sources:")[0] + "sources: {name: hr, type: csv}\n",
              "sources: Input should be a valid list"),
    BadConfig("nebuly-is-empty", lambda t: "nebuly:\nsources:" + t.split("sources:")[1],
              "nebuly: has no value; the entries meant for it must be indented under it"),
    BadConfig("end-user-empty", _sub('end_user: "{email}"', 'end_user: ""'),
              "sources[0].end_user: String should have at least 1 character"),
    BadConfig("delimiter-two-chars", _source('delimiter: ";;"'),
              "sources[0].delimiter: String should have at most 1 character"),
    BadConfig("allow-empty-not-a-bool", _source("allow_empty: maybe"),
              "sources[0].allow_empty: Input should be a valid boolean"),
    BadConfig("regex-nothing-to-repeat", _source("exclude_ids: ['*abc']"),
              "sources[0].exclude_ids: '*abc' is not a valid regular expression"),
    BadConfig("env-var-unset-in-path", _sub("path: roster.csv", "path: ${SYNCD_BI_UNSET}/r.csv"),
              "sources[0].path: environment variable SYNCD_BI_UNSET is not set"),
    BadConfig("percent-negative", _add("policy: {max_deactivations: '-5%'}\n"),
              "policy.max_deactivations: a percentage must be between 0% and 100%"),
    BadConfig("percent-over-100", _add("policy: {max_deactivations: '100.5%'}\n"),
              "policy.max_deactivations: a percentage must be between 0% and 100%"),
    BadConfig("count-negative", _add("policy: {max_deactivations: -3}\n"),
              "policy.max_deactivations: a count must be 0 or more"),
    BadConfig("id-case-unknown", _add("policy: {id_case: upper}\n"),
              "policy.id_case: expected one of 'lower' or 'preserve'; got 'upper'"),
    BadConfig("owner-tag-without-value", _add("policy: {owner_tag: {key: managed_by}}\n"),
              "policy.owner_tag.value: field required"),
    BadConfig("health-port-too-high", _add("health: {port: 70000}\n"),
              "health.port: Input should be less than or equal to 65535"),
    BadConfig("log-level-unknown", _add("logging: {level: verbose}\n"),
              "logging.level: expected one of 'debug', 'info', 'warning' or 'error'; "
              "got 'verbose'"),
    BadConfig("yaml-tab-indent", _sub("  max_retries: 0", "\tmax_retries: 0"),
              "line 4, column 1: a tab in the indentation; YAML indents with spaces only"),
    BadConfig("yaml-unclosed-quote", _sub('end_user: "{email}"', 'end_user: "{email}'),
              "line 1"),
    BadConfig("not-utf-8", lambda t: t.replace("department", "département").encode("latin-1"),
              "is not UTF-8 text"),
    BadConfig("empty-file", lambda t: "", "expected a mapping with keys nebuly, sources"),
    BadConfig("scalar-at-top-level", lambda t: "syncd\n",
              "expected a mapping with keys nebuly, sources"),
    # Found when secrets and templates are resolved, before any I/O.
    BadConfig("template-unclosed-brace", _sub('"{department}"', '"{department"'),
              "sources[0].tags.department: '{department': expected '}'", at_load=False),
    BadConfig("template-format-spec", _sub('"{email}"', '"{email:>10}"'),
              "sources[0].end_user: '{email:>10}': write {email} without ':' or '!'",
              at_load=False),
    BadConfig("template-empty-placeholder", _sub('"{email}"', '"{}@example.com"'),
              "sources[0].end_user: '{}@example.com': empty {} placeholder", at_load=False),
    BadConfig("api-key-empty", _sub(f"api_key: {CANARY_API_KEY}", 'api_key: ""'),
              "nebuly.api_key: is empty", at_load=False),
    BadConfig("secret-file-missing", _sub(f"api_key: {CANARY_API_KEY}",
                                          "api_key_file: secrets/missing"),
              "nebuly.api_key_file: cannot read", at_load=False),
    BadConfig("secret-file-empty", _sub(f"api_key: {CANARY_API_KEY}",
                                        "api_key_file: secrets/empty"),
              "nebuly.api_key_file:", at_load=False),
    BadConfig("secret-file-not-utf-8", _sub(f"api_key: {CANARY_API_KEY}",
                                            "api_key_file: secrets/latin1"),
              "nebuly.api_key_file:", at_load=False),
    BadConfig("secret-file-is-a-directory", _sub(f"api_key: {CANARY_API_KEY}",
                                                 "api_key_file: secrets"),
              "nebuly.api_key_file: cannot read", at_load=False),
]
SECRET_FILE_WORDS = {"secret-file-empty": "is empty", "secret-file-not-utf-8": "is not UTF-8"}


def _problem_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith("  ")]


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=[c.name for c in BAD_CONFIGS])
def test_broken_config_is_one_clear_line_and_exit_2(tmp_path: Path, standin: NebulyStandIn,
                                                    case: BadConfig) -> None:
    write_csv(tmp_path / "roster.csv", [person(1)])
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "empty").write_text(" \n")
    (secrets / "latin1").write_bytes("clé".encode("latin-1"))
    base = BASE.format(url=standin.url, key=CANARY_API_KEY)
    broken = case.make(base)
    path = tmp_path / "syncd.yaml"
    if isinstance(broken, bytes):
        path.write_bytes(broken)
    else:
        path.write_text(broken, encoding="utf-8")
    commands = {cmd: subprocess.Popen(
        [sys.executable, "-m", "syncd.app.cli", cmd, "--config", str(path)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in ("validate", "once")}
    expected = case.expected
    for cmd, proc in commands.items():
        stdout, stderr = proc.communicate(timeout=60)
        assert "Traceback" not in stdout + stderr
        assert not any(canary in stdout + stderr for canary in CANARIES)
        assert proc.returncode == ExitCode.CONFIG_ERROR, (cmd, stdout, stderr)
        if cmd == "validate" or case.at_load:
            assert stdout == ""
            lines = _problem_lines(stderr)
            assert len(lines) == 1, (cmd, stderr)
            line = lines[0]
        else:
            # `once` found it while resolving: one config.invalid event carries it.
            events = [msgspec.json.decode(x) for x in stderr.splitlines() if x.startswith("{")]
            (invalid,) = [e for e in events if e["event"] == "config.invalid"]
            line = invalid["error"]
            assert events[-1]["event"] == "sync.finished" and events[-1]["exit_code"] == 2
        assert expected in line, (cmd, line)
        assert SECRET_FILE_WORDS.get(case.name, "") in line, (cmd, line)
    assert standin.calls == [], "a broken config reached Nebuly"


# -- directory data ----------------------------------------------------------------

MEGABYTE = "x" * (1 << 20)


def _config(tmp_path: Path, url: str, csv_path: Path) -> Path:
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(f"""
nebuly: {{base_url: "{url}", api_key: {CANARY_API_KEY}, max_retries: 0}}
sources:
  - name: hr
    type: csv
    path: {csv_path}
    end_user: "{{email}}"
    tags: {{department: "{{department}}", region: "{{country}}"}}
policy: {{max_deactivations: 100}}
""", encoding="utf-8")
    return cfg


def test_bad_directory_rows_are_reported_and_skipped_and_the_rest_synced(
        tmp_path: Path, standin: NebulyStandIn,
        _logs_without_secrets: list[dict[str, Any]]) -> None:
    # People Nebuly already has whose rows are broken in this export: whatever
    # happens to their row, they must not be treated as departed.
    standin.seed([{"end_user": f"kept{i}@example.com", "tags": {"department": "Sales",
                   "region": "FR"}, "active_from": "2026-01-01", "active_to": None}
                  for i in range(3)])
    good = [person(i) for i in range(5)]
    rows = [
        *good,
        {"email": "", "department": "Sales", "country": "FR", "title": "no id"},
        {"email": "   ", "department": "Sales", "country": "FR", "title": "blank id"},
        {"email": "USER00001@EXAMPLE.COM", "department": "Ops", "country": "DE", "title": "dup"},
        {"email": "jos\u00e9@example.com", "department": "Sales", "country": "ES", "title": ""},
        {"email": "jose\u0301@example.com", "department": "Ops", "country": "ES", "title": ""},
        {"email": "zo\u00eb@ex\u00e4mple.com", "department": "Z\u00fcrich", "country": "CH",
         "title": ""},
        {"email": "bell\x07@example.com", "department": "Sales", "country": "FR", "title": ""},
        {"email": "nul\x00@example.com", "department": "Sales", "country": "FR", "title": ""},
        {"email": "tabbed@example.com", "department": "Sa\tles\x00", "country": "F\x1bR",
         "title": ""},
        {"email": "long" + "x" * 600 + "@example.com", "department": "Sales", "country": "FR",
         "title": ""},
        {"email": "  spaced@example.com ", "department": "Sales", "country": "FR",
         "title": "multi\nline\ncell"},
        # Existing people with a broken row: a megabyte in a column syncd does not
        # map, and one in a column it does.
        {"email": "kept0@example.com", "department": "Sales", "country": "FR",
         "title": MEGABYTE},
        {"email": "kept1@example.com", "department": MEGABYTE, "country": "FR", "title": ""},
        {"email": "kept2@example.com", "department": "Sales", "country": "FR", "title": ""},
    ]
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    with csv_path.open("a", encoding="utf-8") as handle:
        handle.write("short@example.com,Sales\n")  # too few fields
    report = run_once(load_config(_config(tmp_path, standin.url, csv_path)), today=TODAY)
    assert report.exit_code == ExitCode.OK, report.summary()
    users = {u["end_user"]: u for u in standin.users()}
    for row in good:
        assert users[row["email"]]["tags"] == {"department": "Sales", "region": "FR"}
    assert users["jos\u00e9@example.com"]["tags"]["region"] == "ES"  # the first spelling wins
    assert users["zo\u00eb@ex\u00e4mple.com"]["tags"]["department"] == "Z\u00fcrich"
    assert users["spaced@example.com"]["active_to"] is None
    tabbed = users["tabbed@example.com"]["tags"]
    assert not any(ch < " " for value in tabbed.values() for ch in value), tabbed
    # Nobody is in Nebuly twice, and no broken id got in.
    keys = [id_key(u) for u in users]
    assert len(keys) == len(set(keys))
    assert not any(ch < " " for u in users for ch in u)
    assert not any(len(u) > 512 for u in users)
    assert "short@example.com" not in users
    # The existing people whose rows were broken still have access.
    for i in range(3):
        assert users[f"kept{i}@example.com"]["active_to"] is None, users[f"kept{i}@example.com"]
    assert len(users["kept1@example.com"]["tags"]["department"]) <= 256
    assert report.summary()["deactivated"] == 0
    # Every broken row was reported with its location (identical reasons are one line
    # with a count, from the first row to the last).
    reported = " ".join(f"{e.get('record')} {e.get('last')} {e.get('reason')}"
                        for e in _logs_without_secrets if e["event"] == "record.skipped")
    for fragment in ("line 7", "line 8", "duplicate id 'user00001@example.com'",
                     "duplicate id 'jos\u00e9@example.com'", "contains control characters",
                     "longer than 512", f"line {len(rows) + 4}"):
        assert fragment in reported, fragment
    assert MEGABYTE not in repr(_logs_without_secrets)


# -- Nebuly rosters of unexpected shapes ---------------------------------------------

def _record(end_user: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"end_user": end_user,
                              "tags": {"department": "Sales", "region": "FR"},
                              "active_from": "2026-01-01", "active_to": None}
    record.update(fields)
    return record


def test_unexpected_roster_shapes_cause_no_crash_and_no_spurious_update(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    odd = [
        _record("extra@example.com", created_at="2026-01-01T00:00:00Z", id=7, score=0.5),
        _record("stamp@example.com", active_from="2026-01-01T08:30:00+00:00"),
        _record("noto@example.com"),
        _record("typed@example.com", tags={"department": "Sales", "region": "FR", "level": 3,
                                           "vip": True, "note": None}),
        _record("zulu@example.com", active_from="2026-01-01T00:00:00Z"),
        _record("left@example.com", active_to="2026-03-01T00:00:00Z"),
        # Fields missing: no tags, no active_from. Updating these is a real change.
        {"end_user": "bare@example.com"},
        _record("nulltags@example.com", tags=None),
        # An unusable entry is left alone.
        _record("baddate@other.example", active_from="next tuesday"),
    ]
    del odd[2]["active_to"]  # absent rather than null
    standin.seed(odd)
    # The stand-in stores only entries with an id: serve one without, once.
    without_id = {"tags": {"department": "Sales"}, "active_from": "2026-01-01"}
    standin.inject(Fault(method="GET", body=msgspec.json.encode(
        {"users": [*standin.users(), without_id]})))
    rows = [person(0)] + [
        {"email": e, "department": "Sales", "country": "FR", "title": ""}
        for e in ("extra@example.com", "stamp@example.com", "noto@example.com",
                  "typed@example.com", "zulu@example.com", "bare@example.com",
                  "nulltags@example.com")]
    csv_path = write_csv(tmp_path / "roster.csv", rows)
    report = run_once(load_config(_config(tmp_path, standin.url, csv_path)), today=TODAY)
    assert report.exit_code == ExitCode.OK, report.summary()
    after = {u.get("end_user"): u for u in standin.users()}
    for record in odd[:6]:
        assert after[record["end_user"]] == record, "a record that needed no change was written"
    for record in odd[8:]:
        assert record in standin.users()  # unusable entries untouched
    assert after["bare@example.com"]["tags"] == {"department": "Sales", "region": "FR"}
    assert after["nulltags@example.com"]["tags"] == {"department": "Sales", "region": "FR"}
    summary = report.summary()
    assert (summary["inserted"], summary["updated"], summary["deactivated"]) == (1, 2, 0)
    standin.reset_calls()
    assert run_once(load_config(_config(tmp_path, standin.url, csv_path)),
                    today=TODAY).exit_code == ExitCode.OK
    assert standin.write_calls() == 0


@pytest.mark.parametrize("body", [
    pytest.param(b'{"users": {"end_user": "a@example.com"}}', id="object-instead-of-list"),
    pytest.param(b'[{"end_user": "a@example.com"}]', id="list-at-top-level"),
    pytest.param(b'{"data": []}', id="no-users-key"),
    pytest.param(b'{"users": null}', id="users-null"),
    pytest.param(b'"users"', id="a-string"),
    pytest.param(b"", id="empty-body"),
])
def test_roster_of_the_wrong_shape_fails_the_run_before_any_write(
        tmp_path: Path, standin: NebulyStandIn, body: bytes) -> None:
    standin.seed([_record(f"user{i:05d}@example.com") for i in range(5)])
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(3)])
    standin.inject(Fault(method="GET", body=body))
    report = run_once(load_config(_config(tmp_path, standin.url, csv_path)), today=TODAY)
    assert report.exit_code == ExitCode.NEBULY_FAILED, report.summary()
    assert "Nebuly's user list" in (report.error or "")
    assert standin.write_calls() == 0


def test_unusable_roster_entries_are_left_alone_and_the_rest_synced(
        tmp_path: Path, standin: NebulyStandIn,
        _logs_without_secrets: list[dict[str, Any]]) -> None:
    # Once, one such entry failed every GET (exit 4 on every run until fixed in Nebuly).
    good = [_record(f"user{i:05d}@example.com") for i in range(3)]
    odd: list[dict[str, Any]] = [
        {"end_user": 42, "tags": {}, "active_from": "2026-01-01"},
        {"end_user": "listtags@example.com", "tags": ["x"], "active_from": "2026-01-01"},
        {"end_user": "numdate@example.com", "tags": {}, "active_from": 20260101},
    ]
    standin.seed(good)
    standin.inject(Fault(method="GET", body=msgspec.json.encode({"users": good + odd})))
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(4)])
    report = run_once(load_config(_config(tmp_path, standin.url, csv_path)), today=TODAY)
    assert report.exit_code == ExitCode.OK, report.summary()
    summary = report.summary()
    assert (summary["inserted"], summary["deactivated"], summary["nebuly_users"]) == (1, 0, 3)
    writes = [c for c in standin.calls if c.method != "GET"]
    assert [(c.method, c.n_users) for c in writes] == [("PUT", 1)]  # the odd ones untouched
    unreadable = [e for e in _logs_without_secrets if e["event"] == "nebuly.unreadable_users"]
    assert unreadable and unreadable[0]["count"] == 3
