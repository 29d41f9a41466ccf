"""What the JSON-API sources (Entra, Okta, Google) share: progress told page by page."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.sources.base import SourceRead
from syncd.sources.entra.source import EntraSource
from syncd.sources.google.source import GoogleSource
from syncd.sources.okta.source import OktaSource
from tests.conftest_entra import Entra, entra_server, graph
from tests.conftest_google import Google, google, google_server
from tests.conftest_okta import Okta, okta, okta_server

__all__ = ["entra_server", "google", "google_server", "graph", "okta", "okta_server"]


@dataclass
class RecordingProgress:
    """A ReadProgress that remembers every call."""

    pages: list[int] = field(default_factory=list)

    def page(self, records: int) -> None:
        self.pages.append(records)


def test_entra_tells_progress_once_per_page_with_its_size(graph: Entra) -> None:
    progress = RecordingProgress()
    read = EntraSource(graph.config(page_size=400)).read(progress)
    served = graph.standin.counters["pages"]
    assert served > 1
    assert len(progress.pages) == served
    # Every page but the last is full; together they are the users Graph sent
    # (enabled ones: the filter is on the server), guests included.
    assert progress.pages[:-1] == [400] * (served - 1)
    assert 0 < progress.pages[-1] <= 400
    assert sum(progress.pages) >= len(read.records)


def told_each_page(progress: RecordingProgress, size: int, read: SourceRead) -> bool:
    """Several pages, each full but the last, which together hold every record."""
    pages = progress.pages
    return (len(pages) > 1 and pages[:-1] == [size] * (len(pages) - 1)
            and sum(pages) >= len(read.records) > 0)


def test_okta_tells_progress_once_per_page_with_its_size(okta: Okta) -> None:
    progress = RecordingProgress()
    read = OktaSource(okta.config(page_size=150)).read(progress)
    assert told_each_page(progress, 150, read)


def test_google_tells_progress_once_per_page_with_its_size(google: Google) -> None:
    progress = RecordingProgress()
    read = GoogleSource(google.config(page_size=100)).read(progress)
    assert told_each_page(progress, 100, read)
