"""The rule every JSON-API source applies to a next-page link: it stays on the base URL's
scheme, host and port (the library would send the credential wherever it points)."""

from __future__ import annotations

import pytest

from syncd.sources.jsonapi import Origin

GRAPH = Origin.of("https://graph.microsoft.com/v1.0")


def test_a_link_on_the_same_origin_is_followed_whatever_the_host_case() -> None:
    assert GRAPH.foreign_link("https://graph.microsoft.com/v1.0/users?$skiptoken=X1") is None
    assert GRAPH.foreign_link("https://Graph.Microsoft.COM/v1.0/users?$skiptoken=X1") is None


@pytest.mark.parametrize(("link", "named"), [
    ("https://graph.evil.example/v1.0/users", "https://graph.evil.example"),
    ("http://graph.microsoft.com/v1.0/users", "http://graph.microsoft.com"),
    ("https://graph.microsoft.com:8443/v1.0/users", "https://graph.microsoft.com:8443"),
    # A credential in the link is refused like any other host, and never repeated.
    ("https://user:s3cret@graph.microsoft.com/v1.0/users", "https://graph.microsoft.com"),
])
def test_a_link_elsewhere_is_named_not_followed(link: str, named: str) -> None:
    assert GRAPH.foreign_link(link) == f"a next link to another host ({named})"
