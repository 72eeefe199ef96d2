"""X (api.x.com, API v2) publishing client: the release video as a thread's first post, the copy's replies
chained under it, and the posts' public metrics.

Every step is resumable from the intent log (campaign, "x"):
  media       upload progress (see x_media): id, next segment, finalized, processed
  tweet_ids   the thread's post ids so far, in order; the first one is the campaign's post
  pending     a create whose outcome is not known yet (see x_thread)
so publish() may be called again after any failure and neither uploads nor posts twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

import httpx

from metacentric.settings import Settings
from models import Platform, PlatformPlan, PostMetrics
from platforms.base import IntentLog, PublishedPost
from platforms.errors import PermanentError
from platforms.tokens import TokenManager, TokenSet, TokenStore
from platforms.x_http import INVALID_MEDIA, PLATFORM, LimitStore, XApi, token_refresher
from platforms.x_http import query as query_args
from platforms.x_media import SEGMENT_BYTES, MediaUploader
from platforms.x_thread import ThreadPoster

LOOKUP_BATCH = 100  # GET /2/tweets takes at most 100 ids
RECONCILE_TIMEOUT_S = 60.0  # how long to wait for a post X says exists to show in the timeline


class XStore(TokenStore, LimitStore, Protocol):
    """What the client keeps between runs: rotating OAuth tokens and X's rate-limit headers (Store does)."""


class XClient:
    platform = PLATFORM

    def __init__(self, http: httpx.AsyncClient, tokens: TokenManager, limits: LimitStore, *,
                 poll_interval_s: float = 3.0, poll_timeout_s: float = 600.0,
                 segment_bytes: int = SEGMENT_BYTES, clock: Callable[[], float] = time.time) -> None:
        self.http = http
        self.tokens = tokens
        self.clock = clock
        self.api = XApi(http, tokens, limits, clock)
        self.uploader = MediaUploader(self.api, segment_bytes=segment_bytes, poll_interval_s=poll_interval_s,
                                      poll_timeout_s=poll_timeout_s)
        self.thread = ThreadPoster(self.api, poll_interval_s=poll_interval_s,
                                   reconcile_timeout_s=min(poll_timeout_s, RECONCILE_TIMEOUT_S))

    @classmethod
    def from_settings(cls, settings: Settings, store: XStore, *, clock: Callable[[], float] | None = None,
                      segment_bytes: int = SEGMENT_BYTES, account: str = "default") -> XClient:
        """`store` keeps the rotating tokens and the rate-limit knowledge (metacentric.store.Store).

        `clock` is what "now" means for token expiry and rate-limit resets; in sandbox mode pass the
        sandbox's simulated clock if it has been moved.
        """
        clock = clock or time.time
        http = httpx.AsyncClient(base_url=settings.x_base_url, timeout=httpx.Timeout(60.0, connect=10.0),
                                 headers={"user-agent": "metacentric/0.1"})
        access = settings.x_access_token.get_secret_value()
        refresh = settings.x_refresh_token.get_secret_value()
        # Without an access token the first call refreshes (expires_at=0); an unknown expiry waits for a 401.
        initial = TokenSet(access_token=access, refresh_token=refresh or None,
                           expires_at=None if access else 0.0)
        refresher = token_refresher(http, settings.x_client_id, settings.x_client_secret.get_secret_value(),
                                    clock, configured=refresh or None)
        tokens = TokenManager(PLATFORM, account, store, initial, refresher, clock=clock)
        return cls(http, tokens, store, poll_interval_s=settings.poll_interval_s,
                   poll_timeout_s=settings.poll_timeout_s, segment_bytes=segment_bytes, clock=clock)

    async def publish(self, plan: PlatformPlan, video_path: str, intents: IntentLog) -> PublishedPost:
        if plan.platform is not Platform.X:
            raise PermanentError(PLATFORM, f"this plan is for {plan.platform}, not X")
        campaign = plan.campaign_id
        intent = intents.load(campaign, PLATFORM)

        def save() -> None:
            intents.save(campaign, PLATFORM, intent)

        posts = [plan.copy_.text, *plan.copy_.thread]
        ids: list[str] = intent.setdefault("tweet_ids", [])
        if not ids:
            ids.append(await self._first_post(posts[0], video_path, intent, save))
            intent.pop("pending", None)
            save()
        for index in range(len(ids), len(posts)):
            ids.append(await self.thread.create(intent, save, index, posts[index], ids[index - 1], None))
            intent.pop("pending", None)
            save()
        return PublishedPost(post_id=ids[0], url=f"https://x.com/i/web/status/{ids[0]}")

    async def _first_post(self, text: str, video_path: str, intent: dict[str, Any],
                          save: Callable[[], None]) -> str:
        for attempt in (1, 2):
            media = await self.uploader.ensure(video_path, intent, save)
            try:
                return await self.thread.create(intent, save, 0, text, None, media)
            except PermanentError as exc:
                if exc.code != INVALID_MEDIA or attempt == 2:
                    raise
                self.uploader.forget(intent, save)  # X dropped the media between processing and posting
        raise AssertionError("unreachable")

    async def fetch_metrics(self, campaign_id: str, post_ids: Sequence[str], day: date) -> list[PostMetrics]:
        """Cumulative public metrics per post; a post X cannot find gets None figures (not zeros)."""
        out: list[PostMetrics] = []
        for start in range(0, len(post_ids), LOOKUP_BATCH):
            batch = [str(p) for p in post_ids[start:start + LOOKUP_BATCH]]
            query = {"ids": ",".join(batch), "tweet.fields": "public_metrics"}
            body = await self.api.call("tweets.lookup", "GET", "/2/tweets", query_args(query))
            found = {str(t["id"]): t.get("public_metrics") or {} for t in body.get("data") or []}
            collected = datetime.fromtimestamp(self.clock(), UTC)
            for post_id in batch:
                m = found.get(post_id)
                figures = _mapped(m) if m is not None else {}
                out.append(PostMetrics(campaign_id=campaign_id, platform=Platform.X, post_id=post_id, day=day,
                                       collected_at=collected, **figures))
        return out

    async def aclose(self) -> None:
        await self.http.aclose()


def _mapped(m: dict[str, Any]) -> dict[str, int | None]:
    def count(*names: str) -> int | None:
        values = [m[n] for n in names if isinstance(m.get(n), int)]
        return sum(values) if values else None

    return {"views": count("impression_count"), "likes": count("like_count"),
            "comments": count("reply_count"), "shares": count("retweet_count", "quote_count"),
            "saves": count("bookmark_count")}
