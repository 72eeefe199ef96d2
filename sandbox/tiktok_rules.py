"""TikTok fake: configuration, the response envelope, the chunk rules and the per-token rate windows.

Kept apart from the router so each rule reads on its own, next to the doc it comes from
(reference/platform_apis.md section 3).
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from sandbox.faults import FaultRule
from sandbox.wire import DroppedResponse

MB = 1024 * 1024  # TikTok's "5 MB" / "64 MB" chunk bounds; read as MiB, the stricter lower bound
MIN_CHUNK = 5 * MB
MAX_CHUNK = 64 * MB
MAX_FINAL_CHUNK = 128 * MB
MAX_CHUNKS = 1000
MAX_VIDEO = 4 * 1024 * MB

ALL_PRIVACY = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY"]
ALL_SCOPES = "user.info.basic,video.publish,video.upload,video.list"

# Documented per-token limits (1-minute sliding windows); keys are the fault endpoint names.
RATE_LIMITS = {"creator_info": 20, "video.init": 6, "inbox.init": 6, "status.fetch": 30, "video.query": 600,
               "video.list": 600}


@dataclass
class TikTokConfig:
    """Knobs of the fake; override any of them with SandboxConfig.limits["tiktok"] = {...}."""

    token: str = "sandbox-token"  # the seed access token (never expires; shared by every sandbox platform)
    app_secret: str = "sandbox-app-secret"  # the client_secret the token endpoint accepts
    # The seed refresh token stands for "the user just authorised the app": every use of it starts a new
    # token family (as an authorization_code exchange would). Refresh tokens the fake issues rotate strictly.
    seed_refresh_token: str = "sandbox-refresh"
    open_id: str = "-000sandboxOpenId000"
    username: str = "metacentric.sandbox"
    nickname: str = "Metacentric Sandbox"
    scopes: str = ALL_SCOPES
    privacy_level_options: list[str] = field(default_factory=lambda: list(ALL_PRIVACY))
    max_video_post_duration_sec: int = 600
    daily_post_cap: int = 15  # spam_risk_too_many_posts after this many direct posts per sim day
    rate_limits: dict[str, int] = field(default_factory=lambda: dict(RATE_LIMITS))
    access_ttl_s: int = 7200  # Nov-2026 doc: 2 h
    refresh_ttl_s: int = 180 * 86400  # Nov-2026 doc: 180 days
    processing_s: float = 0.4  # upload complete -> PUBLISH_COMPLETE (sim seconds)
    moderation_s: float = 0.2  # PUBLISH_COMPLETE -> publicaly_available_post_id filled
    verified_domains: list[str] = field(
        default_factory=lambda: ["127.0.0.1", "localhost", "verified.example.com"])

    @classmethod
    def from_sandbox(cls, config: Any) -> TikTokConfig:
        overrides = dict(getattr(config, "limits", {}).get("tiktok", {}))
        base = cls(token=getattr(config, "token", cls.token),
                   app_secret=getattr(config, "app_secret", cls.app_secret))
        if "rate_limits" in overrides:
            overrides["rate_limits"] = {**RATE_LIMITS, **overrides["rate_limits"]}
        for key, value in overrides.items():
            if not hasattr(base, key):
                raise ValueError(f"SandboxConfig.limits['tiktok']: unknown setting {key!r}")
            setattr(base, key, value)
        return base


RATE_LIMITED = "The API rate limit was exceeded. Please try again later."
TOKEN_INVALID = "The access token is invalid or not found in the request."


class Dropped(Response):
    """wire.DroppedResponse as a starlette Response. FastAPI hands a Response to the server as it is; a
    plain ASGI callable returned from a route would be serialised to `{}` and answered 200."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await DroppedResponse()(scope, receive, send)


def as_response(answer: Response | DroppedResponse) -> Response:
    return Dropped() if isinstance(answer, DroppedResponse) else answer


def log_id(now: datetime) -> str:
    """TikTok log ids look like 202408291900 + hex; tests only need them unique."""
    return now.strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:20].upper()


