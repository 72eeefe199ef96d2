"""One authenticated call to X API v2, with X's answers translated ONCE into platforms.errors.

Also remembers X's rate-limit headers per endpoint in the store, so a call that X would refuse is refused
here first (X sends no Retry-After: x-rate-limit-reset, in epoch seconds, is the only "when").
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from platforms.errors import (
    AmbiguousWriteError,
    AuthExpiredError,
    PermanentError,
    PlatformError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
)
from platforms.tokens import Refresher, TokenManager, TokenSet

PLATFORM = "x"
# Codes this module puts on PermanentError for the two refusals callers act on.
DUPLICATE_CONTENT = "duplicate-content"
INVALID_MEDIA = "invalid-media"  # a media id X does not know (expired, or lost with an unfinished upload)
_MEDIA_PARAMETERS = {"media.media_ids", "media_id"}
# What the store remembers per endpoint, from which headers.
_HEADER_GROUPS = {"window": "x-rate-limit", "user_24h": "x-user-limit-24hour",
                  "app_24h": "x-app-limit-24hour"}

RequestArgs = Callable[[], dict[str, Any]]  # fresh httpx.request kwargs per attempt (bodies may be streams)


def query(params: Mapping[str, Any]) -> RequestArgs:
    """Request arguments for a GET with these query parameters."""
    frozen = dict(params)
    return lambda: {"params": dict(frozen)}


class LimitStore(Protocol):
    def limit(self, platform: str, key: str) -> dict[str, Any] | None: ...

    def put_limit(self, platform: str, key: str, data: dict[str, Any]) -> None: ...


def _epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def is_duplicate_content(problem: Mapping[str, Any]) -> bool:
    """X API v2 gives a duplicate post no code or problem type of its own: a 403 with type "about:blank",
    exactly like other refusals (e.g. replying to a deleted post). Its `detail` sentence is the only
    distinguishing mark, so this is the one place that reads message text."""
    return "duplicate content" in str(problem.get("detail", "")).lower()


def _problem(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(problem: Mapping[str, Any], resp: httpx.Response) -> str:
    errors = problem.get("errors") or []
    parts = [str(e.get("message") or e.get("detail")) for e in errors if isinstance(e, dict)]
    head = str(problem.get("detail") or problem.get("title") or f"HTTP {resp.status_code}")
    return "; ".join([head, *[p for p in parts if p and p != head]])


def _bad_parameters(problem: Mapping[str, Any]) -> set[str]:
    return {name for e in problem.get("errors") or [] if isinstance(e, dict)
            for name in (e.get("parameters") or {})}


class XApi:
    def __init__(self, http: httpx.AsyncClient, tokens: TokenManager, limits: LimitStore,
                 clock: Callable[[], float]) -> None:
        self.http = http
        self.tokens = tokens
        self.limits = limits
        self.clock = clock

    async def call(self, endpoint: str, method: str, url: str, args: RequestArgs | None = None, *,
                   write: bool = False) -> dict[str, Any]:
        """Make the call and return X's JSON body; raise a platforms.errors class otherwise.

        `write=True` marks a non-idempotent create: a lost answer or a 5xx then raises AmbiguousWriteError
        (X may have made the post), anything else raises TransientError for the caller to retry.
        """
        self.refuse_if_limited(endpoint)
        token = await self.tokens.access_token()
        resp = await self._send(method, url, token, args, write)
        if resp.status_code == 401:
            token = await self.tokens.refresh_after_401(token)
            resp = await self._send(method, url, token, args, write)
            if resp.status_code == 401:
                raise AuthExpiredError(PLATFORM, "X rejected a freshly refreshed access token; reconnect the "
                                                 "X account")
        self._remember(endpoint, resp)
        if resp.is_success:
            return _problem(resp)
        raise translate(resp, self.clock, write=write)

    async def _send(self, method: str, url: str, token: str, args: RequestArgs | None,
                    write: bool) -> httpx.Response:
        kwargs = args() if args else {}
        headers = {**kwargs.pop("headers", {}), "authorization": f"Bearer {token}"}
        try:
            return await self.http.request(method, url, headers=headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached X: always safe to try again.
            raise TransientError(PLATFORM, f"could not reach X ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            if write:
                raise AmbiguousWriteError(PLATFORM, f"the connection broke before X answered "
                                                    f"({type(exc).__name__}); the post may exist") from exc
            raise TransientError(PLATFORM, f"the connection to X broke ({type(exc).__name__})") from exc

    # rate limits ------------------------------------------------------------------------------------------
    def refuse_if_limited(self, endpoint: str) -> None:
        known = self.limits.limit(PLATFORM, endpoint) or {}
        now = self.clock()
        for group in ("user_24h", "app_24h"):
            spent = known.get(group)
            if spent and spent["remaining"] <= 0 and spent["reset"] > now:
                raise QuotaExhaustedError(PLATFORM, f"{endpoint}: 24-hour cap spent (known before calling)",
                                          until=_epoch(spent["reset"]), code=group)
        window = known.get("window")
        if window and window["remaining"] <= 0 and window["reset"] > now:
            raise RateLimitedError(PLATFORM, f"{endpoint}: rate window spent (known before calling)",
                                   until=_epoch(window["reset"]), code="rate-limit")

    def _remember(self, endpoint: str, resp: httpx.Response) -> None:
        seen: dict[str, Any] = {}
        for group, prefix in _HEADER_GROUPS.items():
            h = resp.headers
            try:
                seen[group] = {"limit": int(h.get(f"{prefix}-limit", "0")),
                               "remaining": int(h[f"{prefix}-remaining"]), "reset": int(h[f"{prefix}-reset"])}
            except (KeyError, ValueError):
                continue
        if seen:
            known = self.limits.limit(PLATFORM, endpoint) or {}
            self.limits.put_limit(PLATFORM, endpoint, {**known, **seen})


# translation ----------------------------------------------------------------------------------------------
def translate(resp: httpx.Response, clock: Callable[[], float], *, write: bool = False) -> PlatformError:
    status, problem = resp.status_code, _problem(resp)
    message, kind = _message(problem, resp), str(problem.get("type", ""))
    code = kind.rsplit("/", 1)[-1] if kind and kind != "about:blank" else f"http-{status}"
    if status == 429:
        return _throttled(resp, problem, message, code, clock)
    if status >= 500:
        if write:
            return AmbiguousWriteError(PLATFORM, f"X failed while creating ({message}); the post may exist",
                                       code=code)
        return TransientError(PLATFORM, message, code=code)
    if status == 403 and is_duplicate_content(problem):
        return PermanentError(PLATFORM, message, code=DUPLICATE_CONTENT)
    if status in (400, 404) and _bad_parameters(problem) & _MEDIA_PARAMETERS:
        return PermanentError(PLATFORM, message, code=INVALID_MEDIA)
    if status == 401:
        return AuthExpiredError(PLATFORM, message, code=code)
    return PermanentError(PLATFORM, message, code=code)


def _throttled(resp: httpx.Response, problem: Mapping[str, Any], message: str, code: str,
               clock: Callable[[], float]) -> PlatformError:
    h = resp.headers
    if code == "usage-capped":
        return QuotaExhaustedError(PLATFORM, message, until=_cap_lifts(problem, clock()), code=code)
    for prefix in ("x-user-limit-24hour", "x-app-limit-24hour"):
        if h.get(f"{prefix}-remaining") == "0" and h.get(f"{prefix}-reset", "").isdigit():
            return QuotaExhaustedError(PLATFORM, f"{message} (24-hour cap)",
                                       until=_epoch(int(h[f"{prefix}-reset"])), code=prefix)
    reset = h.get("x-rate-limit-reset", "")
    until = _epoch(int(reset)) if reset.isdigit() else _epoch(clock() + 60)
    return RateLimitedError(PLATFORM, message, until=until, code="rate-limit")


def _cap_lifts(problem: Mapping[str, Any], now_ts: float) -> datetime:
    """A usage cap names its period, not a time: a daily cap lifts within a day, a monthly one next month."""
    if str(problem.get("period", "")).lower() == "daily":
        return _epoch(now_ts + 86400)
    now = _epoch(now_ts)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return _epoch(calendar.timegm((year, month, 1, 0, 0, 0)))


def token_refresher(http: httpx.AsyncClient, client_id: str, client_secret: str,
                    clock: Callable[[], float], configured: str | None = None) -> Refresher:
    """POST /2/oauth2/token grant_type=refresh_token. X rotates: the answer carries the next refresh token.

    If X refuses the stored refresh token and the configured one differs, try the configured one once: an
    operator who reconnected the account by setting a new refresh token must not be shadowed by the dead
    token still in the store.
    """

    async def refresh(refresh_token: str) -> TokenSet:
        try:
            return await exchange(refresh_token)
        except AuthExpiredError:
            if not configured or configured == refresh_token:
                raise
            return await exchange(configured)

    async def exchange(refresh_token: str) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
        # Confidential clients authenticate with Basic; public (PKCE-only) clients just name themselves.
        auth: dict[str, Any] = {"auth": httpx.BasicAuth(client_id, client_secret)} if client_secret else {}
        try:
            resp = await http.post("/2/oauth2/token", data=form, **auth)
        except httpx.TransportError as exc:
            raise TransientError(PLATFORM, f"X token endpoint unreachable ({type(exc).__name__})") from exc
        if resp.status_code in (400, 401):
            reason = _problem(resp).get("error") or f"HTTP {resp.status_code}"
            raise AuthExpiredError(PLATFORM, f"X refused the refresh token ({reason}); reconnect the account")
        if not resp.is_success:
            raise translate(resp, clock)
        body, now = resp.json(), clock()
        return TokenSet(access_token=body["access_token"], refresh_token=body.get("refresh_token"),
                        expires_at=now + float(body.get("expires_in", 7200)), issued_at=now)

    return refresh
