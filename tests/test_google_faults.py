"""The Google source when things go wrong: quota, 5xx, dropped pages, tokens, key files."""

from __future__ import annotations

import io
import json
import logging
import traceback
from dataclasses import replace
from pathlib import Path

import pytest

from standins.google.server import GoogleStandin
from standins.jwt import make_rsa_key
from syncd import log
from syncd.sources.base import SourceError
from syncd.sources.common import scrub
from syncd.sources.google.auth import secrets_of
from syncd.sources.google.source import GoogleSource
from tests.conftest import CANARY_GOOGLE_KEY
from tests.conftest_google import (
    N_USERS,
    PILOT,
    Google,
    account,
    emails,
    google,
    google_server,
    workspace,
    write_key_file,
)

__all__ = ["google", "google_server"]  # fixtures used by name

EVERYONE = emails(range(N_USERS))


def read(google: Google, **overrides: object) -> set[str]:
    return {r.attributes["primaryemail"]
            for r in GoogleSource(google.config(**overrides)).read().records}


def test_quota_429_waits_for_retry_after_and_completes(google: Google) -> None:
    google.standin.throttle(429, retry_after=1, times=1, after=2)
    assert read(google) == EVERYONE
    assert google.standin.counters["status_429"] == 1
    assert google.standin.counters["api"] == google.standin.counters["pages"] + 1


def test_unavailable_and_rate_limit_403_are_retried(google: Google) -> None:
    google.standin.throttle(503, retry_after=None, times=1, after=1)  # backoff, no header
    google.standin.throttle(403, retry_after=None, times=1, after=1)  # userRateLimitExceeded
    assert read(google) == EVERYONE
    assert google.standin.counters["status_503"] == 1
    assert google.standin.counters["status_403"] == 1


def test_quota_past_max_retries_fails_the_read(google: Google) -> None:
    google.standin.throttle(429, retry_after=0, times=10)
    with pytest.raises(SourceError, match=r"Google answered 429 reading users \(page 1\) "
                       r"\(rateLimitExceeded: Quota exceeded.*after 1 retries"):
        GoogleSource(google.config(max_retries=1)).read()
    assert google.standin.counters["status_429"] == 2


def test_retry_after_beyond_the_budget_fails_at_once(google: Google) -> None:
    google.standin.throttle(503, retry_after=120, times=1)
    with pytest.raises(SourceError, match=r"asked to wait 120s .* max_retry_wait \(5s\)"):
        GoogleSource(google.config()).read()
    assert google.standin.counters["status_503"] == 1


def test_page_dropped_once_is_asked_again(google: Google) -> None:
    # httplib2 re-sends a GET once when the connection closes unanswered.
    google.standin.drop_page(after=1)
    assert read(google) == EVERYONE
    assert google.standin.counters["dropped"] == 1


def test_dropped_page_mid_read_is_a_source_error(google: Google) -> None:
    google.standin.drop_page(after=1, times=2)
    with pytest.raises(SourceError, match=r"reading users \(page 2\): connection to .* failed"):
        GoogleSource(google.config()).read()
    assert google.standin.counters["dropped"] == 2


def test_server_error_past_the_retries_names_the_page(google: Google) -> None:
    google.standin.throttle(500, retry_after=0, times=3, after=2)
    with pytest.raises(SourceError, match=r"Google answered 500 reading users \(page 3\) "
                       r"\(backendError: Internal error encountered\) after 2 retries"):
        GoogleSource(google.config(max_retries=2)).read()


def test_unknown_group_is_named(google: Google) -> None:
    with pytest.raises(SourceError, match=r"Google answered 404 reading members of group "
                       r"nobody@example.com \(page 1\).*check the group's email"):
        GoogleSource(google.config(groups=["nobody@example.com"])).read()


def test_group_read_failure_names_the_group(google: Google) -> None:
    google.standin.drop_page(after=0, times=2)
    with pytest.raises(SourceError, match=f"members of group {PILOT}"):
        GoogleSource(google.config(groups=[PILOT])).read()


