"""Sources kept from one daemon run to the next, so a run is not a cold start.

A source that can keep its session (an Entra source: its credential, token
and HTTP connection) is built once and handed to every run whose config for
it is unchanged. The config is re-read before every run: a source whose
config changed (or that left the config) is closed and, if still
configured, built anew. Secrets are not part of this: a source re-reads its
secret files on every read and renews its own session when they changed.
Sources that keep nothing are built fresh for every run, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import structlog

from syncd.sources.base import Source
from syncd.sources.config_base import SourceConfigBase
from syncd.sources.factory import build_source

if TYPE_CHECKING:
    from syncd.sources.kinds import AnySourceConfig

log = structlog.get_logger(__name__)


@runtime_checkable
class KeepableSource(Source, Protocol):
    """A source that can keep its session open between reads."""

    def keep_open(self) -> None:
        """From now on, reads leave the session open for the next read."""

    def close(self) -> None:
        """Close the kept session (the source may still be read: it opens a new one)."""


class KeptSources:
    """Builds the sources of each run, keeping those that can be kept; `close()` at the end."""

    def __init__(self, build: Callable[[AnySourceConfig], Source] = build_source) -> None:
        self._build = build
        self._kept: dict[str, tuple[SourceConfigBase, KeepableSource]] = {}

    def build(self, config: AnySourceConfig) -> Source:
        """The source for `config`: the kept one when its config is unchanged."""
        held = self._kept.get(config.name)
        if held is not None:
            if held[0] == config:
                return held[1]
            self._close(config.name, "its config changed")
        source = self._build(config)
        if isinstance(source, KeepableSource):
            source.keep_open()
            self._kept[config.name] = (config, source)
        return source

    def retain(self, configs: Iterable[SourceConfigBase]) -> None:
        """Close the kept sources that are no longer configured as they were."""
        current = {config.name: config for config in configs}
        for name, (config, _) in list(self._kept.items()):
            if current.get(name) != config:
                self._close(name, "it left the config" if name not in current
                            else "its config changed")

    def close(self) -> None:
        for name in list(self._kept):
            self._close(name, "the daemon is stopping")

    def _close(self, name: str, why: str) -> None:
        _, source = self._kept.pop(name)
        try:
            source.close()
        except Exception as exc:  # closing must not stop a run or the shutdown
            log.warning("source.close_failed", source=name, reason=why,
                        error=f"{type(exc).__name__}: {exc}")
        else:
            log.info("source.closed", source=name, reason=why)
