"""Instagram client (Instagram API with Facebook Login): publish a reel from a local file, read its insights.

Publishing is container -> resumable upload -> processing -> media_publish. Only media_publish puts a post
in public and it is NOT idempotent, so every step is recorded in the intent log before it is taken and a
retry first looks at what exists: a container that is already PUBLISHED is never published again; its
media id is found in the account's recent media (the container does not expose it).

Intent keys: container_id, caption, publish_attempted, media_before (newest media id just before
media_publish, so a lost response is reconciled against media newer than that), media_id, permalink.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol

import httpx

from metacentric.settings import Settings
from models import PlatformPlan, PostMetrics
from models.platform import INSTAGRAM_CAPTION_MAX, Platform
from platforms.base import IntentLog, PublishedPost
from platforms.errors import (
    AmbiguousWriteError,
    PermanentError,
    PlatformError,
    QuotaExhaustedError,
    TransientError,
)
from platforms.files import file_size
from platforms.instagram_wire import (
    PLATFORM,
    QUOTA_RETRY,
    ContainerNotReady,
    ContainerUnusable,
    InstagramHttp,
    UploadOffsetMismatch,
    now,
)

INSIGHT_METRICS = "views,reach,likes,comments,shares,saved,total_interactions"
MAX_CONTAINERS = 2  # per publish() call: the first, and one replacement if it expired or broke
MAX_NOT_READY = 3  # doc: retry a 9007 publish once or twice, then give the container more time
RECENT_PAGES = 4  # pages of recent media searched when reconciling a lost publish response
# ...and when the container says PUBLISHED, so the media certainly exists: a retry can come long after the
# lost answer (a re-run of the launch), and the account may have published many more media since.
PUBLISHED_PAGES, PUBLISHED_PAGE_SIZE = 10, "100"


class LimitStore(Protocol):
    """Shared knowledge of platform limits (the store implements it)."""

    def limit(self, platform: str, key: str) -> dict[str, Any] | None: ...

    def put_limit(self, platform: str, key: str, data: dict[str, Any]) -> None: ...


class _Intent:
    """The (campaign, instagram) intent row as a dict that is saved on every change."""

    def __init__(self, log: IntentLog, campaign_id: str) -> None:
        self.log, self.campaign_id = log, campaign_id
        self.state: dict[str, Any] = log.load(campaign_id, PLATFORM)

    def get(self, key: str) -> Any:
        return self.state.get(key)

    def update(self, **values: Any) -> None:
        self.state.update(values)
        self.log.save(self.campaign_id, PLATFORM, self.state)

    def drop_container(self) -> None:
        for key in ("container_id", "publish_attempted", "media_before"):
            self.state.pop(key, None)
        self.log.save(self.campaign_id, PLATFORM, self.state)


class InstagramClient:
    platform = PLATFORM

    def __init__(self, *, ig_user_id: str, access_token: str, graph_url: str, api_version: str,
                 upload_url: str, app_secret: str | None = None, limits: LimitStore | None = None,
                 poll_interval_s: float = 3.0, poll_timeout_s: float = 600.0,
                 http: httpx.AsyncClient | None = None) -> None:
        if not ig_user_id or not access_token:
            raise ValueError("instagram: an IG user id and an access token are required")
        self.ig_user_id = ig_user_id
        self.limits = limits
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))
        self.api = InstagramHttp(self._http, graph_base=graph_url, upload_base=upload_url,
                                 api_version=api_version, access_token=access_token, app_secret=app_secret)

    @classmethod
    def from_settings(cls, settings: Settings, store: LimitStore | None) -> InstagramClient:
        return cls(ig_user_id=settings.instagram_user_id,
                   access_token=settings.instagram_access_token.get_secret_value(),
                   graph_url=settings.instagram_graph_url, api_version=settings.meta_api_version,
                   upload_url=settings.instagram_upload_url,
                   app_secret=settings.meta_app_secret.get_secret_value() or None, limits=store,
                   poll_interval_s=settings.poll_interval_s, poll_timeout_s=settings.poll_timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    # publishing ------------------------------------------------------------------------------------
    async def publish(self, plan: PlatformPlan, video_path: str, intents: IntentLog) -> PublishedPost:
        intent = _Intent(intents, plan.campaign_id)
        if not intent.get("media_id"):
            self._refuse_if_known_full()
            caption = intent.get("caption") or _caption(plan)
            await self._publish_once(intent, caption, video_path)
        if not intent.get("permalink"):
            media = await self.api.get(str(intent.get("media_id")), {"fields": "permalink"})
            intent.update(permalink=media.get("permalink"))
        return PublishedPost(post_id=str(intent.get("media_id")), url=intent.get("permalink"))

    async def _publish_once(self, intent: _Intent, caption: str, video_path: str) -> None:
        created, not_ready, quota_checked = 0, 0, False
        while True:
            cid = intent.get("container_id")
            if cid is None:
                if created == MAX_CONTAINERS:
                    raise TransientError(PLATFORM, "new containers keep failing; try again later")
                if not quota_checked:
                    await self._check_quota()
                    quota_checked = True
                cid = await self._create_container(caption)
                created += 1
                intent.update(container_id=cid, caption=caption)
                status: dict[str, Any] = {"status_code": "IN_PROGRESS"}
            else:
                status = await self._container(cid)
            code = status.get("status_code")
            if code == "PUBLISHED":
                await self._reconcile(intent, must_exist=True)
                return
            if code == "EXPIRED":
                intent.drop_container()
                continue
            if code == "ERROR":
                intent.drop_container()
                reason = status.get("status")
                raise PermanentError(PLATFORM, f"Instagram could not process the video: {reason}")
            if intent.get("publish_attempted") and await self._reconcile(intent, must_exist=False):
                return
            if not quota_checked:
                await self._check_quota()
                quota_checked = True
            try:
                if code == "IN_PROGRESS":
                    await self._upload_rest(cid, video_path, status)
                    if (await self._wait_processed(cid)).get("status_code") != "FINISHED":
                        continue  # EXPIRED / ERROR / PUBLISHED: handled at the top of the loop
                await self._media_publish(intent, cid)
                return
            except ContainerNotReady:
                not_ready += 1
                if not_ready >= MAX_NOT_READY:
                    raise
                await asyncio.sleep(self.poll_interval_s)
            except ContainerUnusable:
                intent.drop_container()

    def _quota_key(self) -> str:
        return f"publishing:{self.ig_user_id}"

    def _refuse_if_known_full(self) -> None:
        known = self.limits.limit(PLATFORM, self._quota_key()) if self.limits else None
        if known and known.get("until"):
            until = datetime.fromisoformat(known["until"])
            if until > now():
                raise QuotaExhaustedError(PLATFORM, "the 24 h publishing limit is reached (known, not "
                                                    "asked again)", until=until, code="9/2207042")

    def _remember_full(self, exc: QuotaExhaustedError) -> None:
        if self.limits is not None:
            self.limits.put_limit(PLATFORM, self._quota_key(), {"until": exc.until.isoformat()})

    async def _check_quota(self) -> None:
        """Ask the publishing limit before spending work on a post that could not go out."""
        body = await self.api.get(f"{self.ig_user_id}/content_publishing_limit",
                                  {"fields": "quota_usage,config"})
        rows = body.get("data") or [{}]
        usage, total = rows[0].get("quota_usage"), (rows[0].get("config") or {}).get("quota_total")
        if isinstance(usage, int) and isinstance(total, int) and usage >= total:
            exc = QuotaExhaustedError(PLATFORM, f"{usage} of {total} posts published in the last 24 h",
                                      until=now() + QUOTA_RETRY, code="9/2207042")
            self._remember_full(exc)
            raise exc

    async def _create_container(self, caption: str) -> str:
        body = await self.api.post(f"{self.ig_user_id}/media",
                                   {"media_type": "REELS", "upload_type": "resumable", "caption": caption,
                                    "share_to_feed": "true"}, write=False)  # a lost container is harmless
        if not body.get("id"):
            raise TransientError(PLATFORM, "the container was not created (no id in the answer)")
        return str(body["id"])

    async def _container(self, cid: str) -> dict[str, Any]:
        return await self.api.get(cid, {"fields": "status_code,status,video_status"})

    async def _upload_rest(self, cid: str, path: str, status: dict[str, Any]) -> None:
        size = file_size(path)
        for _ in range(3):
            phase = (status.get("video_status") or {}).get("uploading_phase") or {}
            offset = int(phase.get("bytes_transferred") or 0)
            if phase.get("status") == "complete" or offset >= size:
                return
            try:
                await self.api.upload(cid, path, offset, size)
                return
            except UploadOffsetMismatch:
                status = await self._container(cid)  # ask how far it got, then resume from there
        raise TransientError(PLATFORM, "the upload offset kept changing; retry later")

    async def _wait_processed(self, cid: str) -> dict[str, Any]:
        """Poll until the container leaves IN_PROGRESS. A timeout is transient: a retry polls the same one."""
        deadline = time.monotonic() + self.poll_timeout_s
        while True:
            status = await self._container(cid)
            if status.get("status_code") != "IN_PROGRESS":
                return status
            if time.monotonic() >= deadline:
                raise TransientError(PLATFORM, f"container still processing after {self.poll_timeout_s:g} s",
                                     retry_after=self.poll_interval_s)
            await asyncio.sleep(self.poll_interval_s)

    async def _media_publish(self, intent: _Intent, cid: str) -> None:
        newest = await self.api.get(f"{self.ig_user_id}/media", {"fields": "id", "limit": "1"})
        before = next((str(m["id"]) for m in newest.get("data", [])), None)
        intent.update(publish_attempted=True, media_before=before)
        try:
            body = await self.api.post(f"{self.ig_user_id}/media_publish", {"creation_id": cid}, write=True)
        except QuotaExhaustedError as exc:
            self._remember_full(exc)
            raise
        except AmbiguousWriteError as lost:
            return await self._resolve_lost_publish(intent, cid, lost)
        if not body.get("id"):
            # A success without a media id tells us nothing: as good as a lost answer.
            return await self._resolve_lost_publish(intent, cid, AmbiguousWriteError(
                PLATFORM, "media_publish answered without a media id; it may have been applied"))
        intent.update(media_id=str(body["id"]))

    async def _resolve_lost_publish(self, intent: _Intent, cid: str, lost: AmbiguousWriteError) -> None:
        """The answer was lost: look before anything else. Only a PUBLISHED container settles it now;
        otherwise the publish may still be in flight, so `lost` is raised and a later retry looks again."""
        try:
            if (await self._container(cid)).get("status_code") == "PUBLISHED":
                await self._reconcile(intent, must_exist=True)
                return
        except PlatformError:
            pass
        raise lost

    async def _reconcile(self, intent: _Intent, *, must_exist: bool) -> bool:
        """Find our media among the account's recent media (newer than media_before, same caption)."""
        caption, before = str(intent.get("caption") or "").strip(), intent.get("media_before")
        params = {"fields": "id,caption,timestamp,permalink", "limit": PUBLISHED_PAGE_SIZE if must_exist else "25"}
        for _ in range(PUBLISHED_PAGES if must_exist else RECENT_PAGES):
            page = await self.api.get(f"{self.ig_user_id}/media", params)
            for media in page.get("data", []):
                if before is not None and media.get("id") == before:
                    return _not_found(must_exist)  # reached media older than our publish attempt
                if str(media.get("caption") or "").strip() == caption:
                    intent.update(media_id=str(media["id"]), permalink=media.get("permalink"))
                    return True
            paging = page.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not (paging.get("next") and after):
                break
            params = {**params, "after": after}
        return _not_found(must_exist)

    # metrics ---------------------------------------------------------------------------------------
    async def fetch_metrics(self, campaign_id: str, post_ids: Sequence[str], day: date) -> list[PostMetrics]:
        out = []
        for post_id in post_ids:
            body = await self.api.get(f"{post_id}/insights", {"metric": INSIGHT_METRICS})
            values = {row["name"]: row["values"][0].get("value")
                      for row in body.get("data", []) if row.get("name") and row.get("values")}
            # No data yet is an empty list on Instagram: every figure stays None, never 0.
            out.append(PostMetrics(campaign_id=campaign_id, platform=Platform.INSTAGRAM, post_id=post_id,
                                   day=day, collected_at=now(), views=values.get("views"),
                                   likes=values.get("likes"), comments=values.get("comments"),
                                   shares=values.get("shares"), saves=values.get("saved")))
        return out


def _not_found(must_exist: bool) -> bool:
    if must_exist:
        raise AmbiguousWriteError(PLATFORM, "the container is PUBLISHED but its media is not listed yet")
    return False


def _caption(plan: PlatformPlan) -> str:
    """The copy's text plus the hashtags it does not already contain, as many as fit the caption limit."""
    caption = plan.copy_.text.strip()
    words = set(caption.split())
    sep = "\n\n"
    for tag in plan.copy_.hashtags:
        tag = tag.strip() if tag.strip().startswith("#") else f"#{tag.strip()}"
        if tag == "#" or tag in words or len(caption) + len(sep) + len(tag) > INSTAGRAM_CAPTION_MAX:
            continue
        caption, sep = caption + sep + tag, " "
        words.add(tag)
    return caption
