"""TikTok wire details: error translation, the chunk plan, and the client-side rate windows.

Errors are translated here, once, from TikTok's `error.code` and the HTTP status (never from message text):

  ok (200)                                   -> the `data` object
  access_token_invalid (401)                 -> AuthExpiredError(code="access_token_invalid"); the client
                                                refreshes once and retries before letting it out
  rate_limit_exceeded (429)                  -> RateLimitedError(until = Retry-After / x-ratelimit-reset
                                                header, else now + 60 s: the windows slide over one minute)
  spam_risk_too_many_posts (403)             -> QuotaExhaustedError(until the next UTC midnight)
  internal_error / any 5xx                   -> TransientError
  scope_*, invalid_params, other 4xx / 403   -> PermanentError
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from models.platform import TIKTOK_CAPTION_MAX
from platforms.errors import (
    AmbiguousWriteError,
    AuthExpiredError,
    PermanentError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
)

PLATFORM = "tiktok"
CREATOR_INFO = "/v2/post/publish/creator_info/query/"
VIDEO_INIT = "/v2/post/publish/video/init/"
STATUS_FETCH = "/v2/post/publish/status/fetch/"
VIDEO_QUERY = "/v2/video/query/"
VIDEO_LIST = "/v2/video/list/"
OAUTH_TOKEN = "/v2/oauth/token/"
MIB = 1024 * 1024
# Bounds that satisfy TikTok's "5 MB" / "64 MB" / "128 MB" whether it means MB or MiB.
MIN_CHUNK = 5 * MIB
MAX_CHUNK = 64_000_000
MAX_CHUNKS = 1000
MAX_VIDEO = 4 * 1024 * MIB
DEFAULT_CHUNK = 10 * MIB

# Documented per-token limits, calls per sliding minute (reference/platform_apis.md section 3.2).
RATE_LIMITS: Mapping[str, int] = {"creator_info": 20, "video.init": 6, "status.fetch": 30,
                                  "video.query": 600, "video.list": 600}
WINDOW_S = 60.0


def utcnow(clock: Any = time.time) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def next_utc_midnight(now: datetime) -> datetime:
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def _retry_after(resp: httpx.Response, now: datetime) -> datetime | None:
    value = resp.headers.get("retry-after")
    if value:
        try:
            return now + timedelta(seconds=float(value))
        except ValueError:
            try:
                return parsedate_to_datetime(value).astimezone(UTC)
            except (TypeError, ValueError):
                pass
    reset = resp.headers.get("x-ratelimit-reset")
    if reset:
        try:
            return datetime.fromtimestamp(float(reset), UTC)
        except ValueError:
            pass
    return None


def translate(resp: httpx.Response, what: str, clock: Any = time.time) -> dict[str, Any]:
    """The `data` of a successful answer, or the platforms.errors class its code and status mean."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    if resp.status_code == 200 and code == "ok":
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}
    reason = (err.get("message") or "") if isinstance(err, dict) else ""
    log = f" (log_id {err.get('log_id')})" if isinstance(err, dict) and err.get("log_id") else ""
    message = f"{what}: {reason or f'HTTP {resp.status_code}'}{log}"
    now = utcnow(clock)
    status = resp.status_code
    if code == "access_token_invalid" or (code is None and status == 401):
        raise AuthExpiredError(PLATFORM, message, code="access_token_invalid")
    if code == "rate_limit_exceeded" or status == 429:
        until = _retry_after(resp, now) or now + timedelta(seconds=WINDOW_S)
        raise RateLimitedError(PLATFORM, message, until=until, code=code or "http_429")
    if code == "spam_risk_too_many_posts":
        raise QuotaExhaustedError(PLATFORM, message, until=next_utc_midnight(now), code=code)
    if code == "internal_error" or status >= 500:
        raise TransientError(PLATFORM, message, code=code or f"http_{status}")
    raise PermanentError(PLATFORM, message, code=code or f"http_{status}")


