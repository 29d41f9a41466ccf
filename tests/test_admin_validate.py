"""`syncd validate` catches, offline, what the first run would reject (issue 18,
findings 2 and 3): every case here passed `validate` and then failed a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from syncd.run.report import ExitCode
from tests.conftest import CANARY_API_KEY, person, run_cli, write_csv
from tests.plain_install import build_plain_site, run_plain
from tests.test_bad_input import BASE as BAD_INPUT_BASE

# One CSV source reading roster.csv; Nebuly is never contacted (validate is offline).
BASE = BAD_INPUT_BASE.replace("{url}", "http://127.0.0.1:9")

LDAP_SOURCE = """\
  - name: ad
    type: ldap
    url: ldaps://dc1.corp.example:636
    base_dn: OU=Staff,DC=corp,DC=example
    end_user: "{{mail}}"
"""

ENTRA_SOURCE = """\
  - name: corp
    type: entra
    tenant_id: t
    client_id: c
    client_secret: s
    end_user: "{{userPrincipalName}}"
"""


@dataclass(frozen=True)
class Mistake:
    name: str
    text: str  # appended to / replacing parts of BASE
    expected: tuple[str, ...]  # every one must be in the problem line


def _replace(old: str, new: str) -> str:
    return BASE.replace(old, new)


MISTAKES = [
    Mistake("missing-csv", _replace("path: roster.csv", "path: rooster.csv"),
            ("sources[0].path", "rooster.csv", "file not found")),
    Mistake("state-dir-not-writable", BASE + "state_dir: roster.csv/state\n",
            ("state_dir", "roster.csv")),
    # Writable by its mode bits (even root's access() says yes), yet nothing can be
    # created there: the check must try, not trust the mode bits.
    Mistake("state-dir-on-a-filesystem-that-takes-no-directories",
            BASE + "state_dir: /proc/syncd-state\n", ("state_dir", "/proc/syncd-state")),
    Mistake("unknown-time-zone", BASE + "schedule:\n  cron: '0 * * * *'\n"
            "  timezone: Europe/Pariss\n",
            ("schedule.timezone", "Europe/Pariss")),
    Mistake("dn-list-split-by-yaml",
            BASE + LDAP_SOURCE + "    groups: [CN=AI Pilot,OU=Groups,DC=corp,DC=example]\n",
            ("sources[1].groups", "split at its commas", "quote each DN")),
    Mistake("template-typo-against-the-csv-header",
            _replace('"{{department}}"', '"{{dept}}"'),
            ("sources[0]", "dept", "columns: email, department")),
]


def _write(tmp_path: Path, text: str) -> Path:
    write_csv(tmp_path / "roster.csv", [person(1)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(text.format(key=CANARY_API_KEY), encoding="utf-8")
    return cfg


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_validate_finds_offline_what_the_first_run_would_reject(tmp_path: Path,
                                                                 mistake: Mistake) -> None:
    done = run_cli("validate", "--config", str(_write(tmp_path, mistake.text)))
    assert done.returncode == ExitCode.CONFIG_ERROR, done.stdout
    lines = [line.strip() for line in done.stderr.splitlines() if line.startswith("  ")]
    assert len(lines) == 1, done.stderr
    for word in mistake.expected:
        assert word in lines[0], (word, lines[0])


def test_validate_of_a_good_config_reads_the_csv_header(tmp_path: Path) -> None:
    done = run_cli("validate", "--config", str(_write(tmp_path, BASE)))
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout and "1 records" in done.stdout


@pytest.fixture(scope="module")
def plain_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_plain_site(tmp_path_factory.mktemp("plain") / "site")


def test_a_missing_extra_is_a_config_error_naming_the_pip_install(tmp_path: Path,
                                                                 plain_site: Path) -> None:
    cfg = _write(tmp_path, BASE + ENTRA_SOURCE)
    wanted = "pip install 'syncd[entra]'"
    validate = run_plain(plain_site, "validate", "--config", str(cfg))
    assert validate.returncode == ExitCode.CONFIG_ERROR, validate.stdout + validate.stderr
    assert wanted in validate.stderr and "sources[1]" in validate.stderr

    once = run_plain(plain_site, "once", "--config", str(cfg))
    assert once.returncode == ExitCode.CONFIG_ERROR, once.stderr
    assert "internal error" not in once.stderr and "Traceback" not in once.stderr
    events = [msgspec.json.decode(x) for x in once.stderr.splitlines() if x.startswith("{")]
    (invalid,) = [e for e in events if e["event"] == "config.invalid"]
    assert wanted in invalid["error"] and "'corp'" in invalid["error"]
    assert events[-1]["event"] == "sync.finished" and events[-1]["exit_code"] == 2

    preview = run_plain(plain_site, "preview", "--config", str(cfg))
    assert preview.returncode == ExitCode.CONFIG_ERROR and wanted in preview.stderr


OKTA_SOURCE = """\
  - name: okta
    type: okta
    org_url: https://acme.okta.com
    api_token: t
    end_user: "{{profile.email}}"
"""
GOOGLE_SOURCE = """\
  - name: workspace
    type: google
    customer: C01
    credentials_file: roster.csv
    end_user: "{{primaryEmail}}"
"""


@pytest.mark.parametrize(("source", "extra", "name"), [(OKTA_SOURCE, "okta", "okta"),
                                                       (GOOGLE_SOURCE, "google", "workspace")])
def test_okta_and_google_without_their_sdk_are_config_errors(
        tmp_path: Path, plain_site: Path, source: str, extra: str, name: str) -> None:
    cfg = _write(tmp_path, BASE + source)
    wanted = f"pip install 'syncd[{extra}]'"
    validate = run_plain(plain_site, "validate", "--config", str(cfg))
    assert validate.returncode == ExitCode.CONFIG_ERROR, validate.stdout + validate.stderr
    assert wanted in validate.stderr and "sources[1]" in validate.stderr

    once = run_plain(plain_site, "once", "--config", str(cfg))
    assert once.returncode == ExitCode.CONFIG_ERROR, once.stderr
    events = [msgspec.json.decode(x) for x in once.stderr.splitlines() if x.startswith("{")]
    (invalid,) = [e for e in events if e["event"] == "config.invalid"]
    assert wanted in invalid["error"] and f"{name!r}" in invalid["error"]


def test_a_missing_python_ldap_backend_names_its_extra(tmp_path: Path,
                                                       plain_site: Path) -> None:
    cfg = _write(tmp_path, BASE + LDAP_SOURCE + "    backend: python-ldap\n")
    done = run_plain(plain_site, "validate", "--config", str(cfg))
    assert done.returncode == ExitCode.CONFIG_ERROR
    assert "pip install 'syncd[ldap-fast]'" in done.stderr
