"""What the JSON-API sources (Entra, Okta, Google) share: the read's frame and its pager.

Each of those sources pages through a REST API, turns every failure into one
SourceError naming the page that failed, tells the run's progress receiver
about each page and logs one `<kind>_read` event with what it saw. This is
that frame; a source says only what is its own (its session, its scope, its
filters and its error wording).

`JsonApiSource.read()` is synchronous like every source. The async ones
(Entra, Okta) run on an event loop of their own: a fresh one per read, or,
for a source kept between a daemon's runs, one kept open with it so that its
HTTP client and token survive (an httpx or aiohttp client cannot outlive its
event loop). The library SDKs are imported by the sources, lazily; whether
they are installed is decided once, by the factory (syncd.sources.factory).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import structlog

from syncd.sources.base import (
    NO_PROGRESS,
    ReadProgress,
    RecordProblem,
    SourceError,
    SourceRead,
    SourceRecord,
)
from syncd.sources.config_base import SourceConfigBase

log = structlog.get_logger(__name__)

Page = list[dict[str, Any]]
# A failure and where it happened ("users (page 3)") -> the SourceError to raise.
Translate = Callable[[BaseException, str], SourceError]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one read found, and the facts its `<kind>_read` event logs (counts, seconds)."""

    records: Sequence[SourceRecord]
    problems: Sequence[RecordProblem]
    facts: Mapping[str, int | float]


@dataclass(frozen=True, slots=True)
class Origin:
    """The scheme and host (with port) of an API's base URL: where its pages may lead.

    The library follows a next-page link with the credential attached, so a link
    to any other host (a compromised or misconfigured server, a proxy rewriting
    bodies) must end the read instead of handing the token over.
    """

    scheme: str
    netloc: str  # host[:port], lower case

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        return cls(parts.scheme, parts.netloc.lower())

    def foreign_link(self, link: str) -> str | None:
        """What is wrong with following `link` (it leaves this origin), or None."""
        parts = urlsplit(link)
        if Origin(parts.scheme, parts.netloc.lower()) == self:
            return None
        # Named by its host and port: a `user:password@` part is never repeated.
        return f"a next link to another host ({parts.scheme}://{parts.netloc.rpartition('@')[2]})"


class Pager:
    """The pages of one read: counted, told to the progress receiver, failures translated.

    A page that cannot be fetched (after the library's own retries) becomes the
    SourceError `translate` makes, naming what was being read and the page
    number: "could not read" must never become "user left".
    """

    __slots__ = ("pages", "progress", "translate")

    def __init__(self, translate: Translate, progress: ReadProgress = NO_PROGRESS) -> None:
        self.translate = translate
        self.progress = progress
        self.pages = 0  # pages received in this read, over every listing

    def where(self, what: str) -> str:
        """Where a record of the page just received came from, for RecordProblem."""
        return f"{what} page {self.pages}"

    async def each(self, pages: AsyncIterator[Page], what: str) -> AsyncIterator[Page]:
        """Every page of an async listing."""
        page_no = 1  # of the page awaited, within this listing
        try:
            while (page := await self._anext(pages, what, page_no)) is not None:
                page_no += 1
                yield page
        finally:
            aclose = getattr(pages, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _anext(self, pages: AsyncIterator[Page], what: str, page_no: int
                     ) -> Page | None:
        """The next page, received; None at the end of the listing."""
        try:
            page = await anext(pages)
        except StopAsyncIteration:
            return None
        except Exception as exc:
            raise self._failure(exc, what, page_no) from None
        self._received(page)
        return page

    def each_sync(self, pages: Iterator[Page], what: str) -> Iterator[Page]:
        """Every page of a blocking listing."""
        for page_no in itertools.count(1):
            try:
                page = next(pages)
            except StopIteration:
                return
            except Exception as exc:
                raise self._failure(exc, what, page_no) from None
            self._received(page)
            yield page

    def _failure(self, exc: Exception, what: str, page_no: int) -> SourceError:
        if isinstance(exc, SourceError):  # already says what failed (a source's own check)
            return exc
        return self.translate(exc, f"{what} (page {page_no})")

    def _received(self, page: Page) -> None:
        self.pages += 1
        self.progress.page(len(page))


class JsonApiSource(ABC):
    """A source read page by page from a JSON API; subclasses implement `_read`."""

    # The name of the event logged after each read ("entra_read"): a contract.
    event: ClassVar[str]

    def __init__(self, config: SourceConfigBase) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    def read(self, progress: ReadProgress = NO_PROGRESS) -> SourceRead:
        started = time.monotonic()
        outcome = self._read(progress)
        log.info(self.event, source=self.name, users=len(outcome.records), **outcome.facts,
                 problems=len(outcome.problems), seconds=round(time.monotonic() - started, 3))
        return SourceRead(outcome.records, tuple(outcome.problems))

    @abstractmethod
    def _read(self, progress: ReadProgress) -> Outcome:
        """Everything, or a SourceError."""

    def setup_failed(self, detail: object) -> SourceError:
        """The credential cannot be set up (an unreadable secret or key file...)."""
        return SourceError(self.name, f"cannot set up the credential: {detail}")


class AsyncJsonApiSource(JsonApiSource):
    """A JSON-API source whose library is async: `_read_async` runs on an event loop.

    Not kept (the default: `syncd once`, validate), each read runs on a fresh
    loop and closes everything it opened. Kept (`kept` set by a subclass that
    can keep its session, for a daemon), the loop stays open between reads so
    the session the subclass keeps on it does too, until `close()`.
    """

    def __init__(self, config: SourceConfigBase) -> None:
        super().__init__(config)
        self.kept = False
        self._runner: asyncio.Runner | None = None
        # A read and close() must not overlap (a daemon closes from its main thread).
        self._lock = threading.Lock()

    def _read(self, progress: ReadProgress) -> Outcome:
        # The result travels in `box`, not as the coroutine's return value: on
        # Python 3.11 asyncio.run() formats repr(main task) when it restores the
        # SIGINT handler, and a task's repr includes repr(result) -- every
        # record, half a second for 100,000 users.
        box: list[Outcome] = []
        with self._lock:
            self._run(self._read_into(box, progress))
        return box[0]

    async def _read_into(self, box: list[Outcome], progress: ReadProgress) -> None:
        box.append(await self._read_async(progress))

    @abstractmethod
    async def _read_async(self, progress: ReadProgress) -> Outcome:
        """Everything, or a SourceError."""

    async def _release(self) -> None:
        """Close what a kept source keeps open (its session); called by close()."""

    def close(self) -> None:
        """Close the kept session and its event loop. The source may be read again."""
        with self._lock:
            if self._runner is None:
                return
            try:
                self._runner.run(self._release())
            finally:
                self._runner.close()
                self._runner = None

    def _run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if not self.kept:
            asyncio.run(coroutine)
            return
        if self._runner is None:
            self._runner = asyncio.Runner()
        self._runner.run(coroutine)
