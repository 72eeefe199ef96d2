"""OAuth tokens that refresh themselves: before they expire, once at a time per account, newest stored atomically.

A client asks `await tokens.access_token()` before each call and `await tokens.refresh_after_401(tok)`
when the platform says the token is dead. Refresh tokens that rotate (TikTok, X) are persisted the
moment they are issued, because the old one stops working.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from platforms.errors import AuthExpiredError


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # unix seconds; None = does not expire
    issued_at: float | None = None

    def expires_within(self, seconds: float, now: float) -> bool:
        return self.expires_at is not None and self.expires_at - now <= seconds


class TokenStore(Protocol):
    def token(self, platform: str, account: str) -> tuple[dict[str, Any], int] | None: ...

    def swap_token(self, platform: str, account: str, data: dict[str, Any], expected_version: int | None) -> bool: ...


def _fingerprint(tok: TokenSet) -> str:
    """Identifies the credentials given in settings without storing them twice."""
    return hashlib.sha256(f"{tok.access_token}|{tok.refresh_token}".encode()).hexdigest()[:16]


Refresher = Callable[[str], Awaitable[TokenSet]]  # refresh_token -> new TokenSet; raises AuthExpiredError

# One refresh at a time per account. asyncio locks belong to one event loop, so they are kept per loop.
_LOCKS: dict[tuple[str, str, int], asyncio.Lock] = {}


class TokenManager:
    def __init__(self, platform: str, account: str, store: TokenStore, initial: TokenSet,
                 refresher: Refresher | None, *, margin_fraction: float = 0.2,
                 clock: Callable[[], float] = time.time) -> None:
        self.platform = platform
        self.account = account
        self.store = store
        self.refresher = refresher
        self.margin_fraction = margin_fraction
        self.clock = clock
        self._seed: str | None = None
        self.refreshes = 0  # how many refresh calls this manager made (observable in tests)
        # The store keeps the newest (rotated) tokens. Settings win only when they changed since the
        # store was seeded from them, i.e. when someone re-authorised the account.
        seed = _fingerprint(initial)
        found = store.token(platform, account)
        if found is None:
            store.swap_token(platform, account, {**asdict(initial), "seed": seed}, None)
        elif found[0].get("seed") != seed:
            store.swap_token(platform, account, {**asdict(initial), "seed": seed}, found[1])

    def _current(self) -> tuple[TokenSet, int]:
        found = self.store.token(self.platform, self.account)
        assert found is not None
        data, version = found
        self._seed = data.get("seed")
        return TokenSet(**{k: v for k, v in data.items() if k != "seed"}), version

    def _lock(self) -> asyncio.Lock:
        return _LOCKS.setdefault((self.platform, self.account, id(asyncio.get_running_loop())), asyncio.Lock())

    def _margin(self, tok: TokenSet) -> float:
        if tok.expires_at is None or tok.issued_at is None:
            return 60.0
        return max(30.0, (tok.expires_at - tok.issued_at) * self.margin_fraction)

    async def access_token(self) -> str:
        tok, _ = self._current()
        if self.refresher is not None and tok.expires_within(self._margin(tok), self.clock()):
            tok = await self._refresh(stale=tok.access_token)
        return tok.access_token

    async def refresh_after_401(self, rejected: str) -> str:
        """The platform rejected `rejected`; refresh unless someone already did, then return the new token."""
        if self.refresher is None:
            raise AuthExpiredError(self.platform, "the access token was rejected and this account has no "
                                                  "refresh token; reconnect the account")
        return (await self._refresh(stale=rejected)).access_token

    async def _refresh(self, stale: str) -> TokenSet:
        assert self.refresher is not None
        async with self._lock():
            tok, version = self._current()
            if tok.access_token != stale and not tok.expires_within(self._margin(tok), self.clock()):
                return tok  # another caller refreshed while we waited
            if not tok.refresh_token:
                raise AuthExpiredError(self.platform, "no refresh token stored; reconnect the account")
            new = await self.refresher(tok.refresh_token)
            if new.refresh_token is None:  # platforms that do not rotate keep the old refresh token
                new = TokenSet(new.access_token, tok.refresh_token, new.expires_at, new.issued_at)
            self.refreshes += 1
            if not self.store.swap_token(self.platform, self.account, {**asdict(new), "seed": self._seed}, version):
                # Another process stored a newer token first: theirs wins (ours may already be revoked).
                return self._current()[0]
            return new
