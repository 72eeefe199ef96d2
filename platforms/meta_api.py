"""The facebook-business SDK session for one ad account, and the throttle gate in front of it.

The SDK is synchronous; MetaClient runs each call in a worker thread. Every response's usage headers
(X-Business-Use-Case-Usage, X-App-Usage, X-Ad-Account-Usage) pass through `UsageGate.observe`, which
closes the gate for a business use case at ~90 % usage, so the client backs off before Meta throttles it.
A closed gate is also written to the store's platform-limits table, so every worker process respects it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from facebook_business.api import FacebookAdsApi, FacebookResponse
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from platforms.errors import RateLimitedError
from platforms.meta_errors import DEFAULT_THROTTLE_S, PLATFORM, THROTTLE_CODES, usage

SLOW_DOWN_AT_PCT = 90.0
ALL = "*"  # a gate key that closes every use case (app-level or ad-account-level usage)


class LimitStore(Protocol):
    def limit(self, platform: str, key: str) -> dict[str, Any] | None: ...

    def put_limit(self, platform: str, key: str, data: dict[str, Any]) -> None: ...


class UsageGate:
    """Which business use cases may be called now, from what Meta's usage headers said."""

    def __init__(self, account_key: str, store: LimitStore | None = None,
                 threshold_pct: float = SLOW_DOWN_AT_PCT) -> None:
        self.key = account_key
        self.store = store
        self.threshold = threshold_pct
        self._closed: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self.last_usage: dict[str, float] = {}  # observable: the latest percentages Meta reported

    def check(self, kind: str) -> None:
        """Raise RateLimitedError instead of calling while the gate for `kind` is closed."""
        now = datetime.now(UTC)
        closed = dict(self._closed)
        if self.store is not None:
            shared = self.store.limit(PLATFORM, self.key) or {}
            for k, iso in shared.get("closed", {}).items():
                until = datetime.fromisoformat(iso)
                closed[k] = max(until, closed.get(k, until))
        until = max((closed[k] for k in (kind, ALL) if k in closed), default=now)
        if until > now:
            raise RateLimitedError(PLATFORM, f"holding {kind} calls: Meta reported usage near its limit",
                                   until=until, code="usage")

    def observe(self, headers: Any, *, kind: str, throttled: bool = False) -> None:
        pct, wait = usage(headers)
        with self._lock:
            self.last_usage.update(pct)
        hot = {k for k, v in pct.items() if v >= self.threshold}
        if throttled:
            hot.add(kind)
        if not hot:
            return
        # Usage falls as the rolling hour moves on; wait what Meta says, or a minute, then look again.
        until = datetime.now(UTC) + timedelta(seconds=wait or DEFAULT_THROTTLE_S)
        keys = {ALL if k in ("app", "account") else k for k in hot}
        self.close(keys, until)

    def close(self, keys: set[str], until: datetime) -> None:
        with self._lock:
            for k in keys:
                self._closed[k] = max(until, self._closed.get(k, until))
            snapshot = {k: v.isoformat() for k, v in self._closed.items() if v > datetime.now(UTC)}
        if self.store is not None:
            shared = (self.store.limit(PLATFORM, self.key) or {}).get("closed", {})
            merged = {**shared, **{k: max(v, shared.get(k, v)) for k, v in snapshot.items()}}
            self.store.put_limit(PLATFORM, self.key, {"closed": merged})


class MeteredApi(FacebookAdsApi):  # type: ignore[misc]
    """FacebookAdsApi that shows every response's headers to the gate (success and Graph error alike)."""

    def __init__(self, session: FacebookSession, api_version: str, gate: UsageGate) -> None:
        super().__init__(session, api_version)
        self.gate = gate

    def call(self, method: str, path: Any, params: Any = None, headers: Any = None, files: Any = None,
             url_override: str | None = None, api_version: str | None = None) -> FacebookResponse:
        kind = "ads_insights" if "insights" in (path if isinstance(path, str) else "/".join(map(str, path))) \
            else "ads_management"
        try:
            response = super().call(method, path, params, headers, files, url_override, api_version)
        except FacebookRequestError as exc:
            self.gate.observe(exc.http_headers(), kind=kind, throttled=exc.api_error_code() in THROTTLE_CODES)
            raise
        self.gate.observe(response.headers(), kind=kind)
        return response


def build_api(*, graph_url: str, api_version: str, app_id: str, app_secret: str, access_token: str,
              timeout: float, gate: UsageGate) -> MeteredApi:
    """What FacebookAdsApi.init does, minus its process-wide side effects: it would make this api the global
    default (every SDK object built without api= would use it) and, unless told not to, install a crash
    reporter that posts uncaught exceptions to Meta."""
    session = FacebookSession(app_id, app_secret, access_token, timeout=timeout)
    # An instance attribute shadows the class attribute FacebookSession.GRAPH, so only this session moves;
    # the class attribute is read only by SDK helpers this client does not use (targeting search, uploads).
    session.GRAPH = graph_url.rstrip("/")
    return MeteredApi(session, api_version, gate)
