"""X media upload v2 (api.x.com/2/media/upload/...): initialize, append segments, finalize, STATUS polling.

A segment counts only once it has arrived whole, so a connection dropped mid-segment leaves the upload
exactly as it was, and re-sending the last accepted segment (its response was lost) is a no-op.
Processing runs on the simulated clock: pending -> in_progress -> succeeded, unless a "stuck" or "failed"
fault on "media.status" (or "media.finalize") was drawn for this media when it was finalized.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.state import MediaSink, SandboxState
from sandbox.wire import REQUEST_FAULTS, DroppedResponse, apply_latency
from sandbox.x_multipart import FormError, MultipartReader, boundary_of
from sandbox.x_rules import PLATFORM, guarded, invalid_request, limits, next_id, render_fault

_KEY_PREFIX = {"video": "13_", "image": "3_", "gif": "16_"}


class SegmentSink(MediaSink):
    """A MediaSink that takes bytes tentatively per segment: they count only when the segment is committed."""

    def begin(self) -> Segment:
        return Segment(self._hash.copy(), self.size)

    def commit(self, segment: Segment) -> None:
        self._hash, self.size = segment.whole, segment.total


class Segment:
    def __init__(self, whole: Any, size_before: int) -> None:
        self.whole = whole  # hash of everything so far plus this segment
        self.own = hashlib.sha256()  # this segment alone, to check that a re-send is the same bytes
        self.total = size_before
        self.size = 0

    def write(self, piece: bytes) -> None:
        self.whole.update(piece)
        self.own.update(piece)
        self.size += len(piece)
        self.total += len(piece)


def _kind(media_type: str, category: str) -> str:
    if "gif" in category or media_type == "image/gif":
        return "gif"
    return "video" if "video" in category or media_type.startswith("video/") else "image"


def processing_info(state: SandboxState, media: dict[str, Any], processing_s: float) -> dict[str, Any] | None:
    """Where processing stands now; None for media that needs none (images)."""
    if media.get("kind") == "image":
        return None
    elapsed = state.clock.time() - float(media["finalized_at"])
    fate = media.get("fate")
    if fate == "failed" and elapsed >= processing_s:
        return {"state": "failed", "progress_percent": 100,
                "error": {"code": 1, "name": "InvalidMedia",
                          "message": "Your media file could not be processed."}}
    if elapsed < processing_s * 0.2:
        return {"state": "pending", "check_after_secs": 1}
    if elapsed < processing_s or fate == "stuck":
        pct = 99 if fate == "stuck" else min(99, int(100 * elapsed / max(processing_s, 1e-9)))
        return {"state": "in_progress", "check_after_secs": 1, "progress_percent": pct}
    return {"state": "succeeded", "progress_percent": 100}


def live_media(state: SandboxState, media_id: str, user: str) -> dict[str, Any] | None:
    """The user's media record if it exists and has not expired."""
    media = state.ns(PLATFORM).get("media", {}).get(media_id)
    if media is None or media["owner"] != user or media["expires_at"] <= state.clock.time():
        return None
    return media  # type: ignore[no-any-return]


