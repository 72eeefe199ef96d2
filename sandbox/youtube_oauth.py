"""oauth2.googleapis.com/token: the refresh-token grant, as google-auth speaks it.

Issued access tokens are remembered with their expiry in sim time, so the Data API and Analytics fakes
answer 401 once a token is older than `expires_in`. A refresh token marked revoked (admin endpoint or
the "token_expired" fault) answers 400 invalid_grant, which no retry can fix.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse, Response
from starlette.requests import Request

from sandbox.faults import FaultRule
from sandbox.state import SandboxState
from sandbox.youtube_common import NS, channel_for, limits, with_faults

SCOPES = ("https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly "
          "https://www.googleapis.com/auth/yt-analytics.readonly")


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _render_fault(rule: FaultRule) -> Response:
    if rule.kind == "token_expired":
        return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
    if rule.kind in ("rate_limit", "quota"):
        return oauth_error(429, "rate_limit_exceeded", "Rate limit exceeded.")
    return oauth_error(503, "temporarily_unavailable", "The service is currently unavailable.")


def revoke(state: SandboxState, refresh_token: str) -> None:
    ns = state.ns(NS)
    revoked = ns.setdefault("revoked", [])
    if refresh_token not in revoked:
        revoked.append(refresh_token)
    state.save()


def token_endpoint(state: SandboxState, client_secret: str) -> Any:
    async def token(request: Request) -> Response:
        async def grant() -> Response:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            if form.get("grant_type") != "refresh_token":
                return oauth_error(400, "unsupported_grant_type", "Invalid grant_type")
            if not form.get("client_id") or form.get("client_secret") != client_secret:
                return oauth_error(401, "invalid_client", "Unauthorized")
            refresh_token = form.get("refresh_token", "")
            if not refresh_token:
                return oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
            ns = state.ns(NS)
            if refresh_token in ns.get("revoked", []):
                return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            now = state.clock.time()
            ttl = int(limits(state)["token_ttl_s"])
            # Forget expired tokens so the state does not grow with every refresh.
            tokens = {t: v for t, v in ns.get("tokens", {}).items() if v["expires_at"] > now}
            access = "ya29.sandbox-" + secrets.token_urlsafe(32)
            tokens[access] = {"project": form["client_id"], "channel": channel_for(refresh_token),
                              "expires_at": now + ttl}
            ns["tokens"] = tokens
            state.save()
            return JSONResponse({"access_token": access, "expires_in": ttl, "scope": SCOPES,
                                 "token_type": "Bearer"}, headers={"Cache-Control": "no-store"})

        return await with_faults(state, ["token"], grant, _render_fault)

    return token
