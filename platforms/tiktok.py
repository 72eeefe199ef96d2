"""TikTok Content Posting API client (direct post, FILE_UPLOAD) and Display API metrics, over httpx.

TikTok has no idempotency key: every init creates a new publish. So the publish_id and upload_url are
written to the intent log the moment init answers, the uploaded offset after every chunk, and a retry
with a saved publish_id never inits again: it asks the status, resumes the upload where TikTok says it
stands, or keeps polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from metacentric.settings import Settings
from models import PlatformPlan, PostMetrics
from models.platform import Platform
from platforms.base import IntentLog, PublishedPost
from platforms.errors import (
    AuthExpiredError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from platforms.tiktok_publish import PublishFlow
from platforms.tiktok_wire import (
    DEFAULT_CHUNK,
    OAUTH_TOKEN,
    PLATFORM,
    RATE_LIMITS,
    STATUS_FETCH,
    VIDEO_QUERY,
    CallWindows,
    check_chunk_size,
    connection_error,
    translate,
    utcnow,
)
from platforms.tokens import TokenManager, TokenSet, TokenStore

METRIC_FIELDS = "id,create_time,view_count,like_count,comment_count,share_count"
QUERY_BATCH = 20
# Refusals that mean the refresh token itself is dead: a person has to reconnect the account.
DEAD_GRANT = {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied", "invalid_scope"}


class TikTokStore(TokenStore, Protocol):
    """What the client keeps in the store: tokens (TokenStore) and the daily post count."""

    def limit(self, platform: str, key: str) -> dict[str, Any] | None: ...

    def put_limit(self, platform: str, key: str, data: dict[str, Any]) -> None: ...


class TikTokClient:
    platform = PLATFORM

    def __init__(self, *, base_url: str, client_key: str, client_secret: SecretStr, access_token: SecretStr,
                 refresh_token: SecretStr, store: TikTokStore, account: str = "default",
                 poll_interval_s: float = 3.0, poll_timeout_s: float = 600.0, chunk_size: int = DEFAULT_CHUNK,
                 daily_post_cap: int = 15, rate_limits: Mapping[str, int] | None = None,
                 clock: Callable[[], float] = time.time,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client_key = client_key
        self._client_secret = client_secret
        self.store = store
        self.account = account
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s
        self.chunk_size = check_chunk_size(chunk_size)
        self.daily_post_cap = daily_post_cap
        self.clock = clock
        self.windows = CallWindows({**RATE_LIMITS, **(rate_limits or {})})
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), transport=transport,
                                      timeout=httpx.Timeout(60.0, connect=10.0))
        access = access_token.get_secret_value()
        # No access token configured (live mode needs only the refresh token): expired from the start.
        initial = TokenSet(access, refresh_token.get_secret_value() or None,
                           expires_at=None if access else 0.0)
        self.tokens = TokenManager(PLATFORM, account, store, initial,
                                   self._refresh if initial.refresh_token else None, clock=clock)

    @classmethod
    def from_settings(cls, settings: Settings, store: TikTokStore, **options: Any) -> TikTokClient:
        return cls(base_url=settings.tiktok_base_url, client_key=settings.tiktok_client_key,
                   client_secret=settings.tiktok_client_secret, access_token=settings.tiktok_access_token,
                   refresh_token=settings.tiktok_refresh_token, store=store,
                   poll_interval_s=settings.poll_interval_s, poll_timeout_s=settings.poll_timeout_s,
                   **options)

    async def aclose(self) -> None:
        await self.http.aclose()

    # the PublishingClient protocol ---------------------------------------------------------------
    async def publish(self, plan: PlatformPlan, video_path: str, intents: IntentLog) -> PublishedPost:
        return await PublishFlow(self, plan, video_path, intents).run()

    async def fetch_metrics(self, campaign_id: str, post_ids: Sequence[str], day: date) -> list[PostMetrics]:
        """Cumulative counters of our own videos; a video TikTok does not return has all None (not zero)."""
        out: list[PostMetrics] = []
        ids = [str(p) for p in post_ids]
        for start in range(0, len(ids), QUERY_BATCH):
            batch = ids[start:start + QUERY_BATCH]
            data = await self.call("video.query", VIDEO_QUERY, params={"fields": METRIC_FIELDS},
                                   json={"filters": {"video_ids": batch}})
            videos = {str(v.get("id")): v for v in data.get("videos", []) if isinstance(v, dict)}
            collected = utcnow(self.clock)
            for pid in batch:
                v = videos.get(pid, {})
                out.append(PostMetrics(
                    campaign_id=campaign_id, platform=Platform.TIKTOK, post_id=pid, day=day,
                    collected_at=collected, views=v.get("view_count"), likes=v.get("like_count"),
                    comments=v.get("comment_count"), shares=v.get("share_count")))
        return out

    # calls -------------------------------------------------------------------------------------------
    async def call(self, endpoint: str, path: str, *, json: dict[str, Any] | None = None,
                   params: dict[str, str] | None = None, idempotent: bool = True) -> dict[str, Any]:
        """One API call: client-side window first, bearer token, one refresh-and-retry on a rejected token."""
        self.windows.check(endpoint, self.clock)
        token = await self.tokens.access_token()
        for attempt in (1, 2):
            self.windows.record(endpoint)
            resp = await self._send(endpoint, path, token, json, params, idempotent)
            try:
                return translate(resp, endpoint, self.clock)
            except AuthExpiredError:
                if attempt == 2:
                    raise AuthExpiredError(PLATFORM, f"{endpoint}: the access token was rejected again right "
                                                     "after a refresh; reconnect the account",
                                           code="access_token_invalid") from None
                # A 401 means TikTok did not act on the call, so repeating it (even init) is safe.
                token = await self.tokens.refresh_after_401(token)
            except RateLimitedError as exc:
                self.windows.block(endpoint, exc.until, self.clock)
                raise
        raise AssertionError("unreachable")

    async def _send(self, endpoint: str, path: str, token: str, json: dict[str, Any] | None,
                    params: dict[str, str] | None, idempotent: bool) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=UTF-8"}
        try:
            return await self.http.post(path, json=json if json is not None else {}, params=params,
                                        headers=headers)
        except httpx.TransportError as exc:
            raise connection_error(endpoint, exc, idempotent) from None

    async def status(self, publish_id: str) -> dict[str, Any]:
        return await self.call("status.fetch", STATUS_FETCH, json={"publish_id": publish_id})

    async def _refresh(self, refresh_token: str) -> TokenSet:
        """POST /v2/oauth/token/ (form). The answer carries a NEW refresh token; the old one is dead now."""
        form = {"client_key": self._client_key, "client_secret": self._client_secret.get_secret_value(),
                "grant_type": "refresh_token", "refresh_token": refresh_token}
        try:
            resp = await self.http.post(OAUTH_TOKEN, data=form, headers={"Cache-Control": "no-cache"})
        except httpx.TransportError as exc:
            # If TikTok rotated but the answer was lost, the stored refresh token is now spent and the next
            # refresh says invalid_grant: that surfaces as AuthExpiredError, which is the truth.
            raise connection_error("oauth.token", exc, idempotent=True) from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        now = self.clock()
        if resp.status_code == 200 and body.get("access_token"):
            expires_in = body.get("expires_in")
            return TokenSet(access_token=str(body["access_token"]), refresh_token=body.get("refresh_token"),
                            expires_at=now + float(expires_in) if expires_in else None, issued_at=now)
        code = str(body.get("error") or f"http_{resp.status_code}")
        message = f"token refresh refused: {body.get('error_description') or code}"
        if code in DEAD_GRANT:
            raise AuthExpiredError(PLATFORM, message, code=code)
        if resp.status_code == 429:
            raise RateLimitedError(PLATFORM, message, until=utcnow(self.clock) + timedelta(seconds=60), code=code)
        if resp.status_code >= 500:
            raise TransientError(PLATFORM, message, code=code)
        raise PermanentError(PLATFORM, message, code=code)

    # daily post cap (shared by every process through the store) ------------------------------------
    def _cap_key(self) -> str:
        return f"daily_posts:{self.account}"

    def daily_posts(self) -> dict[str, Any]:
        today = utcnow(self.clock).date().isoformat()
        data = self.store.limit(PLATFORM, self._cap_key()) or {}
        if data.get("day") != today:
            data = {"day": today, "count": 0, "blocked_until": data.get("blocked_until")}
        return data

    def put_daily_posts(self, data: dict[str, Any]) -> None:
        self.store.put_limit(PLATFORM, self._cap_key(), data)
