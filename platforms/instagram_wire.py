"""HTTP for the Instagram client: Graph calls and rupload uploads; the ONE place their errors are translated.

Graph errors are classified from `code` / `error_subcode` / `is_transient`, the HTTP status and the
X-Business-Use-Case-Usage header; rupload errors from the HTTP status and `debug_info.retriable`.
Message text is carried along for people, never parsed. The access token travels in the Authorization
header (never in a URL, so it cannot reach a log line) and is never put in an exception message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

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
from platforms.files import aiter_range

PLATFORM = "instagram"
# The publishing-limit answer does not say when the rolling window frees; look again in an hour.
QUOTA_RETRY = timedelta(hours=1)
RATE_LIMIT_FALLBACK = timedelta(minutes=1)
RATE_LIMIT_CODES = {4, 17, 32, 613, 80002}
TRANSIENT_CODES = {-2, -1, 1, 2}
# Subcodes after which the container can never be published: make a new one.
DEAD_CONTAINER_SUBCODES = {2207006, 2207020, 2207032, 2207053}
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class ContainerNotReady(TransientError):
    """9007/2207027: the container is not ready to publish yet; poll it again, then retry the publish."""


class ContainerUnusable(TransientError):
    """The container expired or broke; a new container will be created (retrying the same one cannot work)."""


class UploadOffsetMismatch(TransientError):
    """rupload has a different byte count than the offset we sent; ask how far it got and resume."""


def now() -> datetime:
    return datetime.now(UTC)


def _regain_after(headers: httpx.Headers) -> timedelta:
    """estimated_time_to_regain_access (minutes) from X-Business-Use-Case-Usage, if the platform sent it."""
    try:
        usage = json.loads(headers.get("x-business-use-case-usage", "") or "{}")
        minutes = max((float(entry.get("estimated_time_to_regain_access") or 0)
                       for entries in usage.values() for entry in entries), default=0.0)
    except (ValueError, TypeError, AttributeError):
        minutes = 0.0
    return timedelta(minutes=minutes) if minutes > 0 else RATE_LIMIT_FALLBACK


def translate_graph_error(status: int, error: dict[str, Any], headers: httpx.Headers) -> PlatformError:
    code = error.get("code")
    sub = error.get("error_subcode")
    tag = f"{code}/{sub}" if sub is not None else str(code)
    reason = str(error.get("error_user_title") or error.get("message") or f"HTTP {status}")
    if code in (190, 102):
        return AuthExpiredError(PLATFORM, "the access token was rejected; reconnect the Instagram account "
                                          "(a long-lived Facebook Login token)", code=tag)
    if code == 9 and sub == 2207042:
        return QuotaExhaustedError(PLATFORM, reason, until=now() + QUOTA_RETRY, code=tag)
    if code == 9007 and sub == 2207027:
        return ContainerNotReady(PLATFORM, reason, code=tag)
    if sub in DEAD_CONTAINER_SUBCODES:
        return ContainerUnusable(PLATFORM, reason, code=tag)
    if code == 4 and sub == 2207051:  # suspected spam: retrying makes it worse
        return PermanentError(PLATFORM, reason, code=tag)
    if code in RATE_LIMIT_CODES:
        return RateLimitedError(PLATFORM, reason, until=now() + _regain_after(headers), code=tag)
    if code in TRANSIENT_CODES or error.get("is_transient") is True or status >= 500:
        return TransientError(PLATFORM, reason, code=tag)
    return PermanentError(PLATFORM, reason, code=tag)


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


class InstagramHttp:
    """Authenticated Graph and rupload calls that return JSON or raise a platforms.errors class."""

    def __init__(self, http: httpx.AsyncClient, *, graph_base: str, upload_base: str, api_version: str,
                 access_token: str, app_secret: str | None) -> None:
        self.http = http
        self.graph_base = graph_base.rstrip("/") + "/" + api_version
        self.upload_base = upload_base.rstrip("/")
        self.api_version = api_version
        self._token = access_token
        # With "Require app secret" on, Graph wants appsecret_proof next to the token.
        self._proof = (hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()
                       if app_secret else None)

    def _params(self, params: dict[str, str]) -> dict[str, str]:
        return {**params, "appsecret_proof": self._proof} if self._proof else params

    async def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return await self._graph("GET", path, params=self._params(params), write=False)

    async def post(self, path: str, data: dict[str, str], *, write: bool) -> dict[str, Any]:
        """POST form data. `write`: the call publishes something, so a lost response is ambiguous."""
        return await self._graph("POST", path, params=self._params({}), data=data, write=write)

    async def _graph(self, method: str, path: str, *, params: dict[str, str], write: bool,
                     data: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            resp = await self.http.request(method, f"{self.graph_base}/{path}", params=params, data=data,
                                           headers={"Authorization": f"Bearer {self._token}"})
        except _NOT_SENT as exc:
            raise TransientError(PLATFORM, f"could not reach the Graph API ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            if write:
                what = f"the response to {path.split('/')[-1]} was lost ({type(exc).__name__})"
                raise AmbiguousWriteError(PLATFORM, f"{what}; it may have been applied") from exc
            raise TransientError(PLATFORM, f"Graph API call failed ({type(exc).__name__})") from exc
        body = _json(resp)
        # Graph signals failure by an `error` key, whatever the HTTP status.
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            raise translate_graph_error(resp.status_code, body["error"], resp.headers)
        if resp.status_code >= 500:
            raise TransientError(PLATFORM, f"HTTP {resp.status_code} from the Graph API")
        if resp.status_code >= 400 or not isinstance(body, dict):
            raise PermanentError(PLATFORM, f"unexpected HTTP {resp.status_code} answer from the Graph API")
        return body

    def upload_url(self, container_id: str) -> str:
        return f"{self.upload_base}/ig-api-upload/{self.api_version}/{container_id}"

    async def upload(self, container_id: str, path: str, offset: int, size: int) -> None:
        """Stream bytes [offset, size) of the file to rupload, straight from disk."""
        headers = {"Authorization": f"OAuth {self._token}", "offset": str(offset), "file_size": str(size),
                   "Content-Type": "application/octet-stream", "Content-Length": str(size - offset)}
        try:
            resp = await self.http.post(self.upload_url(container_id), headers=headers,
                                        content=aiter_range(path, offset, size - offset))
        except httpx.TransportError as exc:
            raise TransientError(PLATFORM, f"the upload was interrupted ({type(exc).__name__}); it resumes "
                                           "from the bytes already received") from exc
        body = _json(resp)
        if resp.status_code == 200 and isinstance(body, dict) and body.get("success") is True:
            return
        if resp.status_code < 400:  # an answer we cannot read: ask how far the bytes got, then resume
            raise TransientError(PLATFORM, f"unreadable upload answer (HTTP {resp.status_code}); it resumes "
                                           "from the bytes received")
        debug = body.get("debug_info", {}) if isinstance(body, dict) else {}
        kind = str(debug.get("type") or f"HTTP {resp.status_code}")
        if resp.status_code == 412:
            raise UploadOffsetMismatch(PLATFORM, "upload offset out of step", code=kind)
        if resp.status_code == 401:
            raise AuthExpiredError(PLATFORM, "the upload host rejected the access token; reconnect the "
                                             "Instagram account", code=kind)
        if resp.status_code == 429:
            raise RateLimitedError(PLATFORM, "upload rate limited", until=now() + RATE_LIMIT_FALLBACK,
                                   code=kind)
        if resp.status_code >= 500 or debug.get("retriable") is True:
            raise TransientError(PLATFORM, "the upload host failed; retry", code=kind)
        # rupload refused the bytes for good (ProcessingFailedError): this container is dead.
        raise ContainerUnusable(PLATFORM, "the upload host refused the video for this container", code=kind)