@dataclass(frozen=True)
class ChunkPlan:
    """How `size` bytes are cut for TikTok: `count` chunks of `chunk`, the last absorbing the rest."""

    size: int
    chunk: int
    count: int

    @classmethod
    def for_file(cls, size: int, preferred: int = DEFAULT_CHUNK) -> ChunkPlan:
        if size <= 0:
            raise PermanentError(PLATFORM, "the video file is empty")
        if size > MAX_VIDEO:
            raise PermanentError(PLATFORM, f"the video is {size} bytes; TikTok takes at most {MAX_VIDEO}")
        if size < MIN_CHUNK or size <= preferred:
            return cls(size, size, 1)  # small files go whole (required under 5 MB)
        chunk = max(preferred, math.ceil(size / MAX_CHUNKS))
        if chunk > MAX_CHUNK:
            raise PermanentError(PLATFORM, "the video needs more than 1000 chunks of 64 MB")
        return cls(size, chunk, size // chunk)

    def bounds(self, index: int) -> tuple[int, int]:
        """Inclusive first and last byte of chunk `index`."""
        first = index * self.chunk
        return first, (self.size - 1 if index == self.count - 1 else first + self.chunk - 1)

    def index_at(self, offset: int) -> int:
        """The chunk holding byte `offset` (a resume point); `count` when the whole file is uploaded."""
        return self.count if offset >= self.size else min(offset // self.chunk, self.count - 1)


def check_chunk_size(chunk: int) -> int:
    if not MIN_CHUNK <= chunk <= MAX_CHUNK:
        raise ValueError(f"chunk_size must be between {MIN_CHUNK} and {MAX_CHUNK} bytes, got {chunk}")
    return chunk


class CallWindows:
    """Client-side copy of TikTok's per-token windows, so a call that would be refused is not made.

    In memory and per client: another process sharing the token is covered by the server's 429 instead.
    """

    def __init__(self, limits: Mapping[str, int], clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = dict(limits)
        self.clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}

    def wait_time(self, endpoint: str) -> float:
        now = self.clock()
        calls = self._calls.setdefault(endpoint, deque())
        while calls and calls[0] <= now - WINDOW_S:
            calls.popleft()
        wait = self._blocked.get(endpoint, now) - now
        limit = self.limits.get(endpoint)
        if limit is not None and len(calls) >= limit:
            wait = max(wait, calls[0] + WINDOW_S - now)
        return max(0.0, wait)

    def check(self, endpoint: str, wall_clock: Any = time.time) -> None:
        wait = self.wait_time(endpoint)
        if wait > 0:
            raise RateLimitedError(PLATFORM, f"{endpoint}: the per-minute limit is used up; not calling",
                                   until=utcnow(wall_clock) + timedelta(seconds=wait),
                                   code="rate_limit_exceeded")

    def record(self, endpoint: str) -> None:
        self._calls.setdefault(endpoint, deque()).append(self.clock())

    def block(self, endpoint: str, until: datetime, wall_clock: Any = time.time) -> None:
        self._blocked[endpoint] = self.clock() + max(0.0, until.timestamp() - wall_clock())


def connection_error(endpoint: str, exc: httpx.TransportError,
                     idempotent: bool) -> TransientError | AmbiguousWriteError:
    """A lost connection is transient for idempotent calls and requests that never left; else ambiguous."""
    kind = type(exc).__name__  # never str(exc): keep URLs (upload tokens) out of messages
    if idempotent or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransientError(PLATFORM, f"{endpoint}: connection failed ({kind})", retry_after=1.0)
    return AmbiguousWriteError(PLATFORM, f"{endpoint}: the connection broke after the request was sent "
                                         f"({kind}); it may or may not have been carried out")


def caption_for(text: str, hashtags: Sequence[str]) -> str:
    """The copy's text plus any hashtag it does not already carry, within TikTok's caption limit."""
    caption = text
    for tag in hashtags:
        tag = tag if tag.startswith("#") else f"#{tag}"
        if tag.lower() not in caption.lower() and len(caption) + 1 + len(tag) <= TIKTOK_CAPTION_MAX:
            caption = f"{caption} {tag}"
    return caption
