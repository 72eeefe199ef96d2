"""TikTok fake: publish jobs (the status machine) and the chunked upload they wait for.

A FILE_UPLOAD publish stays PROCESSING_UPLOAD until every byte has arrived, then for `processing_s`
more sim seconds, then turns PUBLISH_COMPLETE; `publicaly_available_post_id` (TikTok's spelling) appears
`moderation_s` later. The job advances lazily, whenever someone looks at it, and asks the fault switches
("stuck", "failed" on endpoint "status.fetch") at the moment it would finish.

Upload PUTs go to the upload_url returned by init (served here under /tiktok/upload/). Chunks must come in
order; repeating a chunk already received is harmless; a chunk is committed only when all its bytes
arrived (a dropped connection leaves the upload where the last whole chunk left it). Fault endpoint names:
"upload.chunk" for every chunk and "upload.chunk.<index>" (0-based) to hit one chunk only.

Whoever looks at a due job first (status/fetch for it, or a video/list of its creator) meets the fault.
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from sandbox.state import MediaSink, SandboxState
from sandbox.tiktok_rules import Dropped, TikTokConfig, chunk_bounds, error, render_fault
from sandbox.wire import REQUEST_FAULTS, apply_latency, stream_into

CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
FIRST_POST_ID = 7_300_000_000_000_000_000  # TikTok video ids are 19-digit numbers


class ForkableSink(MediaSink):
    """A MediaSink whose running hash can be copied, so a chunk is hashed on a copy and kept only if whole."""

    def fork(self) -> ForkableSink:
        twin = ForkableSink()
        twin._hash = self._hash.copy()
        twin.size = self.size
        return twin


class Jobs:
    def __init__(self, state: SandboxState, cfg: TikTokConfig) -> None:
        self.state = state
        self.cfg = cfg

    @property
    def publishes(self) -> dict[str, dict[str, Any]]:
        return self.state.ns("tiktok").setdefault("publishes", {})  # type: ignore[no-any-return]

    def by_upload_id(self, upload_id: str) -> dict[str, Any] | None:
        pid = self.state.ns("tiktok").setdefault("upload_ids", {}).get(upload_id)
        return self.publishes.get(pid) if pid else None

    def add(self, rec: dict[str, Any]) -> None:
        self.publishes[rec["publish_id"]] = rec
        if rec.get("upload_id"):
            self.state.ns("tiktok").setdefault("upload_ids", {})[rec["upload_id"]] = rec["publish_id"]

    # the status machine ----------------------------------------------------------------------------
    def advance(self, rec: dict[str, Any]) -> None:
        if rec["status"] not in ("PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD"):
            return
        ready = rec.get("ready_at")
        now = self.state.clock.time()
        if ready is None or now < ready + self.cfg.processing_s:
            return
        rule = self.state.faults.pick("tiktok", "status.fetch", kinds=("stuck", "failed"))
        with self.state.lock:
            if rule is not None and rule.kind == "stuck":
                rec["held_at"] = now  # it finishes no earlier than the last moment it was seen stuck
                return
            # Finished when processing ended, even if nobody looked until later.
            done = max(ready + self.cfg.processing_s, rec.get("held_at") or 0.0)
            if rule is not None:  # "failed": TikTok's catch-all processing failure
                rec.update(status="FAILED", fail_reason="internal", finished_at=done)
            elif rec["kind"] == "inbox":
                rec.update(status="SEND_TO_USER_INBOX", finished_at=done)
            else:
                n = int(self.state.new_id())
                rec.update(status="PUBLISH_COMPLETE", finished_at=done, post_id=str(FIRST_POST_ID + n))
            self.state.save()

    def post_id_visible(self, rec: dict[str, Any]) -> bool:
        if rec["status"] != "PUBLISH_COMPLETE":
            return False
        return self.state.clock.time() >= float(rec["finished_at"]) + self.cfg.moderation_s

    def status_view(self, rec: dict[str, Any]) -> dict[str, Any]:
        self.advance(rec)
        view: dict[str, Any] = {"status": rec["status"]}
        if rec["source"] == "FILE_UPLOAD":
            view["uploaded_bytes"] = rec["received"]
        else:
            done = rec["status"] != "PROCESSING_DOWNLOAD"
            view["downloaded_bytes"] = (rec.get("video_size") or 0) if done else 0
        if rec["status"] == "FAILED":
            view["fail_reason"] = rec["fail_reason"]
        if rec["status"] == "PUBLISH_COMPLETE":
            # A JSON number, as TikTok sends it; only filled once moderation let the post out.
            view["publicaly_available_post_id"] = [int(rec["post_id"])] if self.post_id_visible(rec) else []
        return view

    def posts(self, open_id: str | None = None) -> list[dict[str, Any]]:
        """Direct posts that exist (PUBLISH_COMPLETE), oldest first; a read, advancing nothing."""
        with self.state.lock:  # admin reads come from other threads than the server's
            found = [r for r in self.publishes.values()
                     if r["kind"] == "direct" and r["status"] == "PUBLISH_COMPLETE"
                     and (open_id is None or r["open_id"] == open_id)]
        return sorted(found, key=lambda r: r["finished_at"])

    # uploads -----------------------------------------------------------------------------------------
    async def upload_chunk(self, request: Request) -> Response:
        now = self.state.clock.now()
        rec = self.by_upload_id(request.query_params.get("upload_id", ""))
        if rec is None or rec.get("upload_token") != request.query_params.get("upload_token"):
            await _drain(request)
            return error("invalid_params", "upload_id or upload_token is not valid.", 404, now)
        problem, first, last = _check_chunk(request, rec)
        if problem is not None:
            await _drain(request)
            return error("invalid_params", problem, 400, now)
        index = min(first // rec["chunk_size"], rec["total_chunk_count"] - 1)
        await apply_latency(self.state, "tiktok", "upload.chunk")
        rule = (self.state.faults.pick("tiktok", "upload.chunk", kinds=REQUEST_FAULTS)
                or self.state.faults.pick("tiktok", f"upload.chunk.{index}", kinds=REQUEST_FAULTS))
        if rule is not None and rule.kind == "drop_connection":
            # Read about half the chunk, then break the connection: nothing of this chunk is kept.
            with contextlib.suppress(ClientDisconnect):
                await stream_into(request, MediaSink(), limit=(last - first + 1) // 2)
            return Dropped()
        if rule is not None and rule.kind != "ambiguous":
            await _drain(request)
            return render_fault(rule, now)
        answer = await self._receive(request, rec, first, last)
        return Dropped() if rule is not None else answer  # "ambiguous": committed, answer lost

    async def _receive(self, request: Request, rec: dict[str, Any], first: int, last: int) -> Response:
        now = self.state.clock.now()
        upload_id = rec["upload_id"]
        if last < rec["received"]:  # a repeat of a chunk we already hold: safe, answer as before
            await _drain(request)
            return Response(status_code=201 if rec["received"] == rec["video_size"] else 206)
        if first != rec["received"]:
            await _drain(request)
            return error("invalid_params", "chunks must be sent in order; expected the chunk starting at "
                                           f"byte {rec['received']}", 416, now)
        sink = self.state.uploads.get(upload_id)
        if sink is None and rec["received"] > 0:  # in-flight hashes do not survive a sandbox restart
            await _drain(request)
            with self.state.lock:
                rec.update(status="FAILED", fail_reason="internal", finished_at=self.state.clock.time())
                self.state.save()
            return error("internal_error", "The upload session was lost; start a new publish.", 500, now)
        attempt = sink.fork() if isinstance(sink, ForkableSink) else ForkableSink()
        try:
            got = await stream_into(request, attempt)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; the chunk is not kept
        if got != last - first + 1:
            return error("invalid_params", "the body length does not match Content-Range.", 400, now)
        with self.state.lock:
            if rec["received"] != first:  # a concurrent copy of this chunk was committed first
                return Response(status_code=201 if rec["received"] == rec["video_size"] else 206)
            rec["received"] = last + 1
            if rec["received"] == rec["video_size"]:
                rec.update(sha256=attempt.sha256, ready_at=self.state.clock.time())
                self.state.uploads.pop(upload_id, None)
            else:
                self.state.uploads[upload_id] = attempt
            self.state.save()
        return Response(status_code=201 if rec["received"] == rec["video_size"] else 206)


def _check_chunk(request: Request, rec: dict[str, Any]) -> tuple[str | None, int, int]:
    if rec["source"] != "FILE_UPLOAD" or rec["status"] == "FAILED":
        return "this publish does not accept uploads.", 0, 0
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in VIDEO_TYPES:
        return f"Content-Type must be one of {', '.join(VIDEO_TYPES)}.", 0, 0
    match = CONTENT_RANGE.match(request.headers.get("content-range", ""))
    if match is None:
        return "Content-Range must read bytes {first}-{last}/{total}.", 0, 0
    first, last, total = (int(g) for g in match.groups())
    if total != rec["video_size"]:
        return f"Content-Range total must be video_size {rec['video_size']}.", first, last
    size, chunk, count = rec["video_size"], rec["chunk_size"], rec["total_chunk_count"]
    index = min(first // chunk, count - 1)
    if (first, last) != chunk_bounds(index, size, chunk, count):
        return "Content-Range does not match the chunk layout declared at init.", first, last
    if request.headers.get("content-length") != str(last - first + 1):
        return "Content-Length must equal the size of the chunk in Content-Range.", first, last
    return None, first, last


async def _drain(request: Request) -> None:
    """Read and discard the body, so the client gets our answer rather than a broken pipe."""
    try:
        async for _ in request.stream():
            pass
    except ClientDisconnect:
        pass


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
