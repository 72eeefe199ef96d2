"""videos.insert over Google's resumable upload protocol (reference/platform_apis.md §2.2).

POST .../upload/youtube/v3/videos?uploadType=resumable  -> 200 + Location (the session URI)
PUT  <session>  Content-Range: bytes a-b/total          -> 308 + Range: bytes=0-N, or 200 + the video
PUT  <session>  Content-Range: bytes */total, no body   -> the same answer, without sending anything

Bytes stream into a MediaSink (size + SHA-256) and are never held. The session's offset is persisted;
its sink is not, so after a restart the session answers 404 and the client starts again, as it must
after an expired session. A session that already made its video keeps answering with that video.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect, Request

from sandbox.state import MediaSink, SandboxState
from sandbox.youtube_common import NS, authorize, google_error, limits, with_faults
from sandbox.youtube_quota import charge, count_upload
from sandbox.youtube_videos import ASSIGNABLE_CATEGORIES, create_video, parse_rfc3339, render, videos

QUANTUM = 256 * 1024  # Google's upload servers take non-final chunks in multiples of 256 KiB
_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")
PATHS = ("/upload/youtube/v3/videos", "/resumable/upload/youtube/v3/videos")


def _bad(reason: str, message: str, domain: str = "youtube.video") -> JSONResponse:
    return google_error(400, reason, message, domain=domain)


def validate_metadata(body: Any) -> dict[str, Any] | JSONResponse:
    """The video resource sent with the initiation, checked as videos.insert checks it."""
    if not isinstance(body, dict):
        return _bad("parseError", "Parse Error", domain="global")
    snippet, status = body.get("snippet") or {}, body.get("status") or {}
    title = str(snippet.get("title") or "")
    if not title.strip() or len(title) > 100 or "<" in title or ">" in title:
        return _bad("invalidTitle", "The request metadata specifies an invalid or empty video title.")
    description = str(snippet.get("description") or "")
    if len(description.encode()) > 5000 or "<" in description or ">" in description:
        return _bad("invalidDescription", "The request metadata specifies an invalid video description.")
    tags = [str(t) for t in snippet.get("tags") or []]
    if sum(len(t) + (2 if " " in t else 0) for t in tags) + max(0, len(tags) - 1) > 500:
        return _bad("invalidTags", "The request metadata specifies invalid video keywords.")
    category = str(snippet.get("categoryId") or "22")
    if category not in ASSIGNABLE_CATEGORIES:
        return _bad("invalidCategoryId", "The snippet.categoryId property specifies an invalid category ID.")
    privacy = status.get("privacyStatus") or "public"
    if privacy not in ("public", "unlisted", "private"):
        return _bad("invalidVideoMetadata", "The request metadata is invalid.")
    publish_at = None
    if status.get("publishAt") is not None:
        try:
            publish_at = parse_rfc3339(str(status["publishAt"]))
        except ValueError:
            publish_at = None
        if publish_at is None or privacy != "private":
            return _bad("invalidPublishAt", "The request metadata specifies an invalid scheduled publishing "
                        "time.")
    return {"title": title, "description": description, "tags": tags, "category_id": category,
            "privacy": privacy, "publish_at": publish_at,
            "made_for_kids": bool(status.get("selfDeclaredMadeForKids", False))}


def add_routes(app: FastAPI, prefix: str, state: SandboxState, static_token: str) -> None:
    def sessions() -> dict[str, dict[str, Any]]:
        return state.ns(NS).setdefault("sessions", {})  # type: ignore[no-any-return]

    def forget_abandoned() -> None:
        """Drop sessions that expired unfinished (finished ones stay: they answer later status queries)."""
        ttl, now = float(limits(state)["session_ttl_s"]), state.clock.time()
        for sid, session in list(sessions().items()):
            if session["video_id"] is None and now - session["created_at"] > ttl:
                state.uploads.pop(sid, None)
                del sessions()[sid]

    async def initiate(request: Request) -> Response:
        async def call() -> Response:
            caller = authorize(request, state, static_token)
            if isinstance(caller, JSONResponse):
                return caller
            q = request.query_params
            if q.get("uploadType") != "resumable":
                return _bad("badRequest", "The sandbox accepts uploadType=resumable only.", domain="global")
            if not q.get("part"):
                return _bad("required", "Required parameter: part", domain="global")
            over = charge(state, caller, "videos.insert")
            if over is not None:
                return over
            try:
                meta = validate_metadata(json.loads(await request.body() or b"{}"))
            except json.JSONDecodeError:
                meta = _bad("parseError", "Parse Error", domain="global")
            if isinstance(meta, JSONResponse):
                return meta
            ctype = request.headers.get("x-upload-content-type", "video/*")
            if not (ctype.startswith("video/") or ctype == "application/octet-stream"):
                return _bad("invalidContentType", f"Media type '{ctype}' is not supported.", domain="global")
            length = request.headers.get("x-upload-content-length")
            if length is not None and not length.isdigit():
                return _bad("badRequest", "Invalid X-Upload-Content-Length.", domain="global")
            capped = count_upload(state, caller)
            if capped is not None:
                return capped
            forget_abandoned()
            sid = "ADPyc" + state.new_id().rjust(12, "0")
            sessions()[sid] = {"owner": {"project": caller.project, "channel": caller.channel}, "meta": meta,
                             "parts": q["part"], "total": int(length) if length is not None else None,
                             "offset": 0, "chunks": 0, "created_at": state.clock.time(), "video_id": None}
            state.uploads[sid] = MediaSink()
            state.save()
            location = request.url.replace(query=f"uploadType=resumable&part={q['part']}&upload_id={sid}")
            return Response(status_code=200, headers={"Location": str(location), "X-GUploader-UploadID": sid})

        return await with_faults(state, ["videos.insert"], call)

    busy: dict[str, asyncio.Lock] = {}

    async def put(request: Request) -> Response:
        # One request per session at a time: a retry that overlaps a dying request waits for its offset.
        sid = request.query_params.get("upload_id", "")
        async with busy.setdefault(sid, asyncio.Lock()):
            try:
                return await _put(request, sid)
            finally:
                if sid not in state.uploads:
                    busy.pop(sid, None)

    async def _put(request: Request, sid: str) -> Response:
        session = sessions().get(sid)
        now = state.clock.time()
        if session is None or now - session["created_at"] > float(limits(state)["session_ttl_s"]):
            return google_error(404, "notFound", "The upload session does not exist or has expired.")
        if session["video_id"] is not None:  # complete: any PUT, status query or not, gets the video
            return _video_response(session)
        sink = state.uploads.get(sid)
        if sink is None:  # its bytes were lost in a restart; the client must start a new upload
            return google_error(404, "notFound", "The upload session does not exist or has expired.")
        m = _RANGE.match(request.headers.get("content-range", ""))
        if m is None:
            return _bad("badRequest", "Invalid or missing Content-Range header.", domain="global")
        first, last, total_s = m.groups()
        if total_s != "*":
            if session["total"] is None:
                session["total"] = int(total_s)
            elif int(total_s) != session["total"]:
                return _bad("badRequest", f"Content-Range total {total_s} differs from {session['total']}.",
                            domain="global")
        if first is None:
            async def status() -> Response:
                return _progress(session)

            return await with_faults(state, ["upload.status"], status)
        return await _chunk(request, sid, session, sink, int(first), int(last))

    async def _chunk(request: Request, sid: str, session: dict[str, Any], sink: MediaSink, first: int,
                     last: int) -> Response:
        total = session["total"]
        length = last - first + 1
        if length <= 0 or (total is not None and last >= total):
            return _bad("badRequest", f"Invalid Content-Range bytes {first}-{last}/{total}.", domain="global")
        if request.headers.get("content-length") != str(length):
            return _bad("badRequest", "Content-Length does not match Content-Range.", domain="global")
        if first > session["offset"]:
            return _bad("badRequest", f"Content-Range starts at {first} but only {session['offset']} bytes "
                        "have been received.", domain="global")
        final = total is not None and last + 1 == total
        if not final and length % QUANTUM:
            return _bad("badRequest", "Invalid request. The number of bytes uploaded is required to be a "
                        f"multiple of {QUANTUM}, except for the final request. The received request "
                        f"contained {length} bytes.", domain="global")
        session["chunks"] += 1
        names = ["upload.chunk", *(["upload.final"] if final else []), f"upload.chunk.{session['chunks']}"]

        async def receive() -> Response:
            skip = session["offset"] - first  # bytes of this chunk the session already has
            try:
                async for piece in request.stream():
                    if skip >= len(piece):
                        skip -= len(piece)
                        continue
                    piece, skip = piece[skip:], 0
                    sink.write(piece)
                    session["offset"] += len(piece)
            except ClientDisconnect:
                pass  # keep what arrived; the client learns the offset from the next status query
            if total is not None and session["offset"] == total:
                video = create_video(state, session["meta"], session["owner"], sink)
                session["video_id"] = video["id"]
                state.uploads.pop(sid, None)
                state.save()
                return _video_response(session)
            state.save()
            return _progress(session)

        return await with_faults(state, names, receive)

    def _progress(session: dict[str, Any]) -> Response:
        if session["video_id"] is not None:
            return _video_response(session)
        headers = {"Range": f"bytes=0-{session['offset'] - 1}"} if session["offset"] else {}
        return Response(status_code=308, headers=headers)

    def _video_response(session: dict[str, Any]) -> JSONResponse:
        video = videos(state)[session["video_id"]]
        parts = {p.strip() for p in session["parts"].split(",")} | {"id"}
        return JSONResponse(render(state, video, parts), status_code=200)

    for path in PATHS:  # plain Starlette routes: a fault's DroppedResponse must reach the socket as is
        app.add_route(prefix + path, initiate, methods=["POST"])
        app.add_route(prefix + path, put, methods=["PUT"])
