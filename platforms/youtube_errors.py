"""YouTube's answers translated into platforms.errors, once, from status codes and `error.errors[0].reason`.

Also the quota book: what this deployment learned about spent quotas, kept in the store so every
process refuses a call it knows will fail with quotaExceeded until the quota resets.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httplib2
from google.auth import exceptions as auth_exceptions
from googleapiclient.errors import HttpError

from platforms.errors import (
    AuthExpiredError,
    PermanentError,
    PlatformError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
)

PLATFORM = "youtube"
PACIFIC = ZoneInfo("America/Los_Angeles")  # YouTube's quota day ends at midnight Pacific
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
DEFAULT_BACKOFF_S = 30.0  # when a rate limit names no Retry-After
# What a dropped or refused connection looks like through httplib2 (http.client / socket errors).
TRANSPORT_ERRORS = (OSError, http.client.HTTPException, httplib2.HttpLib2Error,
                    auth_exceptions.TransportError)


def next_pacific_midnight(now: datetime) -> datetime:
    local = now.astimezone(PACIFIC)
    return datetime.combine(local.date() + timedelta(days=1), time(0), PACIFIC)


def _error_body(e: HttpError) -> dict[str, Any]:
    try:
        data = json.loads(e.content)
    except (ValueError, TypeError):
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def error_reason(e: HttpError) -> str | None:
    errors = _error_body(e).get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        reason = errors[0].get("reason")
        return str(reason) if reason else None
    return None


def _retry_after(e: HttpError) -> float | None:
    value = e.resp.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def translate_http(e: HttpError, now: datetime) -> PlatformError:
    """The one place an HttpError becomes a platforms.errors class."""
    status = int(e.resp.status)
    reason = error_reason(e)
    message = str(_error_body(e).get("message") or f"HTTP {status}")[:300]
    if reason == "quotaExceeded":
        return QuotaExhaustedError(PLATFORM, message, until=next_pacific_midnight(now), code=reason)
    if reason == "uploadLimitExceeded":  # the channel's own daily cap: "try again in 24 hours"
        return QuotaExhaustedError(PLATFORM, message, until=now + timedelta(hours=24), code=reason)
    if reason in RATE_LIMIT_REASONS or status == 429:
        wait = _retry_after(e) or DEFAULT_BACKOFF_S
        return RateLimitedError(PLATFORM, message, until=now + timedelta(seconds=wait), code=reason or "429")
    if status >= 500:
        return TransientError(PLATFORM, message, retry_after=_retry_after(e), code=reason or str(status))
    if status == 401:
        return AuthExpiredError(PLATFORM, "the access token was refused even after a refresh; reconnect the "
                                          "YouTube account", code=reason or "401")
    return PermanentError(PLATFORM, message, code=reason or str(status))


def translate_transport(e: BaseException) -> TransientError:
    # Only the exception's class: socket errors can carry addresses and URLs, and nothing worth retrying on.
    return TransientError(PLATFORM, f"connection to YouTube failed ({type(e).__name__})", code="connection")


def translate_refresh(e: auth_exceptions.RefreshError) -> PlatformError:
    """google-auth's refusal to refresh: invalid_grant and friends need a person, 5xx does not."""
    data = e.args[1] if len(e.args) > 1 and isinstance(e.args[1], dict) else {}
    code = str(data.get("error") or "refresh_failed")
    if getattr(e, "retryable", False):
        return TransientError(PLATFORM, "Google's token endpoint is unavailable", code=code)
    return AuthExpiredError(PLATFORM, "Google refused to refresh the access token; reconnect the YouTube "
                                      "account", code=code)


class LimitStore(Protocol):
    def limit(self, platform: str, key: str) -> dict[str, Any] | None: ...

    def put_limit(self, platform: str, key: str, data: dict[str, Any]) -> None: ...


class QuotaBook:
    """Spent quotas by bucket ("videos.insert", "default" for the rest of the Data API, "analytics")."""

    KEY = "quota"

    def __init__(self, store: LimitStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def check(self, bucket: str) -> None:
        """Raise QuotaExhaustedError, without calling YouTube, while a bucket is known to be spent."""
        entry = (self.store.limit(PLATFORM, self.KEY) or {}).get(bucket)
        if not entry:
            return
        until = datetime.fromisoformat(entry["until"])
        if self.clock() < until:
            raise QuotaExhaustedError(PLATFORM, f"{bucket} quota known to be spent until {until.isoformat()}",
                                      until=until, code=entry.get("reason"))

    def note(self, bucket: str, err: QuotaExhaustedError) -> None:
        book = dict(self.store.limit(PLATFORM, self.KEY) or {})
        book[bucket] = {"until": err.until.isoformat(), "reason": err.code}
        self.store.put_limit(PLATFORM, self.KEY, book)