def routes(state: SandboxState, config: Any) -> list[Route]:
    def lim() -> dict[str, Any]:
        return limits(state, config.limits.get(PLATFORM, {}))

    def unknown(media_id: str) -> JSONResponse:
        return invalid_request("media_id", [media_id], f"media_id {media_id} is not valid or has expired.")

    def data(media: dict[str, Any], **extra: Any) -> dict[str, Any]:
        left = max(0, int(media["expires_at"] - state.clock.time()))
        return {"id": media["id"], "media_key": media["media_key"], "expires_after_secs": left, **extra}

    async def initialize(request: Request) -> Any:
        async def call(user: str) -> Response:
            try:
                body = json.loads(await request.body() or b"{}")
                media_type, total = str(body["media_type"]), int(body["total_bytes"])
            except (ValueError, KeyError, TypeError):
                return invalid_request("total_bytes", [], "media_type and total_bytes are required.")
            category = str(body.get("media_category") or ("tweet_video" if media_type.startswith("video/")
                                                           else "tweet_image"))
            cap = lim()["max_total_bytes"].get(category)
            if cap is None:
                return invalid_request("media_category", [category], f"Unknown media_category {category}.")
            if not 0 < total <= int(cap):
                return invalid_request("total_bytes", [str(total)],
                                       f"total_bytes must be 1..{cap} for {category}.")
            media_id, now = next_id(state), state.clock.time()
            kind = _kind(media_type, category)
            media = {"id": media_id, "media_key": _KEY_PREFIX[kind] + media_id, "owner": user, "kind": kind,
                     "media_type": media_type, "category": category, "total_bytes": total, "created_at": now,
                     "expires_at": now + float(lim()["media_expires_s"]), "next_segment": 0,
                     "last_segment_sha": None, "state": "uploading", "size": None, "sha256": None}
            state.ns(PLATFORM).setdefault("media", {})[media_id] = media
            state.uploads[media_id] = SegmentSink()
            state.save()
            return JSONResponse({"data": data(media)})
        return await guarded(state, config, request, "media.initialize", call)

    async def append(request: Request) -> Any:
        media_id = request.path_params["media_id"]

        async def call(user: str) -> Any:
            await apply_latency(state, PLATFORM, "media.append")
            rule = state.faults.pick(PLATFORM, "media.append", kinds=REQUEST_FAULTS)
            if rule is not None and rule.kind == "drop_connection":
                return await _drop_midway(request)
            if rule is not None and rule.kind != "ambiguous":
                return render_fault(rule, float(lim()["windows"]["media.append"][1]), state.clock.time())
            media, sink = live_media(state, media_id, user), state.uploads.get(media_id)
            if media is None or media["state"] != "uploading" or not isinstance(sink, SegmentSink):
                return unknown(media_id)
            answer = await _receive_segment(request, media, sink, int(lim()["max_segment_bytes"]))
            if rule is not None:  # ambiguous: the segment is kept, the answer is lost
                state.save()
                return DroppedResponse()
            return answer
        return await guarded(state, config, request, "media.append", call, faults=False)

    async def _receive_segment(request: Request, media: dict[str, Any], sink: SegmentSink,
                               cap: int) -> Response:
        try:
            reader = MultipartReader(boundary_of(request.headers.get("content-type", "")))
        except FormError as exc:
            return invalid_request("media", [], str(exc))
        fields: dict[str, str] = {}
        current: str | None = None
        segment = sink.begin()
        try:
            async for piece in request.stream():
                for kind, value in reader.feed(piece):
                    if kind == "part":
                        current = value[0]
                        fields.setdefault(current, "")
                    elif kind == "data" and current == "media":
                        segment.write(value)
                        if segment.size > cap:
                            return invalid_request("media", [], f"A segment may hold at most {cap} bytes.")
                    elif kind == "data" and current is not None and len(fields[current]) < 64:
                        fields[current] += value.decode("utf-8", "replace")
            reader.close()
            index = int(fields["segment_index"])
        except (FormError, KeyError, ValueError) as exc:
            return invalid_request("segment_index", [], "A media part and an integer segment_index are "
                                                        f"required ({exc.__class__.__name__}).")
        if "media" not in fields:
            return invalid_request("media", [], "The media part is missing.")
        expected = int(media["next_segment"])
        resend = index == expected - 1 and segment.own.hexdigest() == media["last_segment_sha"]
        if not resend:
            if index != expected or not 0 <= index <= 999:
                return invalid_request("segment_index", [str(index)],
                                       f"Segments must arrive in order; expected segment_index {expected}.")
            if segment.total > int(media["total_bytes"]):
                return invalid_request("media", [], "More bytes than total_bytes given at initialize.")
            sink.commit(segment)
            media.update(next_segment=expected + 1, last_segment_sha=segment.own.hexdigest())
            state.save()
        return JSONResponse({"data": {"expires_at": int(media["expires_at"])}})

    async def finalize(request: Request) -> Any:
        media_id = request.path_params["media_id"]

        async def call(user: str) -> Response:
            media = live_media(state, media_id, user)
            if media is None:
                return unknown(media_id)
            if media["state"] == "uploading":  # a repeated finalize just reports again
                sink = state.uploads.get(media_id)
                if sink is None or sink.size != media["total_bytes"]:
                    got = 0 if sink is None else sink.size
                    return invalid_request("media_id", [media_id],
                                           f"Segments add up to {got} bytes, not the "
                                           f"{media['total_bytes']} given at initialize.")
                fault = (state.faults.pick(PLATFORM, "media.status", kinds=("stuck", "failed"))
                         or state.faults.pick(PLATFORM, "media.finalize", kinds=("stuck", "failed")))
                media.update(state="finalized", size=sink.size, sha256=sink.sha256,
                             finalized_at=state.clock.time(), fate=fault.kind if fault else None)
                state.uploads.pop(media_id, None)
                state.save()
            info = processing_info(state, media, float(lim()["processing_s"]))
            extra = {"size": media["size"], **({"processing_info": info} if info else {})}
            return JSONResponse({"data": data(media, **extra)})
        return await guarded(state, config, request, "media.finalize", call)

    async def status(request: Request) -> Any:
        params = request.query_params

        async def call(user: str) -> Response:
            if params.get("command", "STATUS") != "STATUS":
                return invalid_request("command", [params.get("command", "")],
                                       "Only command=STATUS is a GET.")
            media_id = params.get("media_id", "")
            media = live_media(state, media_id, user)
            if media is None or media["state"] == "uploading":
                return unknown(media_id)
            info = processing_info(state, media, float(lim()["processing_s"]))
            return JSONResponse({"data": data(media, **({"processing_info": info} if info else {}))})
        return await guarded(state, config, request, "media.status", call)

    return [
        Route("/2/media/upload/initialize", initialize, methods=["POST"]),
        Route("/2/media/upload/{media_id}/append", append, methods=["POST"]),
        Route("/2/media/upload/{media_id}/finalize", finalize, methods=["POST"]),
        Route("/2/media/upload", status, methods=["GET"]),
    ]


async def _drop_midway(request: Request) -> DroppedResponse:
    """Read about half of the body, then break the connection: a network drop in the middle of a segment."""
    half = int(request.headers.get("content-length") or 0) // 2
    seen = 0
    async for piece in request.stream():
        seen += len(piece)
        if seen >= half:
            break
    return DroppedResponse()
