"""The YouTube client: google-api-python-client against the Data API v3 and Analytics v2.

Discovery documents come from the SDK's bundled copies with `rootUrl` set from settings, so the same
code talks to Google or to the sandbox. The library is synchronous; every call runs in a worker thread
with its own signed httplib2 transport (youtube_auth.BearerHttp). Errors become platforms.errors in
youtube_errors, once; the resumable upload and its intent log live in youtube_upload.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar

from googleapiclient.discovery import Resource, build_from_document
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError
from googleapiclient.http import build_http

from metacentric.settings import Settings
from models import Platform, PlatformPlan, PostMetrics
from platforms.base import IntentLog, PublishedPost
from platforms.errors import PermanentError, QuotaExhaustedError, TransientError
from platforms.tokens import TokenManager, TokenSet, TokenStore
from platforms.youtube_auth import BearerHttp, account_key, google_refresher
from platforms.youtube_errors import (
    PACIFIC,
    PLATFORM,
    TRANSPORT_ERRORS,
    LimitStore,
    QuotaBook,
    translate_http,
    translate_transport,
)
from platforms.youtube_metrics import metrics_from_report, metrics_from_statistics, report_request
from platforms.youtube_upload import QUANTUM, UploadJob

T = TypeVar("T")
DEFAULT_CHUNKSIZE = 8 * 1024 * 1024
MUSIC_CATEGORY = "10"
FINISHED_UPLOAD = {"processed", "failed", "rejected", "deleted"}


class YouTubeStore(TokenStore, LimitStore, Protocol):
    """What the client keeps in the store: its tokens and what it knows about quotas."""


def _service(name: str, version: str, root_url: str) -> Resource:
    doc = json.loads(get_static_doc(name, version) or "{}")
    if not doc:
        raise RuntimeError(f"googleapiclient has no bundled discovery document for {name} {version}")
    doc["rootUrl"] = root_url.rstrip("/") + "/"  # uploads too: they are built from rootUrl
    # Requests carry their own signed transport (BearerHttp); this one only satisfies the builder.
    return build_from_document(doc, http=build_http())


class YouTubeClient:
    platform = "youtube"

    def __init__(self, *, tokens: TokenManager, store: YouTubeStore, root_url: str, analytics_root_url: str,
                 chunksize: int = DEFAULT_CHUNKSIZE, clock: Callable[[], datetime] | None = None,
                 poll_interval_s: float = 3.0, poll_timeout_s: float = 600.0) -> None:
        if chunksize <= 0 or chunksize % QUANTUM:
            raise ValueError(f"chunksize must be a positive multiple of {QUANTUM} bytes (256 KiB)")
        self.tokens = tokens
        self.chunksize = chunksize
        self.clock = clock or (lambda: datetime.now(UTC))
        self.quota = QuotaBook(store, self.clock)
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s
        self._youtube = _service("youtube", "v3", root_url)
        self._analytics = _service("youtubeAnalytics", "v2", analytics_root_url)

    @classmethod
    def from_settings(cls, settings: Settings, store: YouTubeStore, *, chunksize: int = DEFAULT_CHUNKSIZE,
                      clock: Callable[[], datetime] | None = None) -> YouTubeClient:
        now = clock or (lambda: datetime.now(UTC))
        refresh_token = settings.youtube_refresh_token.get_secret_value()
        refresher = google_refresher(settings.google_token_uri, settings.youtube_client_id,
                                     settings.youtube_client_secret.get_secret_value(),
                                     lambda: now().timestamp())
        # No access token yet: expired from the start, so the first call refreshes.
        tokens = TokenManager(PLATFORM, account_key(refresh_token), store,
                              TokenSet("", refresh_token, expires_at=0.0, issued_at=0.0), refresher,
                              clock=lambda: now().timestamp())
        return cls(tokens=tokens, store=store, root_url=settings.youtube_root_url,
                   analytics_root_url=settings.youtube_analytics_root_url, chunksize=chunksize, clock=now,
                   poll_interval_s=settings.poll_interval_s, poll_timeout_s=settings.poll_timeout_s)

    # calls -----------------------------------------------------------------------------------------
    async def _call(self, bucket: str, op: Callable[[BearerHttp], T], *, check: bool = True) -> T:
        """Run `op` in a thread with a signed transport: refresh once after a 401, translate errors once.

        `bucket` names the quota the call draws on: a known-spent one refuses the call before any HTTP
        (unless `check` is False), and a quotaExceeded answer marks it spent.
        """
        if check:
            self.quota.check(bucket)
        token = await self.tokens.access_token()
        for attempt in (1, 2):
            http = BearerHttp(token)
            try:
                return await asyncio.to_thread(op, http)
            except HttpError as e:
                if e.resp.status == 401 and attempt == 1:
                    token = await self.tokens.refresh_after_401(token)
                    continue
                err = translate_http(e, self.clock())
                if isinstance(err, QuotaExhaustedError):
                    self.quota.note(bucket, err)
                # Not chained: the HttpError names its URI, and an upload session URI is a write capability.
                raise err from None
            except TRANSPORT_ERRORS as e:
                raise translate_transport(e) from e
            finally:
                http.close()
        raise AssertionError("unreachable: the second attempt returns or raises")

    # publishing ------------------------------------------------------------------------------------
    async def publish(self, plan: PlatformPlan, video_path: str, intents: IntentLog) -> PublishedPost:
        """Upload the video once, whatever happens in between; a retry resumes, never re-uploads."""
        saved = await asyncio.to_thread(intents.load, plan.campaign_id, PLATFORM)
        if saved.get("video_id"):
            return _post(saved["video_id"])
        job = UploadJob(self._youtube, self.video_body(plan), video_path, self.chunksize, intents,
                        plan.campaign_id)
        # Finishing a saved session costs no insert quota, so only a new upload is held back by it.
        resource = await self._call("videos.insert", job.run, check=not saved.get("session_uri"))
        return _post(str(resource["id"]))

    def video_body(self, plan: PlatformPlan) -> dict[str, Any]:
        copy = plan.copy_
        status: dict[str, Any] = {"privacyStatus": "public", "selfDeclaredMadeForKids": False}
        if plan.scheduled_at is not None and plan.scheduled_at > self.clock():
            # YouTube only schedules private videos; it makes them public at publishAt.
            status = {"privacyStatus": "private", "selfDeclaredMadeForKids": False,
                      "publishAt": plan.scheduled_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        snippet = {"title": _clean(copy.title or ""), "description": _clean(copy.text, max_bytes=5000),
                   "tags": _tags(copy.hashtags), "categoryId": MUSIC_CATEGORY}
        return {"snippet": snippet, "status": status}

    # reading ---------------------------------------------------------------------------------------
    async def _videos(self, ids: Sequence[str], part: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 50):  # videos.list takes at most 50 ids, for 1 unit
            batch = ",".join(ids[start:start + 50])

            def list_batch(http: BearerHttp, batch: str = batch) -> dict[str, Any]:
                return self._youtube.videos().list(  # type: ignore[no-any-return]
                    part=part, id=batch, maxResults=50).execute(http=http)

            answer = await self._call("default", list_batch)
            found.update({item["id"]: item for item in answer.get("items", [])})
        return found

    async def video_status(self, video_id: str) -> dict[str, Any]:
        """Where YouTube is with the video: upload/processing state, privacy and schedule."""
        item = (await self._videos([video_id], "status,processingDetails")).get(video_id)
        if item is None:
            raise PermanentError(PLATFORM, f"video {video_id} does not exist or is not visible",
                                 code="videoNotFound")
        status, processing = item.get("status", {}), item.get("processingDetails", {})
        return {"video_id": video_id, "upload_status": status.get("uploadStatus"),
                "privacy_status": status.get("privacyStatus"), "publish_at": status.get("publishAt"),
                "failure_reason": status.get("failureReason"),
                "rejection_reason": status.get("rejectionReason"),
                "processing_status": processing.get("processingStatus"),
                "processing_failure_reason": processing.get("processingFailureReason")}

    async def wait_until_processed(self, video_id: str) -> dict[str, Any]:
        """Poll video_status until YouTube finishes with the upload; PermanentError if it failed."""
        waited = 0.0
        while True:
            status = await self.video_status(video_id)
            if status["upload_status"] in FINISHED_UPLOAD:
                if status["upload_status"] != "processed":
                    raise PermanentError(PLATFORM, f"video {video_id} was {status['upload_status']}",
                                         code=status["failure_reason"] or status["rejection_reason"])
                return status
            if waited >= self.poll_timeout_s:
                raise TransientError(PLATFORM, f"video {video_id} is still processing", code="processing",
                                     retry_after=self.poll_interval_s)
            await asyncio.sleep(self.poll_interval_s)
            waited += self.poll_interval_s

    async def fetch_metrics(self, campaign_id: str, post_ids: Sequence[str], day: date) -> list[PostMetrics]:
        """Each video's cumulative figures to the end of `day`; None where YouTube has none (yet)."""
        if not post_ids:
            return []
        items = await self._videos(list(post_ids), "snippet,status,statistics")
        today = self.clock().astimezone(PACIFIC).date()
        out = []
        for vid in post_ids:
            base = PostMetrics(campaign_id=campaign_id, platform=Platform.YOUTUBE, post_id=vid, day=day,
                               collected_at=self.clock())
            item = items.get(vid)
            if item is None or day > today:
                out.append(base)  # gone, not visible to this channel, or a day yet to come: nothing to report
            elif day == today:
                out.append(metrics_from_statistics(base, item))  # the day is not over: counters so far
            else:
                query = report_request(item, day)
                report = None if query is None else await self._report(query)
                out.append(metrics_from_report(base, report))
        return out

    async def _report(self, query: dict[str, str]) -> dict[str, Any]:
        def run(http: BearerHttp) -> dict[str, Any]:
            return self._analytics.reports().query(**query).execute(http=http)  # type: ignore[no-any-return]

        return await self._call("analytics", run)

    async def aclose(self) -> None:
        self._youtube.close()
        self._analytics.close()


def _post(video_id: str) -> PublishedPost:
    return PublishedPost(post_id=video_id, url=f"https://www.youtube.com/watch?v={video_id}")


def _clean(text: str, *, max_bytes: int | None = None) -> str:
    """YouTube refuses < and > in titles and descriptions (invalidTitle/invalidDescription), and counts
    the description's 5000 in UTF-8 bytes where PlatformCopy counted characters."""
    text = text.replace("<", "\u2039").replace(">", "\u203a")
    return text if max_bytes is None else text.encode()[:max_bytes].decode(errors="ignore")


def _tags(hashtags: Sequence[str]) -> list[str]:
    """Hashtags as tags, within YouTube's 500-character budget (quoted multi-word tags count their quotes)."""
    tags: list[str] = []
    used = 0
    for tag in (h.strip().lstrip("#").strip() for h in hashtags):
        cost = len(tag) + (2 if " " in tag else 0) + (1 if tags else 0)
        if tag and tag not in tags and used + cost <= 500:
            tags.append(tag)
            used += cost
    return tags
