"""What the Google fakes (Data API, uploads, Analytics, OAuth) share: the error envelope, access tokens,
Pacific days, the configurable limits, and fault rendering.

Everything lives in the "youtube" namespace of the sandbox state, so a restart keeps videos, quota
counters and issued tokens (but not the bytes of uploads in flight, see SandboxState.uploads).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.responses import JSONResponse, Response
from starlette.requests import Request

from sandbox.faults import FaultRule
from sandbox.state import SandboxState
from sandbox.wire import REQUEST_FAULTS, DroppedResponse

NS = "youtube"  # the state namespace and the fault-injection platform name
PACIFIC = ZoneInfo("America/Los_Angeles")  # YouTube quota days and Analytics days are Pacific days
SANDBOX_PROJECT = "sandbox-project"

# Defaults follow reference/platform_apis.md §2.5 (2026 model); PUT /_admin/youtube/limits changes them.
DEFAULT_LIMITS: dict[str, Any] = {
    "units_per_day": 10_000,  # the shared bucket of every method but videos.insert
    # videos.insert's own bucket; None = the older model (an insert costs costs["videos.insert"] units)
    "insert_calls_per_day": 100,
    "costs": {"videos.list": 1, "videos.insert": 1600},
    "channel_uploads_per_day": 100,  # the per-channel cap behind 400 uploadLimitExceeded
    "processing_s": 1.0,  # sim seconds from upload to uploadStatus=processed
    "session_ttl_s": 7 * 86400,  # resumable sessions live about a week
    "token_ttl_s": 3599,  # access token lifetime (expires_in)
    "analytics_latency_days": 0,  # Analytics figures appear this many days after a day ends (real: ~2)
}

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def google_error(status: int, reason: str, message: str, *, domain: str = "global",
                 headers: dict[str, str] | None = None) -> JSONResponse:
    """Google's JSON error envelope, as googleapiclient's HttpError parses it."""
    error = {"code": status, "message": message,
             "errors": [{"message": message, "domain": domain, "reason": reason}]}
    if status in _STATUS_NAMES:
        error["status"] = _STATUS_NAMES[status]
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def quota_exceeded() -> JSONResponse:
    return google_error(403, "quotaExceeded", "The request cannot be completed because you have exceeded "
                        'your <a href="/youtube/v3/getting-started#quota">quota</a>.', domain="youtube.quota")


def render_fault(rule: FaultRule) -> JSONResponse:
    """A Data API / Analytics fault in Google's own words."""
    if rule.kind == "rate_limit":
        return google_error(403, "rateLimitExceeded", "The request cannot be completed because you have "
                            "exceeded the rate limit. Slow down.", domain="usageLimits")
    if rule.kind == "quota":
        return quota_exceeded()
    if rule.kind == "token_expired":
        return unauthorized("authError", "Invalid Credentials")
    return google_error(503, "backendError", "Backend Error")


def unauthorized(reason: str, message: str) -> JSONResponse:
    return google_error(401, reason, message,
                        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                                                     'error="invalid_token"'})


async def with_faults(state: SandboxState, endpoints: Sequence[str], call: Callable[[], Awaitable[Response]],
                      render: Callable[[FaultRule], Response] = render_fault) -> Response:
    """sandbox.wire.with_faults over several names for one request, the first matching rule winning.

    An upload chunk answers to "upload.chunk", to "upload.final" when it is the last one, and to
    "upload.chunk.<n>" (its 1-based position in the session), so a test can break exactly the third chunk.
    """
    delay = max(state.faults.latency_s(NS, name) for name in endpoints)  # once, not once per name
    if delay > 0:
        await asyncio.sleep(delay)
    rule = None
    for name in endpoints:
        rule = state.faults.pick(NS, name, kinds=REQUEST_FAULTS)
        if rule is not None:
            break
    if rule is None:
        return await call()
    if rule.kind == "drop_connection":
        return DroppedResponse()  # type: ignore[return-value]
    if rule.kind == "ambiguous":
        await call()
        state.save()
        return DroppedResponse()  # type: ignore[return-value]
    return render(rule)


# Limits and days --------------------------------------------------------------------------------------------
def limits(state: SandboxState) -> dict[str, Any]:
    """The live limits (persisted with the state); defaults fill whatever was never set."""
    stored: dict[str, Any] = state.ns(NS).setdefault("limits", {})
    for key, value in DEFAULT_LIMITS.items():
        stored.setdefault(key, dict(value) if isinstance(value, dict) else value)
    return stored


def pacific_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, PACIFIC).date()


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Access tokens ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Caller:
    """Whose access token a request carries: a Cloud project (quota) and a channel (uploads, ownership)."""

    project: str
    channel: str


def channel_for(refresh_token: str) -> str:
    """A stable channel id per refresh token (one Google account = one channel here)."""
    return "UC" + hashlib.sha256(refresh_token.encode()).hexdigest()[:22]


def authorize(request: Request, state: SandboxState, static_token: str) -> Caller | JSONResponse:
    """The caller behind `Authorization: Bearer ...`, or Google's 401."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return unauthorized("required", "Login Required.")
    token = header[7:].strip()
    if token == static_token:  # the sandbox's own never-expiring token, as the Graph fake accepts it
        return Caller(SANDBOX_PROJECT, channel_for(static_token))
    issued = state.ns(NS).get("tokens", {}).get(token)
    if issued is None or issued["expires_at"] <= state.clock.time():
        return unauthorized("authError", "Invalid Credentials")
    return Caller(issued["project"], issued["channel"])
