"""Small wire-level helpers shared by the platform routers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.state import MediaSink, SandboxState


class ConnectionDropped(Exception):
    """Raised after a response has started, so uvicorn closes the socket mid-response."""


class DroppedResponse(Response):
    """An ASGI response that starts, promises a body, and then breaks the connection.

    The client sees the connection close before a complete response: the same as a network drop.
    (A Response subclass, so FastAPI passes it through instead of serialising it.)
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"1024"), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
        raise ConnectionDropped("sandbox fault: connection dropped")


async def apply_latency(state: SandboxState, platform: str, endpoint: str) -> None:
    delay = state.faults.latency_s(platform, endpoint)
    if delay > 0:
        await asyncio.sleep(delay)


async def stream_into(request: Request, sink: MediaSink, *, limit: int | None = None,
                      on_chunk: Callable[[int], Awaitable[None]] | None = None) -> int:
    """Read the request body into `sink` piece by piece (never the whole body in memory)."""
    received = 0
    async for piece in request.stream():
        if not piece:
            continue
        sink.write(piece)
        received += len(piece)
        if on_chunk is not None:
            await on_chunk(received)
        if limit is not None and received > limit:
            break
    return received


async def form_and_query(request: Request) -> dict[str, str]:
    """Query string plus url-encoded form body, as the Graph API reads them (body wins)."""
    params = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    if request.method in ("POST", "PUT", "DELETE"):
        body = await request.body()
        if body and "application/x-www-form-urlencoded" in ctype:
            params.update(dict(parse_qsl(body.decode(), keep_blank_values=True)))
        elif body and "application/json" in ctype:
            data = json.loads(body)
            if isinstance(data, dict):
                params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
    return params


def json_param(value: str | None, default: Any = None) -> Any:
    """Decode a Graph-style parameter that may be JSON-encoded (lists, dicts) or a plain string."""
    if value is None:
        return default
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value


def fields_param(value: str | None) -> list[str]:
    """`fields` arrives as a comma list (sync calls) or a JSON array (async insights)."""
    if not value:
        return []
    decoded = json_param(value)
    if isinstance(decoded, list):
        return [str(f) for f in decoded]
    return [f.strip() for f in str(value).split(",") if f.strip()]


# Faults a router can inject in front of any handler; async-job faults ("stuck", "failed") are asked
# for separately by the code that advances those jobs.
REQUEST_FAULTS = ("transient", "rate_limit", "quota", "token_expired", "drop_connection", "ambiguous")


async def with_faults(state: SandboxState, platform: str, endpoint: str,
                      render: Callable[[Any], Any], call: Callable[[], Awaitable[Any]]) -> Any:
    """Run `call` under the faults switched on for (platform, endpoint).

    `render(rule)` turns a transient/rate_limit/quota/token_expired rule into the platform's own error
    response. "ambiguous" commits the write and then loses the response; "drop_connection" loses the
    request before anything is committed.
    """
    await apply_latency(state, platform, endpoint)
    rule = state.faults.pick(platform, endpoint, kinds=REQUEST_FAULTS)
    if rule is None:
        return await call()
    if rule.kind == "drop_connection":
        return DroppedResponse()
    if rule.kind == "ambiguous":
        await call()
        state.save()
        return DroppedResponse()
    return render(rule)