def ok(data: dict[str, Any], now: datetime, status: int = 200) -> JSONResponse:
    lid = log_id(now)
    return JSONResponse({"data": data, "error": {"code": "ok", "message": "", "log_id": lid}},
                        status_code=status, headers={"x-tt-logid": lid})


def error(code: str, message: str, status: int, now: datetime) -> JSONResponse:
    lid = log_id(now)
    return JSONResponse({"data": {}, "error": {"code": code, "message": message, "log_id": lid}},
                        status_code=status, headers={"x-tt-logid": lid})


def oauth_error(code: str, description: str, status: int, now: datetime) -> JSONResponse:
    """The token endpoint has its own, flat error shape (oauth-error-handling doc)."""
    return JSONResponse({"error": code, "error_description": description, "log_id": log_id(now)},
                        status_code=status)


def render_fault(rule: FaultRule, now: datetime) -> JSONResponse:
    if rule.kind == "rate_limit":
        return error("rate_limit_exceeded", RATE_LIMITED, 429, now)
    if rule.kind == "quota":
        return error("spam_risk_too_many_posts", "The creator has reached today's post cap.", 403, now)
    if rule.kind == "token_expired":
        return error("access_token_invalid", TOKEN_INVALID, 401, now)
    return error("internal_error", "Something went wrong. Please try again later.", 500, now)


def render_oauth_fault(rule: FaultRule, now: datetime) -> JSONResponse:
    if rule.kind == "rate_limit":
        return oauth_error("rate_limit_exceeded", "Too many requests.", 429, now)
    if rule.kind == "token_expired":
        return oauth_error("invalid_grant", "Refresh token is invalid or expired.", 400, now)
    return oauth_error("server_error", "Internal error, please retry.", 500, now)


def chunk_rule_violation(video_size: Any, chunk_size: Any, total_chunk_count: Any) -> str | None:
    """Why (video_size, chunk_size, total_chunk_count) breaks the media transfer guide's rules, or None."""
    sizes = (video_size, chunk_size, total_chunk_count)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in sizes):
        return "video_size, chunk_size and total_chunk_count must be integers"
    if video_size <= 0 or video_size > MAX_VIDEO:
        return f"video_size must be between 1 and {MAX_VIDEO} bytes"
    if chunk_size <= 0 or chunk_size > video_size:
        return "chunk_size must be positive and at most video_size"
    if video_size < MIN_CHUNK:
        if chunk_size != video_size or total_chunk_count != 1:
            return "videos under 5 MB must be uploaded as one chunk with chunk_size equal to video_size"
        return None
    if chunk_size < MIN_CHUNK or chunk_size > MAX_CHUNK:
        return "each chunk must be at least 5 MB and at most 64 MB"
    expected = video_size // chunk_size
    if total_chunk_count != expected:
        return f"total_chunk_count must be floor(video_size / chunk_size) = {expected}"
    if not 1 <= total_chunk_count <= MAX_CHUNKS:
        return f"there must be between 1 and {MAX_CHUNKS} chunks"
    final = video_size - (total_chunk_count - 1) * chunk_size
    if final > MAX_FINAL_CHUNK:
        return "the final chunk may not exceed 128 MB; use a larger chunk_size"
    return None


def chunk_bounds(index: int, video_size: int, chunk_size: int, total_chunk_count: int) -> tuple[int, int]:
    """Inclusive byte range of chunk `index`; the final chunk absorbs the trailing bytes."""
    first = index * chunk_size
    last = video_size - 1 if index == total_chunk_count - 1 else first + chunk_size - 1
    return first, last


class RateWindows:
    """Per-(token, endpoint) sliding 1-minute windows, read off the sim clock.

    Kept in memory: a restarted sandbox forgets them, as a real window would have slid on anyway.
    """

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], deque[float]] = {}

    def allow(self, token: str, endpoint: str, limit: int, now: float) -> bool:
        calls = self._calls.setdefault((token, endpoint), deque())
        while calls and calls[0] <= now - 60.0:
            calls.popleft()
        if len(calls) >= limit:
            return False
        calls.append(now)
        return True
