"""rupload.facebook.com/ig-api-upload: the resumable upload host for Instagram video containers.

POST /ig-api-upload/{version}/{container_id} (the documented `uri`; the guide also shows it without the
version, so both are served) with headers `Authorization: OAuth <token>`, `offset`, `file_size` and the
raw bytes as body. Bytes stream into a MediaSink (size + SHA-256 only). An interrupted upload keeps the
bytes that arrived; the client resumes with `offset` = bytes received, which it reads from the container's
`video_status.uploading_phase.bytes_transferred` (documented on graph.facebook.com) or from a GET on the
upload path. That GET is NOT documented for ig-api-upload; it follows the `{"offset": N}` answer other
rupload.facebook.com upload routes give, and is kept here as a convenience.

Errors use rupload's own envelope, `{"debug_info": {"retriable", "type", "message"}}` (412
OffsetInvalidError for a wrong offset, as rupload answers elsewhere). The expected `offset` inside
debug_info is a sandbox addition.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from sandbox.instagram_state import IgStore
from sandbox.state import MediaSink
from sandbox.wire import REQUEST_FAULTS, DroppedResponse, apply_latency, stream_into


class Dropped(Response):
    """wire.DroppedResponse as a starlette Response: FastAPI passes a Response through to the server, where a
    plain ASGI callable would be serialised as `{}` and answered 200."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await DroppedResponse()(scope, receive, send)


def rupload_error(status: int, type_: str, message: str, *, retriable: bool, **extra: Any) -> JSONResponse:
    return JSONResponse({"debug_info": {"retriable": retriable, "type": type_, "message": message, **extra}},
                        status_code=status)


def _int_header(request: Request, name: str) -> int | None:
    value = request.headers.get(name, "")
    return int(value) if value.isdigit() else None


def rupload_router(store: IgStore, config: Any) -> APIRouter:
    router = APIRouter()
    state = store.state
    locks: dict[str, asyncio.Lock] = {}  # one upload at a time per container

    def authorized(request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        tokens = {getattr(config, "token", "")} | set(state.ns("graph_tokens").get("issued", []))
        return scheme.lower() in ("oauth", "bearer") and bool(token) and token in tokens

    async def status(container_id: str, request: Request) -> Response:
        if not authorized(request):
            return rupload_error(401, "AuthError", "Invalid OAuth access token.", retriable=False)
        c = store.containers().get(container_id)
        if c is None:
            return rupload_error(404, "NotFoundError", "Unknown upload session.", retriable=False)
        return JSONResponse({"id": container_id, "offset": store.received(c)})

    async def upload(container_id: str, request: Request) -> Response:
        await apply_latency(state, "instagram", "rupload")
        if not authorized(request):
            return rupload_error(401, "AuthError", "Invalid OAuth access token.", retriable=False)
        c = store.containers().get(container_id)
        if c is None or c["upload_type"] != "resumable":
            return rupload_error(400, "ProcessingFailedError", "No resumable upload session for this id.",
                                 retriable=False)
        rule = state.faults.pick("instagram", "rupload", kinds=REQUEST_FAULTS)
        kind = rule.kind if rule else None
        if kind == "transient":
            return rupload_error(503, "ServiceUnavailableError", "Please retry.", retriable=True)
        if kind in ("rate_limit", "quota"):
            return rupload_error(429, "RateLimitError", "Too many upload requests.", retriable=True)
        if kind == "token_expired":
            return rupload_error(401, "AuthError", "Session has expired.", retriable=False)
        offset, file_size = _int_header(request, "offset"), _int_header(request, "file_size")
        if offset is None or not file_size:
            return rupload_error(400, "ProcessingFailedError", "The offset and file_size headers are "
                                 "required.", retriable=False)
        async with locks.setdefault(container_id, asyncio.Lock()):
            if store.status(c) in ("EXPIRED", "PUBLISHED", "ERROR") or c["ready_at"] is not None:
                return rupload_error(400, "ProcessingFailedError", "This container takes no more bytes.",
                                     retriable=False)
            received = store.received(c)
            if received and file_size != c["file_size"]:
                return rupload_error(400, "ProcessingFailedError", "file_size differs from the first "
                                     "request.", retriable=False)
            if offset != received:
                return rupload_error(412, "OffsetInvalidError", "Request starting offset is invalid",
                                     retriable=True, offset=received)
            return await _receive(c, request, offset, file_size, kind)

    async def _receive(c: dict[str, Any], request: Request, offset: int, file_size: int,
                       kind: str | None) -> Response:
        key = store.upload_key(c)
        sink = state.uploads.setdefault(key, MediaSink())
        c["file_size"] = file_size
        c["upload_offsets"].append(offset)
        remaining = file_size - offset
        # drop_connection: take about half of what is left, then break the connection mid-upload.
        limit = remaining // 2 if kind == "drop_connection" else remaining
        with contextlib.suppress(ClientDisconnect):  # the client went away: keep what arrived, it resumes
            await stream_into(request, sink, limit=limit)
        c["received"] = sink.size
        if kind == "drop_connection":
            if sink.size == file_size:  # the body came in one piece, so the cut fell after the last byte
                c["sha256"] = sink.sha256
                c["ready_at"] = store.now()
                state.uploads.pop(key, None)
            state.save()
            return Dropped()
        if sink.size > file_size:
            c["error"] = "Error: 2207053: The upload sent more bytes than file_size."
            state.uploads.pop(key, None)
            state.save()
            return rupload_error(400, "ProcessingFailedError", "More bytes than file_size.", retriable=False)
        if sink.size == file_size:
            c["sha256"] = sink.sha256
            c["ready_at"] = store.now()
            state.uploads.pop(key, None)
        state.save()
        if kind == "ambiguous":
            return Dropped()
        if sink.size < file_size:
            # Sandbox choice: a request body that ends early is kept, and the answer says how far it got.
            return JSONResponse({"success": True, "message": "Partial upload received.", "offset": sink.size})
        return JSONResponse({"success": True, "message": "Upload successful."})

    for path in ("/ig-api-upload/{container_id}", "/ig-api-upload/{version}/{container_id}"):
        router.add_api_route(path, upload, methods=["POST"], response_model=None)
        router.add_api_route(path, status, methods=["GET"], response_model=None)
    return router
