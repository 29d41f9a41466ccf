"""The Okta source when things go wrong: rate limits, 5xx, dropped pages, refused tokens."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import pytest

from syncd.sources.base import SourceError
from syncd.sources.okta.source import OktaSource
from tests.conftest import CANARY_OKTA_KEY, CANARY_OKTA_TOKEN
from tests.conftest_okta import N_USERS, PILOT, Okta, logins, okta, okta_server

__all__ = ["okta", "okta_server"]  # fixtures used by name

EVERYONE = logins(range(N_USERS))


def read(okta: Okta, **overrides: object) -> set[str]:
    return {r.attributes["profile.login"] for r in OktaSource(okta.config(**overrides)).read()
            .records}


def test_rate_limited_page_waits_for_the_reset_and_completes(okta: Okta) -> None:
    okta.standin.throttle(429, reset_in=0, times=1, after=2)  # page 3: 429, resets now
    assert read(okta) == EVERYONE
    assert okta.standin.counters["status_429"] == 1
    # The throttled page was asked for again, and every page came once.
    assert okta.standin.counters["api"] == okta.standin.counters["pages"] + 1


def test_unavailable_with_rate_limit_headers_is_retried(okta: Okta) -> None:
    okta.standin.throttle(503, reset_in=0, times=1, after=1)
    assert read(okta) == EVERYONE
    assert okta.standin.counters["status_503"] == 1


def test_rate_limited_past_max_retries_fails_the_read(okta: Okta) -> None:
    okta.standin.throttle(429, reset_in=0, times=10)
    with pytest.raises(SourceError, match=r"Okta answered 429 reading users \(page 1\) "
                       r"\(E0000047: API call exceeded rate limit.*after 1 retries"):
        OktaSource(okta.config(max_retries=1)).read()
    assert okta.standin.counters["status_429"] == 2  # the first try and one retry


def test_reset_beyond_the_retry_budget_fails_at_once(okta: Okta) -> None:
    okta.standin.throttle(429, reset_in=120, times=1)
    with pytest.raises(SourceError, match=r"asked to wait 121s .* max_retry_wait \(5s\)"):
        OktaSource(okta.config()).read()
    assert okta.standin.counters["status_429"] == 1  # no second try: it would not fit


def test_rate_limit_without_okta_headers_fails_the_read(okta: Okta) -> None:
    okta.standin.throttle(429, times=1, headers=False)
    with pytest.raises(SourceError, match=r"reading users \(page 1\): a 429/503/504 came without "
                       r"Okta's X-Rate-Limit-Reset and Date headers"):
        OktaSource(okta.config()).read()


def test_page_dropped_once_is_asked_again(okta: Okta) -> None:
    # aiohttp re-sends a GET once when a kept-alive connection closes unanswered.
    okta.standin.drop_page(after=1)
    assert read(okta) == EVERYONE
    assert okta.standin.counters["dropped"] == 1


def test_dropped_page_mid_read_is_a_source_error(okta: Okta) -> None:
    okta.standin.drop_page(after=1, times=2)
    with pytest.raises(SourceError, match=r"reading users \(page 2\): connection to .* failed"):
        OktaSource(okta.config()).read()
    assert okta.standin.counters["dropped"] == 2


def test_server_error_mid_read_is_a_source_error(okta: Okta) -> None:
    okta.standin.throttle(500, times=1, after=2)
    with pytest.raises(SourceError, match=r"Okta answered 500 reading users \(page 3\) "
                       r"\(E0000009: Internal Server Error\)"):
        OktaSource(okta.config()).read()


def test_group_read_failure_names_the_group(okta: Okta) -> None:
    okta.standin.drop_page(after=0, times=2)
    with pytest.raises(SourceError, match=f"members of group {PILOT}"):
        OktaSource(okta.config(groups=[PILOT])).read()


def test_unknown_app_is_named(okta: Okta) -> None:
    with pytest.raises(SourceError, match=r"Okta answered 404 reading users assigned to app "
                       r"0oamissing .*check the app id"):
        OktaSource(okta.config(app="0oamissing")).read()


def test_revoked_token_is_clear_and_never_shown(
        okta: Okta, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every library logger at its chattiest
    okta.standin.revoke_api_token()
    with pytest.raises(SourceError) as caught:
        OktaSource(okta.config()).read()
    message = str(caught.value)
    assert "Okta answered 401 reading users (page 1) (E0000011: Invalid token provided)" in message
    assert "create a new API token" in message
    shown = "".join(traceback.format_exception(caught.value)) + caplog.text
    out, err = capfd.readouterr()
    for text in (message, shown, out, err):
        assert CANARY_OKTA_TOKEN not in text


def test_oauth_token_failure_then_the_next_run_succeeds(
        okta: Okta, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    okta.standin.fail_tokens(times=1)
    with pytest.raises(SourceError, match=r"cannot get an access token \(OAuth service app "
                       r"0oaservice1.*invalid_client"):
        OktaSource(okta.config(oauth=True, groups=[PILOT])).read()
    assert okta.standin.counters["api"] == 0  # nothing read without a token
    assert read(okta, oauth=True, groups=[PILOT]) == logins(range(100))
    assert CANARY_OKTA_KEY not in caplog.text


def test_oauth_scope_not_granted_says_which(okta: Okta) -> None:
    with pytest.raises(SourceError, match=r"invalid_scope.*not allowed: okta.logs.read.*grant "
                       r"the service app the scopes"):
        OktaSource(okta.config(oauth=True, scopes=["okta.users.read", "okta.logs.read"])).read()


def test_unreadable_private_key_file(okta: Okta, tmp_path: Path) -> None:
    config = okta.config(oauth=True, private_key_file=str(tmp_path / "missing.pem"))
    with pytest.raises(SourceError, match=r"cannot set up the credential: private_key_file: "
                       r"cannot read the file: No such file or directory") as caught:
        OktaSource(config).read()
    assert "missing.pem" not in str(caught.value)  # a path field may hold a pasted key


def test_unusable_private_key_is_named(okta: Okta, tmp_path: Path) -> None:
    key_file = tmp_path / "not-a-key.pem"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                        "-----END PRIVATE KEY-----\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"cannot get an access token \(OAuth service app "
                       r"0oaservice1.*\): .*Key.* -- check client_id, that the service app's "
                       r"public key matches private_key_file"):
        OktaSource(okta.config(oauth=True, private_key_file=str(key_file))).read()
    assert okta.standin.counters["tokens"] == 0


def test_token_file_is_reread_on_every_run(okta: Okta, tmp_path: Path) -> None:
    token_file = tmp_path / "okta-token"
    token_file.write_text("00-an-old-revoked-token\n", encoding="utf-8")
    source = OktaSource(okta.config(api_token=None, api_token_file=str(token_file)))
    with pytest.raises(SourceError, match="the API token was refused"):
        source.read()
    token_file.write_text(CANARY_OKTA_TOKEN, encoding="utf-8")
    assert len(source.read().records) == len(EVERYONE)  # rotated without a restart


def test_untrusted_certificate_says_to_set_ca_file(okta: Okta) -> None:
    with pytest.raises(SourceError, match=r"CERTIFICATE_VERIFY_FAILED.*set ca_file"):
        OktaSource(okta.config(ca_file=None)).read()


def test_a_next_link_to_another_host_fails_the_read_and_is_never_followed(okta: Okta) -> None:
    # The same server under another name: a followed link (with the token) would be counted.
    elsewhere = f"https://127.0.0.1:{okta.standin.port}"
    okta.standin.send_next_links_to(elsewhere)
    with pytest.raises(SourceError, match=r"reading users \(page 2\): Okta sent a next link to "
                       rf"another host \({elsewhere}\); nothing was written"):
        OktaSource(okta.config()).read()
    assert okta.standin.counters["api"] == 1 and okta.standin.counters["pages"] == 1
