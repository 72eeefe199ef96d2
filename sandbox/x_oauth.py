"""POST /2/oauth2/token: OAuth 2.0 (PKCE) token endpoint with refresh-token rotation.

Confidential clients authenticate with HTTP Basic (client_id:client_secret), public ones send client_id in
the form. grant_type=refresh_token swaps a refresh token for a new access token (2 h of simulated time)
and a NEW refresh token; the old one stops working at once. grant_type=authorization_code stands in for
the consent screen: any fresh code is accepted once, so a test can connect a brand-new account.

The bootstrap refresh token (what Settings.for_sandbox hands out) is a fixed dev credential that is never
retired, so every fresh store talking to one long-running sandbox can still connect; the tokens it yields
rotate strictly like real ones.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.faults import FaultRule
from sandbox.state import SandboxState
from sandbox.wire import with_faults
from sandbox.x_rules import PLATFORM, SANDBOX_USER, RateBook, limits, problem

BOOTSTRAP_REFRESH_TOKEN = "sandbox-refresh"  # the value Settings.for_sandbox sets for x_refresh_token
SCOPE = "tweet.read tweet.write users.read offline.access media.write"


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _render_fault(rule: FaultRule) -> JSONResponse:
    if rule.kind == "token_expired":
        return _oauth_error("invalid_request", "Value passed for the token was invalid.")
    if rule.kind in ("rate_limit", "quota"):
        return problem(429, "Too Many Requests", "Too Many Requests")
    return problem(503, "Service Unavailable", "Service Unavailable")


def _client_id(request: Request, form: dict[str, str], app_secret: str) -> str | None:
    """The authenticated client: Basic auth must carry the app secret; public clients just name themselves."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return client_id if client_id and hmac.compare_digest(secret, app_secret) else None
    return form.get("client_id") or None


def token_route(state: SandboxState, config: Any) -> Route:
    ns = state.ns(PLATFORM)

    def issue(user_id: str, client_id: str) -> dict[str, Any]:
        ttl = int(limits(state, config.limits.get(PLATFORM, {}))["token_ttl_s"])
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires_at = state.clock.time() + ttl
        ns.setdefault("access_tokens", {})[access] = {"user_id": user_id, "expires_at": expires_at}
        ns.setdefault("refresh_tokens", {})[refresh] = {"user_id": user_id, "client_id": client_id,
                                                        "active": True}
        state.save()
        return {"token_type": "bearer", "expires_in": ttl, "access_token": access, "scope": SCOPE,
                "refresh_token": refresh}

    async def grant(form: dict[str, str], client_id: str) -> JSONResponse:
        kind = form.get("grant_type", "")
        if kind == "refresh_token":
            token = form.get("refresh_token", "")
            if token == BOOTSTRAP_REFRESH_TOKEN:
                return JSONResponse(issue(str(SANDBOX_USER["id"]), client_id))
            known = ns.get("refresh_tokens", {}).get(token)
            if known is None or not known["active"] or known["client_id"] != client_id:
                return _oauth_error("invalid_request", "Value passed for the token was invalid.")
            known["active"] = False  # rotation: this refresh token is spent
            return JSONResponse(issue(known["user_id"], client_id))
        if kind == "authorization_code":
            code = form.get("code", "")
            used = ns.setdefault("used_codes", [])
            if not code or not form.get("code_verifier") or code in used:
                return _oauth_error("invalid_request", "Value passed for the authorization code was invalid.")
            used.append(code)
            return JSONResponse(issue(str(SANDBOX_USER["id"]), client_id))
        return _oauth_error("unsupported_grant_type", f"grant_type {kind!r} is not supported.")

    async def token(request: Request) -> Any:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        client_id = _client_id(request, form, config.app_secret)
        if client_id is None:
            return _oauth_error("unauthorized_client", "Missing valid authorization header", status=401)
        book = RateBook(state, config.limits.get(PLATFORM, {}))
        headers, exceeded = book.hit("oauth.token", "app:" + client_id)
        if exceeded:
            response: Any = problem(429, "Too Many Requests", "Too Many Requests")
        else:
            response = await with_faults(state, PLATFORM, "oauth.token", _render_fault,
                                         lambda: grant(form, client_id))
        if isinstance(response, JSONResponse):
            for name, value in headers.items():
                response.headers.setdefault(name, value)
        return response

    return Route("/2/oauth2/token", token, methods=["POST"])