def test_token_failure_then_the_next_run_succeeds(
        google: Google, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    google.standin.fail_tokens(times=1)
    with pytest.raises(SourceError) as caught:
        GoogleSource(google.config()).read()
    message = str(caught.value)
    assert "cannot get an access token (as admin@example.com): invalid_grant: Invalid JWT " \
        "Signature -- the key in credentials_file was deleted or disabled" in message
    assert google.standin.counters["api"] == 0  # nothing read without a token
    shown = "".join(traceback.format_exception(caught.value)) + caplog.text
    out, err = capfd.readouterr()
    for text in (message, shown, out, err):
        assert CANARY_GOOGLE_KEY not in text
    assert read(google) == EVERYONE


def test_scopes_not_delegated_say_where_to_delegate(tmp_path: Path) -> None:
    narrow = replace(account(), delegated_scopes=frozenset({
        "https://www.googleapis.com/auth/admin.directory.user.readonly"}))
    with GoogleStandin(workspace(10), narrow) as standin:
        google = Google(standin, write_key_file(tmp_path / "key.json", standin))
        with pytest.raises(SourceError, match=r"unauthorized_client: Client is unauthorized.*"
                           r"Manage domain-wide delegation.*group.member.readonly"):
            GoogleSource(google.config(subject="admin@example.com")).read()


def test_unknown_subject_is_named(google: Google) -> None:
    with pytest.raises(SourceError, match=r"\(as nobody@elsewhere.example\): invalid_grant: "
                       r"Invalid email or User ID -- check that subject"):
        GoogleSource(google.config(subject="nobody@elsewhere.example")).read()


def test_key_file_problems_are_named_without_the_key(google: Google, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(google.standin.key_file())[:-20], encoding="utf-8")
    with pytest.raises(SourceError) as caught:
        GoogleSource(google.config(credentials_file=str(broken))).read()
    assert "is not JSON" in str(caught.value) and CANARY_GOOGLE_KEY not in str(caught.value)
    wrong = tmp_path / "oauth-client.json"
    wrong.write_text(json.dumps({"installed": {"client_id": "x"}}), encoding="utf-8")
    with pytest.raises(SourceError, match="has type missing; expected a service-account key"):
        GoogleSource(google.config(credentials_file=str(wrong))).read()
    partial = tmp_path / "partial.json"
    key = google.standin.key_file()
    del key["client_email"]
    partial.write_text(json.dumps(key), encoding="utf-8")
    with pytest.raises(SourceError, match=r"not a usable service-account key .*client_email"):
        GoogleSource(google.config(credentials_file=str(partial))).read()
    with pytest.raises(SourceError, match=r"credentials_file: cannot read .*none.json"):
        GoogleSource(google.config(credentials_file=str(tmp_path / "none.json"))).read()


def test_external_account_with_subject_is_refused(google: Google, tmp_path: Path) -> None:
    external = tmp_path / "wif.json"
    external.write_text(json.dumps({"type": "external_account", "audience": "x"}),
                        encoding="utf-8")
    with pytest.raises(SourceError, match="subject: domain-wide delegation needs a "
                       "service-account key file"):
        GoogleSource(google.config(credentials_file=str(external))).read()


def test_service_account_without_delegation_or_admin_role_is_refused(google: Google) -> None:
    with pytest.raises(SourceError, match=r"Google answered 403 reading users \(page 1\) "
                       r"\(forbidden: Not Authorized to access this resource/api\); the "
                       r"impersonated subject must be an admin"):
        GoogleSource(google.config(subject=None)).read()
    assert google.standin.counters["forbidden"] == 1


def test_service_account_with_an_admin_role_needs_no_subject(tmp_path: Path) -> None:
    admin = replace(account(), admin_role=True)
    with GoogleStandin(workspace(20), admin) as standin:
        google = Google(standin, write_key_file(tmp_path / "key.json", standin))
        assert read(google, subject=None) == emails(range(20))
        assert standin.subjects == [None]


def test_a_line_of_the_key_file_is_masked_in_any_log_event(google: Google,
                                                           tmp_path: Path) -> None:
    """Once a key file is read, a server or library quoting a line of its private key
    logs [REDACTED]. The key is new to this test (and unknown to the stand-in): no
    other read has registered it."""
    private_key, _ = make_rsa_key()
    line = private_key.splitlines()[5]
    key_file = tmp_path / "another-key.json"
    key_file.write_text(json.dumps(google.standin.key_file() | {"private_key": private_key}),
                        encoding="utf-8")
    with pytest.raises(SourceError, match="invalid_grant"):
        GoogleSource(google.config(credentials_file=str(key_file))).read()
    stream = io.StringIO()
    log.configure("json", "debug", stream=stream)
    log.get_logger().warning("test.key_quoted", detail=f"bad key data near {line}")
    logging.getLogger("google.auth").warning("could not use key data %s", line)
    written = stream.getvalue()
    assert line not in written
    assert written.count(log.MASK) == 2, written


def test_an_indented_key_line_is_kept_out_of_error_text_as_out_of_logs() -> None:
    """A PEM pasted with indented lines: the error text masks the line as the log does."""
    line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo-indented-5c1e"
    secrets = secrets_of({"private_key": "-----BEGIN PRIVATE KEY-----\n"
                                         f"  {line}\n-----END PRIVATE KEY-----\n"})
    assert scrub(f"Could not deserialize key data: {line}", secrets) == \
        "Could not deserialize key data: ***"
    assert log.redact_text(f"quoted: {line}") == f"quoted: {log.MASK}"
