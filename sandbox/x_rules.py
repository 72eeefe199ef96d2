"""api.x.com's house rules for the X fake: limits, problem JSON, rate-limit windows and headers, bearer auth.

Every limit is configurable (X's numbers changed with each pricing era, see reference §5.4): defaults
here, then `SandboxConfig.limits["x"]`, then run-time overrides from PUT /_admin/x/limits (persisted in
the state file). Windows are fixed windows on the sandbox's simulated clock.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.faults import FaultRule
from sandbox.state import SandboxState
from sandbox.wire import DroppedResponse, with_faults

PLATFORM = "x"
SANDBOX_USER = {"id": "1700000000000000001", "name": "Metacentric Sandbox", "username": "metacentric_sbx"}
PROBLEMS = "https://api.twitter.com/2/problems/"

DEFAULT_LIMITS: dict[str, Any] = {
    # endpoint -> [requests per user per window, window seconds]. Posts/timeline numbers are X's 2026
    # per-endpoint table; X publishes no media or users/me numbers there, these are generous guesses.
    "windows": {
        "tweets.create": [100, 900],
        "tweets.lookup": [5000, 900],
        "users.me": [75, 900],
        "users.tweets": [900, 900],
        "media.initialize": [500, 900],
        "media.append": [2500, 900],
        "media.finalize": [500, 900],
        "media.status": [1000, 900],
        "oauth.token": [300, 900],
    },
    # 24-hour caps (x-user-limit-24hour-*, x-app-limit-24hour-*). Legacy Basic tier: user tweets.create 100.
    "user_24h": {"tweets.create": 2400},
    "app_24h": {"tweets.create": 10000},
    "duplicate_window_s": 86400,  # identical text by the same user inside this window -> 403
    "max_segment_bytes": 5 * 1024 * 1024,  # one APPEND segment (X: "<= 5 MB")
    "max_total_bytes": {"tweet_video": 512 * 1024 * 1024, "amplify_video": 512 * 1024 * 1024,
                        "tweet_gif": 15 * 1024 * 1024, "tweet_image": 5 * 1024 * 1024},
    "media_expires_s": 86400,  # a media id dies this long after initialize
    "processing_s": 1.0,  # finalize -> succeeded (pending for the first fifth)
    "timeline_lag_s": 0.0,  # a new post shows in GET /2/users/:id/tweets after this (eventual consistency)
    "token_ttl_s": 7200,  # OAuth 2.0 user access tokens live 2 h
}

_NESTED = ("windows", "user_24h", "app_24h", "max_total_bytes")


def limits(state: SandboxState, config_limits: dict[str, Any]) -> dict[str, Any]:
    """The effective limits: defaults, then the config's, then run-time overrides."""
    merged = {k: (dict(v) if k in _NESTED else v) for k, v in DEFAULT_LIMITS.items()}
    for layer in (config_limits, state.ns(PLATFORM).get("limits", {})):
        for key, value in layer.items():
            if key in _NESTED and isinstance(value, dict):
                merged[key].update(value)
            else:
                merged[key] = value
    return merged


_TWITTER_EPOCH_MS = 1288834974657


def next_id(state: SandboxState) -> str:
    """A snowflake-like id (19 digits, time-ordered) from the simulated clock; strictly increasing."""
    with state.lock:
        ns = state.ns(PLATFORM)
        candidate = (int(state.clock.time() * 1000) - _TWITTER_EPOCH_MS) << 22
        new = max(candidate, int(ns.get("last_id", 0)) + 1)
        ns["last_id"] = new
    return str(new)


# problem JSON (RFC 7807 style, as X API v2 answers) -------------------------------------------------------
def problem(status: int, title: str, detail: str, type_: str = "about:blank", *,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"title": title, "type": type_, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def invalid_request(parameter: str, values: list[str], message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"parameters": {parameter: values}, "message": message}],
                         "title": "Invalid Request",
                         "detail": "One or more parameters to your request was invalid.",
                         "type": PROBLEMS + "invalid-request"}, status_code=400)


def unauthorized() -> JSONResponse:
    return problem(401, "Unauthorized", "Unauthorized")


