"""One TikTok publish: init once, upload in chunks, poll, all resumable from the intent log.

Intent state saved under (campaign, "tiktok"):
  publish_id, upload_url, video_size, chunk_size, total_chunk_count   right after init answers
  uploaded                                                            after every chunk TikTok accepted
  post_id, url                                                        when the post is public
  ambiguous_init_at, caption                                          when init's answer was lost
  failed_publish_ids                                                  publishes TikTok FAILED (kept for audit)
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from models import PlatformPlan
from platforms.base import IntentLog, PublishedPost
from platforms.errors import (
    AmbiguousWriteError,
    PermanentError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
)
from platforms.files import aiter_range, file_size
from platforms.tiktok_wire import (
    CREATOR_INFO,
    PLATFORM,
    VIDEO_INIT,
    VIDEO_LIST,
    ChunkPlan,
    caption_for,
    connection_error,
    next_utc_midnight,
    translate,
    utcnow,
)

if TYPE_CHECKING:
    from platforms.tiktok import TikTokClient

# fail_reason values after which a NEW publish may succeed; safe because the old one is FAILED for good.
RETRYABLE_FAILURES = {"internal", "video_pull_failed"}
MIME = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm"}
CLOCK_SKEW_S = 300.0  # how far TikTok's clock may be from ours when matching create_time after a lost init
RECONCILE_PAGES = 5
MAX_RESYNCS = 2


class PublishFlow:
    def __init__(self, client: TikTokClient, plan: PlatformPlan, video_path: str, intents: IntentLog) -> None:
        self.c = client
        self.plan = plan
        self.path = video_path
        self.intents = intents
        self.state: dict[str, Any] = intents.load(plan.campaign_id, PLATFORM)

    def save(self, **changes: Any) -> None:
        self.state.update(changes)
        self.intents.save(self.plan.campaign_id, PLATFORM, self.state)

    async def run(self) -> PublishedPost:
        if self.state.get("post_id"):
            return PublishedPost(self.state["post_id"], self.state.get("url"))
        size = file_size(self.path)
        if self.state.get("publish_id"):
            if self.state.get("video_size") != size:
                raise PermanentError(PLATFORM, f"the video file is {size} bytes now; publish "
                                               f"{self.state['publish_id']} was started for another size")
            return await self._resume(size)
        if self.state.get("ambiguous_init_at") is not None:
            # An earlier init may have created a publish whose answer we never got. TikTok has no lookup of
            # unpublished posts by caption, so we cannot ask after it directly. What we can do:
            #  1. look for a public post with our caption created since that attempt (/v2/video/list/) and
            #     adopt it if it is there;
            #  2. otherwise init again. That cannot double-post: a FILE_UPLOAD publish only goes out once all
            #     its bytes arrive at its upload_url, and the lost answer was the only place that URL was, so
            #     the orphan never receives a byte and expires on TikTok's side.
            try:
                found = await self._reconcile()
            except PermanentError:  # e.g. no video.list scope: step 2's reasoning alone keeps us safe
                found = None
            if found is not None:
                return self._done(found)
            self.state.pop("ambiguous_init_at", None)
            self.save()
        return await self._fresh(size)

    # the three ways in ---------------------------------------------------------------------------
    async def _fresh(self, size: int) -> PublishedPost:
        self._check_daily_cap()
        chunks = ChunkPlan.for_file(size, self.c.chunk_size)
        creator = await self.c.call("creator_info", CREATOR_INFO)
        options = creator.get("privacy_level_options") or []
        privacy = next((p for p in ("PUBLIC_TO_EVERYONE", "SELF_ONLY") if p in options), None)
        if privacy is None:
            raise PermanentError(PLATFORM, f"the creator allows neither public nor private posts ({options})")
        copy = self.plan.copy_
        caption = caption_for(copy.text, copy.hashtags)
        body = {"post_info": {"title": caption, "privacy_level": privacy, "disable_duet": False,
                              "disable_comment": False, "disable_stitch": False,
                              "video_cover_timestamp_ms": 1000},
                "source_info": {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunks.chunk,
                                "total_chunk_count": chunks.count}}
        attempt_at = self.c.clock()
        try:
            data = await self.c.call("video.init", VIDEO_INIT, json=body, idempotent=False)
        except AmbiguousWriteError:
            self.save(ambiguous_init_at=attempt_at, caption=caption)
            raise
        except QuotaExhaustedError as exc:
            self._block_daily(exc.until)
            raise
        if not data.get("publish_id") or not data.get("upload_url"):
            raise PermanentError(PLATFORM, "video.init answered without a publish_id and upload_url")
        self.save(publish_id=data["publish_id"], upload_url=data["upload_url"], video_size=size,
                  chunk_size=chunks.chunk, total_chunk_count=chunks.count, uploaded=0, caption=caption,
                  username=creator.get("creator_username"), init_at=attempt_at)
        self._count_post()
        await self._upload(0)
        return await self._poll()

    async def _resume(self, size: int) -> PublishedPost:
        """A saved publish_id: never init again; ask TikTok where it stands and carry on from there."""
        status = await self.c.status(self.state["publish_id"])
        post_id = self._judge(status)
        if post_id is not None:
            return self._done(post_id)
        if status.get("status") == "PROCESSING_UPLOAD":
            offset = status.get("uploaded_bytes")
            offset = offset if isinstance(offset, int) else int(self.state.get("uploaded", 0))
            if offset < size:
                await self._upload(offset)
        return await self._poll()

    async def _reconcile(self) -> str | None:
        caption = self.state.get("caption")
        since = float(self.state["ambiguous_init_at"]) - CLOCK_SKEW_S
        cursor: int | None = None
        for _ in range(RECONCILE_PAGES):
            body: dict[str, Any] = {"max_count": 20}
            if cursor is not None:
                body["cursor"] = cursor
            data = await self.c.call("video.list", VIDEO_LIST, json=body,
                                     params={"fields": "id,title,video_description,create_time"})
            for video in data.get("videos", []):
                if float(video.get("create_time") or 0) < since:
                    return None  # newest first: everything after this is older than our attempt
                if caption in (video.get("video_description"), video.get("title")):
                    return str(video["id"])
            if not data.get("has_more"):
                return None
            cursor = data.get("cursor")
        return None

    # upload and poll ---------------------------------------------------------------------------------
    async def _upload(self, offset: int) -> None:
        s = self.state
        chunks = ChunkPlan(s["video_size"], s["chunk_size"], s["total_chunk_count"])
        index, resyncs = chunks.index_at(offset), 0
        while index < chunks.count:
            first, last = chunks.bounds(index)
            resp = await self._put(first, last)
            if resp.status_code in (200, 201, 206):
                self.save(uploaded=last + 1)
                index += 1
                continue
            # Refused: TikTok may have failed the publish (the status says so) or hold a different offset.
            status = await self.c.status(self.state["publish_id"])
            self._judge(status)
            held = status.get("uploaded_bytes")
            if resp.status_code == 416 and isinstance(held, int) and resyncs < MAX_RESYNCS:
                resyncs += 1
                index = chunks.index_at(held)
                continue
            translate(resp, "upload.chunk", self.c.clock)
            raise TransientError(PLATFORM, f"upload.chunk: unexpected HTTP {resp.status_code}")

    async def _put(self, first: int, last: int) -> httpx.Response:
        length = last - first + 1
        headers = {"Content-Type": MIME.get(Path(self.path).suffix.lower(), "video/mp4"),
                   "Content-Length": str(length),
                   "Content-Range": f"bytes {first}-{last}/{self.state['video_size']}"}
        try:
            # The upload URL carries its own token: no Authorization header goes to the upload host.
            body = aiter_range(self.path, first, length)
            return await self.c.http.put(self.state["upload_url"], content=body, headers=headers)
        except httpx.TransportError as exc:
            raise connection_error("upload.chunk", exc, idempotent=True) from None  # same range is safe again

    async def _poll(self) -> PublishedPost:
        interval, timeout = self.c.poll_interval_s, self.c.poll_timeout_s
        deadline = time.monotonic() + timeout
        pid = self.state["publish_id"]
        while True:
            status = await self._status_before(deadline)
            post_id = self._judge(status)
            if post_id is not None:
                return self._done(post_id)
            held = status.get("uploaded_bytes")
            if status.get("status") == "PROCESSING_UPLOAD" and isinstance(held, int) \
                    and held < self.state["video_size"]:
                await self._upload(held)  # TikTok lacks bytes we thought it had
            if time.monotonic() + interval > deadline:
                raise TransientError(PLATFORM, f"publish {pid} is still {status.get('status')} after "
                                               f"{timeout:g}s; a retry resumes polling it",
                                     retry_after=max(interval, 5.0))
            await asyncio.sleep(interval)

    async def _status_before(self, deadline: float) -> dict[str, Any]:
        """status/fetch, waiting out the 30/min window while the poll deadline allows."""
        while True:
            wait = self.c.windows.wait_time("status.fetch")
            if wait <= 0:
                try:
                    return await self.c.status(self.state["publish_id"])
                except RateLimitedError as exc:
                    wait = max(0.0, (exc.until - datetime.now(UTC)).total_seconds())
                    if time.monotonic() + wait > deadline:
                        raise
            elif time.monotonic() + wait > deadline:
                raise TransientError(PLATFORM, f"publish {self.state['publish_id']} is still processing and "
                                               "the status window is used up; a retry resumes polling it",
                                     retry_after=wait)
            await asyncio.sleep(wait)

    # outcomes ------------------------------------------------------------------------------------------
    def _judge(self, status: dict[str, Any]) -> str | None:
        """The public post id if the publish is done, None while it is under way; raises if it FAILED."""
        state = status.get("status")
        if state == "PUBLISH_COMPLETE":
            ids = status.get("publicaly_available_post_id") or []  # sic: TikTok's spelling
            return str(ids[0]) if ids else None
        if state != "FAILED":
            return None
        pid, reason = self.state["publish_id"], str(status.get("fail_reason") or "unknown")
        if reason in RETRYABLE_FAILURES or reason == "spam_risk_too_many_posts":
            # The old publish is FAILED for good, so forgetting it makes the next attempt's init safe.
            self.state = {"failed_publish_ids": [*self.state.get("failed_publish_ids", []), pid]}
            self.save()
        if reason == "spam_risk_too_many_posts":
            until = next_utc_midnight(utcnow(self.c.clock))
            self._block_daily(until)
            raise QuotaExhaustedError(PLATFORM, f"publish {pid} FAILED: daily post cap reached", until=until,
                                      code=reason)
        if reason in RETRYABLE_FAILURES:
            raise TransientError(PLATFORM, f"publish {pid} FAILED ({reason}); a retry starts a new publish",
                                 code=reason)
        raise PermanentError(PLATFORM, f"publish {pid} FAILED: {reason}", code=reason)

    def _done(self, post_id: str) -> PublishedPost:
        username = self.state.get("username")
        url = f"https://www.tiktok.com/@{username}/video/{post_id}" if username else None
        self.save(post_id=post_id, url=url)
        return PublishedPost(post_id, url)

    # the creator's daily post cap ------------------------------------------------------------------
    def _check_daily_cap(self) -> None:
        data, now = self.c.daily_posts(), utcnow(self.c.clock)
        blocked = data.get("blocked_until")
        if blocked is not None and now.timestamp() < blocked:
            raise QuotaExhaustedError(PLATFORM, "TikTok refused more posts today (spam_risk_too_many_posts)",
                                      until=datetime.fromtimestamp(blocked, UTC),
                                      code="spam_risk_too_many_posts")
        if data["count"] >= self.c.daily_post_cap:
            raise QuotaExhaustedError(PLATFORM, f"{data['count']} posts today reach the daily cap of "
                                                f"{self.c.daily_post_cap}", until=next_utc_midnight(now),
                                      code="daily_post_cap")

    def _count_post(self) -> None:
        data = self.c.daily_posts()
        self.c.put_daily_posts({**data, "count": data["count"] + 1})

    def _block_daily(self, until: datetime) -> None:
        self.c.put_daily_posts({**self.c.daily_posts(), "blocked_until": until.timestamp()})

