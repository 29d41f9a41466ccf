"""An httpx async transport that does its I/O with httpx's blocking transport, in a thread.

Why: kiota (and so msgraph-sdk) is async only, and httpx's async stack
(httpcore over anyio) is much slower per megabyte received than the blocking
one: the 100 pages (1 MB each) of a 100,000-user read took 0.65-1.2 s async
against 0.2-0.3 s blocking, in one process against the Graph stand-in. Pages are
read one after the other, so one worker thread at a time is all this needs;
the event loop, kiota's middleware (retries) and azure-identity stay as they
are. The whole body is read in the thread: Graph pages are decoded whole anyway.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


def threaded_transport(blocking: httpx.HTTPTransport) -> httpx.AsyncBaseTransport:
    """An AsyncBaseTransport sending through `blocking` (which it owns and closes)."""
    import httpx

    class ThreadedTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            # A request body is bytes here (kiota's GETs have none, getByIds a small
            # JSON document): httpx.ByteStream serves the blocking transport as is.
            if not isinstance(request.stream, httpx.SyncByteStream):
                request = httpx.Request(request.method, request.url,
                                        headers=request.headers,
                                        content=await request.aread(),
                                        extensions=request.extensions)
            return await asyncio.to_thread(_send, blocking, request)

        async def aclose(self) -> None:
            blocking.close()

    return ThreadedTransport()


def _send(blocking: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
    import httpx

    response = blocking.handle_request(request)
    try:
        body = response.read()
    finally:
        response.close()
    return httpx.Response(response.status_code, headers=response.headers, content=body,
                          extensions=response.extensions, request=request)
