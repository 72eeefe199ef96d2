"""Meta's failures, translated once into platforms.errors, from codes, subcodes, is_transient and headers.

Table: reference/platform_apis.md §1.4. Messages are the platform's own text with any credential scrubbed
out; request exceptions are described by their kind only (their text carries the URL, and the SDK puts
access_token and appsecret_proof in every URL's query string).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from facebook_business.exceptions import FacebookError, FacebookRequestError

from platforms.errors import (
    AmbiguousWriteError,
    AuthExpiredError,
    PermanentError,
    PlatformError,
    RateLimitedError,
    TransientError,
)

PLATFORM = "meta"
THROTTLE_CODES = frozenset({4, 17, 32, 341, 613, *range(80000, 80015)})
AUTH_CODES = frozenset({102, 190})
TRANSIENT_CODES = frozenset({1, 2, -2})
# (code, subcode) pairs the insights docs call passing: a request timeout or an intermittent failure.
TRANSIENT_PAIRS = frozenset({(100, 1504018), (2, 1504038), (2, 1504043)})
DEFAULT_THROTTLE_S = 60.0  # when a throttle says nothing about when access comes back

# What a request exception means for a write: only "never connected" is known not to have reached Meta.
NOT_SENT = (requests.exceptions.ConnectTimeout,)
TIMEOUT_CODE = "timeout"


def _headers_get(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    if isinstance(headers, Mapping):
        value = headers.get(name)
        if value is None:  # requests' headers are case-insensitive; a plain dict may not be
            value = next((v for k, v in headers.items() if str(k).lower() == name.lower()), None)
        return None if value is None else str(value)
    return None


def _json_header(headers: Any, name: str) -> Any:
    raw = _headers_get(headers, name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def usage(headers: Any) -> tuple[dict[str, float], float]:
    """Usage percentages by business use case ("app" and "account" for the other two headers), and the
    longest wait in seconds any header announces before access is regained."""
    pct: dict[str, float] = {}
    wait = 0.0
    buc = _json_header(headers, "x-business-use-case-usage")
    if isinstance(buc, dict):
        for entries in buc.values():
            for e in entries if isinstance(entries, list) else []:
                kind = str(e.get("type", "ads_management"))
                used = max(float(e.get(k, 0) or 0) for k in ("call_count", "total_cputime", "total_time"))
                pct[kind] = max(pct.get(kind, 0.0), used)
                wait = max(wait, 60.0 * float(e.get("estimated_time_to_regain_access", 0) or 0))
    app = _json_header(headers, "x-app-usage")
    if isinstance(app, dict):
        pct["app"] = max(float(app.get(k, 0) or 0) for k in ("call_count", "total_cputime", "total_time"))
    acct = _json_header(headers, "x-ad-account-usage")
    if isinstance(acct, dict):
        pct["account"] = float(acct.get("acc_id_util_pct", 0) or 0)
        if pct["account"] >= 100:
            wait = max(wait, float(acct.get("reset_time_duration", 0) or 0))
    return pct, wait


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def translate(exc: BaseException, *, write: bool, secrets: Iterable[str] = ()) -> PlatformError:
    """The platforms.errors class for whatever the SDK or requests raised."""
    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, FacebookRequestError):
        return _from_graph(exc, list(secrets))
    if isinstance(exc, requests.exceptions.RequestException):
        kind = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "connection lost"
        code = TIMEOUT_CODE if isinstance(exc, requests.exceptions.ReadTimeout) else type(exc).__name__
        if write and not isinstance(exc, NOT_SENT):
            return AmbiguousWriteError(PLATFORM, f"request {kind} before the answer arrived; the write may "
                                                 "or may not have happened", code=code)
        return TransientError(PLATFORM, f"request {kind}", code=code)
    if isinstance(exc, FacebookError):
        return PermanentError(PLATFORM, f"SDK refused the request: {type(exc).__name__}")
    raise exc


def _from_graph(exc: FacebookRequestError, secrets: list[str]) -> PlatformError:
    code = exc.api_error_code()
    subcode = exc.api_error_subcode()
    status = exc.http_status() or 0
    label = None if code is None else (f"{code}/{subcode}" if subcode else str(code))
    message = scrub(str(exc.api_error_message() or f"HTTP {status} without a Graph error body"), secrets)
    if code in THROTTLE_CODES:
        _, wait = usage(exc.http_headers())
        until = datetime.now(UTC) + timedelta(seconds=wait or DEFAULT_THROTTLE_S)
        return RateLimitedError(PLATFORM, message, until=until, code=label)
    if code in AUTH_CODES:
        return AuthExpiredError(PLATFORM, message, code=label)
    if (code in TRANSIENT_CODES or (code, subcode) in TRANSIENT_PAIRS or exc.api_transient_error()
            or status >= 500):
        return TransientError(PLATFORM, message, code=label)
    # 100 (bad parameter), 10 and 200-299 (permission), 506 (duplicate), 368 (policy block: a person
    # must look) and anything unknown: retrying the same request cannot help.
    return PermanentError(PLATFORM, message, code=label)
