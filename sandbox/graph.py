"""graph.facebook.com: one router for every Graph API object (Meta Marketing API and Instagram).

Meta and Instagram share the host, the version prefix, the auth parameters and the error envelope,
so this module does those once and hands each call to the handler that owns the object.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sandbox.faults import FaultRule
from sandbox.state import SandboxState
from sandbox.wire import form_and_query, with_faults

VERSION = re.compile(r"^v\d+\.\d+$")


@dataclass
class GraphCall:
    method: str
    version: str
    parts: list[str]  # path after the version, trailing slash removed (node paths carry one)
    params: dict[str, str]
    request: Request
    state: SandboxState
    token: str


class GraphHandler(Protocol):
    platform: str  # the fault-injection name: "meta" or "instagram"

    def owns(self, call: GraphCall) -> bool: ...

    def endpoint(self, call: GraphCall) -> str:
        """A short name for fault matching, e.g. 'campaigns.create'."""
        ...

    async def handle(self, call: GraphCall) -> Response: ...


def graph_error(code: int, message: str, *, status: int = 400, subcode: int | None = None,
                type_: str = "OAuthException", is_transient: bool = False,
                headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message, "type": type_, "code": code, "is_transient": is_transient,
                             "fbtrace_id": "Sandbox" + hashlib.sha1(message.encode()).hexdigest()[:10]}
    if subcode is not None:
        error["error_subcode"] = subcode
    if extra:
        error.update(extra)
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def usage_header(account: str, kind: str, call_count: int, regain_minutes: int = 0) -> dict[str, str]:
    value = {account: [{"type": kind, "call_count": call_count, "total_cputime": max(1, call_count // 2),
                        "total_time": max(1, call_count // 2), "estimated_time_to_regain_access": regain_minutes,
                        "ads_api_access_tier": "standard_access"}]}
    return {"X-Business-Use-Case-Usage": json.dumps(value),
            "X-App-Usage": json.dumps({"call_count": call_count, "total_cputime": 1, "total_time": 1})}


def render_graph_fault(rule: FaultRule, platform: str) -> JSONResponse:
    kind = "instagram" if platform == "instagram" else "ads_management"
    if rule.kind == "rate_limit":
        return graph_error(17, "(#17) User request limit reached", subcode=2446079, is_transient=True,
                           headers=usage_header("sandbox", kind, 100, regain_minutes=1))
    if rule.kind == "quota":
        if platform == "instagram":
            return graph_error(9, "Application request limit reached", subcode=2207042,
                               extra={"error_user_title": "Daily publishing limit reached"})
        return graph_error(80004, "There have been too many calls to this ad-account.", is_transient=True,
                           headers=usage_header("sandbox", kind, 100, regain_minutes=5))
    if rule.kind == "token_expired":
        return graph_error(190, "Error validating access token: Session has expired.", status=401, subcode=463)
    return graph_error(2, "An unexpected error has occurred. Please retry your request later.", status=500,
                       is_transient=True)


def appsecret_proof(app_secret: str, token: str) -> str:
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def build_router(state: SandboxState, handlers: list[GraphHandler], *, app_secret: str,
                 valid_tokens: set[str]) -> APIRouter:
    router = APIRouter()

    async def dispatch(request: Request, version: str, path: str) -> Response:
        if not VERSION.match(version):
            return graph_error(2500, f"Unknown path components: /{version}", type_="OAuthException")
        params = await form_and_query(request)
        token = params.pop("access_token", "") or request.headers.get("authorization", "").removeprefix("Bearer ")
        proof = params.pop("appsecret_proof", None)
        tokens = valid_tokens | set(state.ns("graph_tokens").get("issued", []))
        if not token or token not in tokens:
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token", status=401)
        if proof is not None and not hmac.compare_digest(proof, appsecret_proof(app_secret, token)):
            return graph_error(100, "Invalid appsecret_proof provided in the API argument",
                               type_="GraphMethodException")
        parts = [p for p in path.rstrip("/").split("/") if p]
        call = GraphCall(request.method, version, parts, params, request, state, token)
        owner = next((h for h in handlers if h.owns(call)), None)
        if owner is not None:

            def render(rule: FaultRule) -> Response:
                return render_graph_fault(rule, owner.platform)

            async def handle() -> Response:
                return await owner.handle(call)

            response: Response = await with_faults(state, owner.platform, owner.endpoint(call), render, handle)
            return response
        return graph_error(100, f"Unsupported {request.method} request. Object with ID '{'/'.join(parts)}' does "
                                "not exist, cannot be loaded due to missing permissions, or does not support "
                                "this operation", type_="GraphMethodException")

    router.add_api_route("/{version}/{path:path}", dispatch, methods=["GET", "POST", "DELETE"])
    return router
