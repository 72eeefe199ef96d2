"""Google OAuth for the YouTube client.

google-auth speaks the refresh-token grant; platforms.tokens.TokenManager decides when to refresh (one
refresh at a time, the result stored atomically); BearerHttp puts the current access token on every
request googleapiclient sends, so the SDK never refreshes behind our back.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import google_auth_httplib2
from google.auth import exceptions as auth_exceptions
from google.oauth2.credentials import Credentials
from googleapiclient.http import build_http

from platforms.tokens import Refresher, TokenSet
from platforms.youtube_errors import TRANSPORT_ERRORS, translate_refresh, translate_transport


class BearerHttp:
    """The `http=` object googleapiclient sends through: httplib2 plus `Authorization: Bearer <token>`.

    One per operation (httplib2.Http is not thread-safe); `build_http` keeps 308 from being followed
    as a redirect, which resumable uploads need.
    """

    def __init__(self, access_token: str) -> None:
        self._http = build_http()
        self._token = access_token

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
                **kwargs: Any) -> tuple[Any, bytes]:
        signed = {**(headers or {}), "authorization": f"Bearer {self._token}"}
        return self._http.request(uri, method=method, body=body, headers=signed, **kwargs)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._http.close()


def account_key(refresh_token: str) -> str:
    """The store's name for the account: a new refresh token (re-authorisation) starts a fresh token row.

    A truncated hash, so the refresh token itself is never a key or a log line.
    """
    return "oauth:" + hashlib.sha256(refresh_token.encode()).hexdigest()[:16]


def google_refresher(token_uri: str, client_id: str, client_secret: str,
                     clock: Callable[[], float]) -> Refresher:
    """A TokenManager refresher that runs google-auth's refresh grant in a worker thread."""

    def refresh_sync(refresh_token: str) -> TokenSet:
        creds = Credentials(  # type: ignore[no-untyped-call]
            token=None, refresh_token=refresh_token, token_uri=token_uri, client_id=client_id,
            client_secret=client_secret)
        http = build_http()
        try:
            creds.refresh(google_auth_httplib2.Request(http))  # type: ignore[no-untyped-call]
        except auth_exceptions.RefreshError as e:
            raise translate_refresh(e) from None  # the chained error would carry the token endpoint's reply
        except TRANSPORT_ERRORS as e:
            raise translate_transport(e) from None
        finally:
            http.close()
        # google-auth dates expiry by its own (naive UTC) clock; keep the lifetime, date it by ours.
        lifetime = 3600.0
        if creds.expiry is not None:
            lifetime = max(0.0, (creds.expiry - datetime.now(UTC).replace(tzinfo=None)).total_seconds())
        now = clock()
        return TokenSet(access_token=str(creds.token), refresh_token=None, expires_at=now + lifetime,
                        issued_at=now)

    async def refresh(refresh_token: str) -> TokenSet:
        return await asyncio.to_thread(refresh_sync, refresh_token)

    return refresh
