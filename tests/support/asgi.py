"""A Sanic app served in this process through its ASGI interface, lifespan included.

For tests that must see inside the worker (the SDK's in-memory span exporter): the
app's ``before_server_start`` listeners run on the ASGI ``lifespan.startup`` event,
its ``after_server_stop`` ones on ``lifespan.shutdown``, and httpx sends the requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

_STARTUP_SECONDS = 30.0


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` started (its listeners run) and an httpx client that calls it in process."""
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, incoming.get, outgoing.put)
    )
    await incoming.put({"type": "lifespan.startup"})
    started = await asyncio.wait_for(outgoing.get(), _STARTUP_SECONDS)
    assert started["type"] == "lifespan.startup.complete", started
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://strata.test") as client:
            yield client
    finally:
        await incoming.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(outgoing.get(), _STARTUP_SECONDS)
        await lifespan
