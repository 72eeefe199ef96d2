"""The Meta Marketing API fake (graph.facebook.com objects that belong to ads), behind sandbox.graph's router.

The router has already stripped the version prefix and the trailing slash of node paths, checked the
access token and appsecret_proof, merged query and form parameters and applied request faults under the
endpoint names below. This module routes the call to its object, counts it against the business-use-case
quota (every answer carries X-Business-Use-Case-Usage and X-App-Usage), and keeps all its data in
state.ns("meta").

Endpoint names for fault injection: account.get, campaigns.create|list|get|update|delete,
adsets.create|list|get|update|delete, insights.sync (GET .../insights), insights.async (POST .../insights;
also the name under which "stuck"/"failed" job faults are picked), insights.status (GET /{run}/),
insights.results (GET /{run}/insights), subscriptions.create|list|delete, subscribed_apps.create|list|delete,
oauth.exchange.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox import meta_insights as insights
from sandbox import meta_objects as objects
from sandbox import meta_webhooks as webhooks
from sandbox.graph import GraphCall, graph_error
from sandbox.meta_common import MetaError, ns, ok, record_usage, throttled, with_usage
from sandbox.meta_webhooks import pending_webhooks
from sandbox.state import SandboxState

IN_PROCESS_S = 3.0  # how long a new campaign stays IN_PROCESS (sim seconds)
LONG_LIVED_S = 5183944  # what Graph says a long-lived user token lasts

Action = Callable[[], Response | Awaitable[Response]]


class MetaHandler:
    platform = "meta"

    def __init__(self, state: SandboxState, config: Any) -> None:
        self.state = state
        self.app_secret: str = config.app_secret
        self.limits: dict[str, Any] = dict(getattr(config, "limits", {}).get("meta", {}))
        self.in_process_s = float(self.limits.get("in_process_s", IN_PROCESS_S))
        self.ticker = webhooks.ticker_for(state, config.app_secret)

    # GraphHandler protocol ---------------------------------------------------------------------------
    def owns(self, call: GraphCall) -> bool:
        head = call.parts[0] if call.parts else ""
        data = ns(self.state)
        return (head.startswith("act_") or head in data["campaigns"] or head in data["adsets"]
                or head in data["runs"] or call.parts == ["oauth", "access_token"]
                or (len(call.parts) == 2 and call.parts[1] == "subscriptions" and head.isdigit()))

    def endpoint(self, call: GraphCall) -> str:
        return self._route(call)[0]

    async def handle(self, call: GraphCall) -> Response:
        self.ticker.ensure_running()  # started lazily: app.py gives the fake no startup hook of its own
        name, account, action = self._route(call)
        kind = "ads_insights" if name.startswith("insights.") else "ads_management"
        with self.state.lock:
            pct, regain, over = record_usage(self.state, self.limits, account, kind)
        if over:
            return throttled(kind, account, pct, regain)
        try:
            result = action()
            response = result if isinstance(result, Response) else await result
        except MetaError as exc:
            response = exc.response()
        if call.method != "GET":  # reads only add usage counts, which the next write persists
            self.state.save()
        return with_usage(response, account, kind, pct, regain)

    # routing -----------------------------------------------------------------------------------------
    def _route(self, call: GraphCall) -> tuple[str, str, Action]:
        """(endpoint name, account whose quota it uses, what to do)."""
        s, parts = self.state, call.parts
        data = ns(s)
        head, edge = parts[0], (parts[1] if len(parts) > 1 else "")
        if len(parts) > 2:
            return self._unsupported(call, head)
        if head.startswith("act_"):
            try:
                acct = objects.account_id(head)
            except MetaError as exc:
                bad = exc.response()
                return "account.get", "0", lambda: bad
            table: dict[tuple[str, str], tuple[str, Action]] = {
                ("GET", ""): ("account.get", lambda: objects.get_account(call, acct)),
                ("POST", "campaigns"): ("campaigns.create",
                                        lambda: objects.create_campaign(s, call, acct, self.in_process_s)),
                ("GET", "campaigns"): ("campaigns.list", lambda: objects.list_campaigns(s, call, acct)),
                ("POST", "adsets"): ("adsets.create", lambda: objects.create_adset(s, call, acct)),
                ("GET", "adsets"): ("adsets.list", lambda: objects.list_adsets(s, call, account=acct)),
                ("GET", "insights"): ("insights.sync", lambda: insights.sync_insights(s, call, head)),
                ("POST", "insights"): ("insights.async", lambda: insights.create_run(s, call, head, acct)),
                ("POST", "subscribed_apps"): ("subscribed_apps.create",
                                              lambda: webhooks.subscribe_app(s, call, acct)),
                ("GET", "subscribed_apps"): ("subscribed_apps.list",
                                             lambda: webhooks.list_subscribed_apps(s, acct)),
                ("DELETE", "subscribed_apps"): ("subscribed_apps.delete",
                                                lambda: webhooks.unsubscribe_app(s, call, acct)),
            }
            return self._pick(table, call, head, acct)
        if head in data["campaigns"]:
            c = data["campaigns"][head]
            table = {
                ("GET", ""): ("campaigns.get", lambda: objects.get_campaign(s, call, head)),
                ("POST", ""): ("campaigns.update", lambda: objects.update_campaign(s, call, head)),
                ("DELETE", ""): ("campaigns.delete", lambda: objects.delete_object(s, c)),
                ("GET", "adsets"): ("adsets.list", lambda: objects.list_adsets(s, call, campaign_id=head)),
                ("GET", "insights"): ("insights.sync", lambda: insights.sync_insights(s, call, head)),
                ("POST", "insights"): ("insights.async",
                                       lambda: insights.create_run(s, call, head, c["account_id"])),
            }
            return self._pick(table, call, head, c["account_id"])
        if head in data["adsets"]:
            a = data["adsets"][head]
            table = {
                ("GET", ""): ("adsets.get", lambda: objects.get_adset(s, call, head)),
                ("POST", ""): ("adsets.update", lambda: objects.update_adset(s, call, head)),
                ("DELETE", ""): ("adsets.delete", lambda: objects.delete_object(s, a)),
                ("GET", "insights"): ("insights.sync", lambda: insights.sync_insights(s, call, head)),
                ("POST", "insights"): ("insights.async",
                                       lambda: insights.create_run(s, call, head, a["account_id"])),
            }
            return self._pick(table, call, head, a["account_id"])
        if head in data["runs"]:
            table = {
                ("GET", ""): ("insights.status", lambda: insights.get_run(s, call, head)),
                ("GET", "insights"): ("insights.results", lambda: insights.run_results(s, call, head)),
            }
            return self._pick(table, call, head, data["runs"][head]["account_id"])
        if edge == "subscriptions":
            table = {
                ("POST", edge): ("subscriptions.create",
                                 lambda: webhooks.create_subscription(s, call, head)),
                ("GET", edge): ("subscriptions.list", lambda: webhooks.list_subscriptions(s, head)),
                ("DELETE", edge): ("subscriptions.delete",
                                   lambda: webhooks.delete_subscription(s, call, head)),
            }
            return self._pick(table, call, head, head)
        return "oauth.exchange", "0", lambda: self._exchange(call)

    def _pick(self, table: dict[tuple[str, str], tuple[str, Action]], call: GraphCall, head: str,
              account: str) -> tuple[str, str, Action]:
        edge = call.parts[1] if len(call.parts) > 1 else ""
        found = table.get((call.method, edge))
        if found is None:
            return self._unsupported(call, head, account)
        return found[0], account, found[1]

    @staticmethod
    def _unsupported(call: GraphCall, head: str, account: str = "0") -> tuple[str, str, Action]:
        message = (f"Unsupported {call.method} request. Object with ID '{head}' does not exist, cannot be "
                   "loaded due to missing permissions, or does not support this operation")
        error = graph_error(100, message, subcode=33, type_="GraphMethodException")
        return "unsupported", account, lambda: error

    def _exchange(self, call: GraphCall) -> Response:
        """GET /oauth/access_token?grant_type=fb_exchange_token: a valid token becomes a long-lived one."""
        p = call.params
        if p.get("grant_type") != "fb_exchange_token" or not p.get("client_id"):
            raise MetaError(100, "(#100) Missing or invalid grant_type / client_id", type_="OAuthException")
        if p.get("client_secret") != self.app_secret:
            raise MetaError(1, "Error validating client secret.", type_="OAuthException")
        issued: list[str] = self.state.ns("graph_tokens").setdefault("issued", [])
        if p.get("fb_exchange_token") not in {call.token, *issued}:
            raise MetaError(190, "Error validating access token: The session has been invalidated.",
                            subcode=460, status=401)
        token = "sandbox-ll-" + self.state.new_id()
        issued.append(token)
        return ok({"access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED_S})


def handler(state: SandboxState, config: Any) -> MetaHandler:
    return MetaHandler(state, config)


class _StartTicker:
    """ASGI middleware: starts the webhook ticker on the server's loop at the first request of any kind."""

    def __init__(self, app: ASGIApp, state: SandboxState, app_secret: str) -> None:
        self.app, self.ticker = app, webhooks.ticker_for(state, app_secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.ticker.ensure_running()
        await self.app(scope, receive, send)


def mount(app: FastAPI, state: SandboxState, config: Any) -> None:
    """Start deliveries without waiting for a Graph call (e.g. webhooks queued in a reloaded state file)."""
    app.add_middleware(_StartTicker, state=state, app_secret=config.app_secret)


def published(state: SandboxState) -> list[dict[str, Any]]:
    return []  # Meta holds campaigns, not posts


__all__ = ["MetaHandler", "handler", "mount", "pending_webhooks", "published"]
