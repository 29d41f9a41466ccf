"""What goes wrong with Nebuly, as the rest of syncd sees it. Messages never contain
the API key."""

from __future__ import annotations


class NebulyError(Exception):
    """Nebuly could not be used. Messages never contain the API key."""


class NebulyAuthError(NebulyError):
    pass


class NebulyUnavailable(NebulyError):
    pass


class Stopped(NebulyError):
    """The daemon is shutting down: no further batch is sent."""
