"""TikTok fake: who a bearer token belongs to, and /v2/oauth/token/ with rotating refresh tokens.

Lifetimes follow the Nov-2026 doc (access 2 h, refresh 180 days, refresh tokens rotate: the previous one
stops working once a new one is issued). Expiry reads the sim clock so tests can fast-forward past it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from sandbox.state import SandboxState
from sandbox.tiktok_rules import TOKEN_INVALID, TikTokConfig, error, oauth_error
from sandbox.wire import form_and_query


@dataclass(frozen=True)
class Caller:
    token: str
    open_id: str
    scopes: frozenset[str]


class TokenRegistry:
    def __init__(self, state: SandboxState, cfg: TikTokConfig) -> None:
        self.state = state
        self.cfg = cfg

    def _ns(self, kind: str) -> dict[str, Any]:
        return self.state.ns("tiktok").setdefault(kind, {})  # type: ignore[no-any-return]

    def authenticate(self, request: Request) -> Caller | JSONResponse:
        """The caller behind `Authorization: Bearer ...`, or TikTok's access_token_invalid answer."""
        now = self.state.clock.now()
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token and token == self.cfg.token:
            return Caller(token, self.cfg.open_id, frozenset(self.cfg.scopes.split(",")))
        info = self._ns("access").get(token) if token else None
        if info is None or info["expires_at"] <= self.state.clock.time():
            return error("access_token_invalid", TOKEN_INVALID, 401, now)
        return Caller(token, info["open_id"], frozenset(info["scope"].split(",")))

    def _issue(self, open_id: str, scope: str) -> dict[str, Any]:
        now = self.state.clock.time()
        access, refresh = "act." + secrets.token_hex(24), "rft." + secrets.token_hex(24)
        access_ttl, refresh_ttl = self.cfg.access_ttl_s, self.cfg.refresh_ttl_s
        self._ns("access")[access] = {"open_id": open_id, "scope": scope, "expires_at": now + access_ttl}
        self._ns("refresh")[refresh] = {"open_id": open_id, "scope": scope, "rotated": False,
                                        "expires_at": now + refresh_ttl}
        return {"open_id": open_id, "scope": scope, "access_token": access, "expires_in": access_ttl,
                "refresh_token": refresh, "refresh_expires_in": refresh_ttl, "token_type": "Bearer"}

    async def token_endpoint(self, request: Request) -> Response:
        now = self.state.clock.now()
        form = await form_and_query(request)
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return oauth_error("invalid_request", "Content-Type must be application/x-www-form-urlencoded.",
                               400, now)
        if not form.get("client_key"):
            return oauth_error("invalid_request", "client_key is required.", 400, now)
        if not secrets.compare_digest(form.get("client_secret", ""), self.cfg.app_secret):
            return oauth_error("invalid_client", "Client authentication failed.", 401, now)
        grant = form.get("grant_type", "")
        with self.state.lock:
            if grant == "refresh_token":
                answer = self._refresh(form.get("refresh_token", ""))
            elif grant == "authorization_code":
                answer = self._exchange_code(form.get("code", ""))
            else:
                return oauth_error("unsupported_grant_type", f"grant_type {grant!r} is not supported.",
                                   400, now)
            if answer is None:
                return oauth_error("invalid_grant", "The refresh token or code is invalid, expired or "
                                   "revoked.", 400, now)
            self.state.save()
        return JSONResponse(answer)

    def _refresh(self, refresh_token: str) -> dict[str, Any] | None:
        if not refresh_token:
            return None
        if refresh_token == self.cfg.seed_refresh_token:
            return self._issue(self.cfg.open_id, self.cfg.scopes)
        info = self._ns("refresh").get(refresh_token)
        if info is None or info["rotated"] or info["expires_at"] <= self.state.clock.time():
            return None
        info["rotated"] = True  # rotation: this refresh token is spent the moment a new one is issued
        return self._issue(info["open_id"], info["scope"])

    def _exchange_code(self, code: str) -> dict[str, Any] | None:
        used = self._ns("codes")
        if not code or code in used:  # authorization codes are single-use
            return None
        used[code] = True
        return self._issue(self.cfg.open_id, self.cfg.scopes)