def render_fault(rule: FaultRule, window_s: float, now: float) -> JSONResponse:
    if rule.kind == "rate_limit":
        # A throttled answer says "come back when the window turns over"; a fresh full window keeps it simple.
        reset = str(math.ceil(now + window_s))
        return problem(429, "Too Many Requests", "Too Many Requests",
                       headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset})
    if rule.kind == "quota":
        return problem(429, "UsageCapExceeded", "Usage cap exceeded: Monthly product cap",
                       PROBLEMS + "usage-capped", period="Monthly", scope="Product")
    if rule.kind == "token_expired":
        return unauthorized()
    return problem(503, "Service Unavailable", "Service Unavailable")


# rate-limit windows -----------------------------------------------------------------------------------------
class RateBook:
    """Fixed windows per (endpoint, user), plus per-user and per-app 24-hour caps, on the simulated clock."""

    def __init__(self, state: SandboxState, config_limits: dict[str, Any]) -> None:
        self.state = state
        self.config_limits = config_limits

    def _window(self, key: str, length: float, now: float) -> list[float]:
        book = self.state.ns(PLATFORM).setdefault("rate", {})
        win = book.get(key)
        if win is None or now >= win[0] + length:
            win = book[key] = [now, 0]
        return win  # type: ignore[no-any-return]

    def hit(self, endpoint: str, user: str) -> tuple[dict[str, str], bool]:
        """Count one request; returns the headers to send and whether a limit was already spent."""
        lim = limits(self.state, self.config_limits)
        now = self.state.clock.time()
        limit, length = lim["windows"].get(endpoint, [900, 900])
        day = 86400.0
        checks = [("x-rate-limit", f"{endpoint}|{user}", int(limit), float(length))]
        if endpoint in lim["user_24h"]:
            cap = int(lim["user_24h"][endpoint])
            checks.append(("x-user-limit-24hour", f"24h|{endpoint}|{user}", cap, day))
        if endpoint in lim["app_24h"]:
            checks.append(("x-app-limit-24hour", f"24h|{endpoint}|app", int(lim["app_24h"][endpoint]), day))
        windows = [(prefix, self._window(key, length, now), limit, length)
                   for prefix, key, limit, length in checks]
        exceeded = any(win[1] >= limit for _, win, limit, _ in windows)
        headers: dict[str, str] = {}
        for prefix, win, limit, length in windows:
            if not exceeded:
                win[1] += 1
            headers[f"{prefix}-limit"] = str(limit)
            headers[f"{prefix}-remaining"] = str(max(0, limit - int(win[1])))
            headers[f"{prefix}-reset"] = str(math.ceil(win[0] + length))
        return headers, exceeded


# auth -----------------------------------------------------------------------------------------------------
def bearer_user(state: SandboxState, request: Request, bootstrap_token: str) -> str | None:
    """The user an OAuth 2.0 user-context bearer token belongs to, or None if it is unknown or expired."""
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    token = auth[7:].strip()
    if token == bootstrap_token:  # the sandbox's fixed dev credential never expires
        return str(SANDBOX_USER["id"])
    issued = state.ns(PLATFORM).get("access_tokens", {}).get(token)
    if issued is None or issued["expires_at"] <= state.clock.time():
        return None
    return str(issued["user_id"])


Handler = Callable[[str], Awaitable[Any]]


async def guarded(state: SandboxState, config: Any, request: Request, endpoint: str, call: Handler,
                  *, faults: bool = True) -> Any:
    """Auth, then the rate window, then injected faults, then `call(user)`; rate headers go on the answer.

    With faults=False the handler injects its own (media.append drops the connection mid-body).
    """
    user = bearer_user(state, request, config.token)
    if user is None:
        return unauthorized()
    book = RateBook(state, config.limits.get(PLATFORM, {}))
    headers, exceeded = book.hit(endpoint, user)
    if exceeded:
        response: Any = problem(429, "Too Many Requests", "Too Many Requests")
    elif faults:
        window_s = float(limits(state, config.limits.get(PLATFORM, {}))["windows"].get(endpoint, [0, 900])[1])
        response = await with_faults(state, PLATFORM, endpoint,
                                     lambda rule: render_fault(rule, window_s, state.clock.time()),
                                     lambda: call(user))
    else:
        response = await call(user)
    if isinstance(response, Response):
        for name, value in headers.items():
            response.headers.setdefault(name, value)
    elif not isinstance(response, DroppedResponse):
        raise TypeError(f"{endpoint}: handler returned {type(response).__name__}, not a response")
    return response
