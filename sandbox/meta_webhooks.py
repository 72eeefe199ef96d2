"""Meta Webhooks for ad accounts: app subscriptions (with the hub.challenge handshake), the ad account's
subscribed apps, and signed delivery of `in_process_ad_objects` when a campaign leaves IN_PROCESS.

Delivery runs in a background asyncio task (the "ticker") on the server's loop: it polls the sim clock
every 0.2 s, so the transition happens whether or not anyone reads the campaign, and it never blocks the
request that created the campaign. Failed deliveries are retried with backoff a few times, with the very
same bytes (so the same signature), as Meta does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import uuid
import weakref
from typing import Any

import httpx
from fastapi.responses import JSONResponse

from sandbox.graph import GraphCall
from sandbox.meta_common import MetaError, bad_param, ns, ok
from sandbox.state import SandboxState
from sandbox.wire import fields_param

log = logging.getLogger(__name__)

OBJECTS = {"ad_account"}
FIELDS = {"in_process_ad_objects", "with_issues_ad_objects", "field_changed", "ad_recommendations",
          "creative_fatigue", "product_set_issue", "ads_async_creation_request"}
TICK_S = 0.2
MAX_ATTEMPTS = 5
FIRST_BACKOFF_S = 0.5
HTTP_TIMEOUT_S = 5.0


# subscriptions ----------------------------------------------------------------------------------------
async def create_subscription(state: SandboxState, call: GraphCall, app_id: str) -> JSONResponse:
    obj = call.params.get("object", "")
    if obj not in OBJECTS:
        raise bad_param(f"Param object must be one of {{{', '.join(sorted(OBJECTS))}}} in the sandbox")
    callback = call.params.get("callback_url", "")
    if not callback.startswith(("http://", "https://")):
        raise bad_param("Param callback_url must be a URL")
    fields = fields_param(call.params.get("fields"))
    if not fields or any(f not in FIELDS for f in fields):
        raise bad_param(f"Param fields must name fields of {obj}: {', '.join(sorted(FIELDS))}")
    await _handshake(callback, call.params.get("verify_token", ""))
    ns(state)["subscriptions"].setdefault(app_id, {})[obj] = {
        "object": obj, "callback_url": callback, "fields": fields, "active": True,
        "include_values": str(call.params.get("include_values", "")).lower() == "true"}
    return ok({"success": True})


async def _handshake(callback: str, verify_token: str) -> None:
    """Meta's verification GET: the endpoint must answer 200 with the raw hub.challenge."""
    challenge = str(1_000_000_000 + secrets.randbelow(1_000_000_000))
    params = {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
            response = await http.get(callback, params=params)
    except httpx.HTTPError:
        raise MetaError(2200, "(#2200) Callback verification failed with the following errors: "
                              "curl_errno = 7; curl_error = Couldn't connect to server; "
                              "HTTP Status Code = 0") from None
    if response.status_code != 200:
        raise MetaError(2200, "(#2200) Callback verification failed with the following errors: "
                              f"HTTP Status Code = {response.status_code}")
    if response.text.strip() != challenge:
        raise MetaError(2201, f'(#2201) response does not match challenge, expected value="{challenge}", '
                              f'received="{response.text.strip()[:40]}"')


def list_subscriptions(state: SandboxState, app_id: str) -> JSONResponse:
    subs = ns(state)["subscriptions"].get(app_id, {})
    return ok({"data": [{"object": s["object"], "callback_url": s["callback_url"], "active": s["active"],
                         "fields": [{"name": f, "version": "v25.0"} for f in s["fields"]]}
                        for s in subs.values()]})


def delete_subscription(state: SandboxState, call: GraphCall, app_id: str) -> JSONResponse:
    subs = ns(state)["subscriptions"].get(app_id, {})
    obj = call.params.get("object")
    for key in [k for k in subs if obj in (None, k)]:
        del subs[key]
    return ok({"success": True})


def subscribe_app(state: SandboxState, call: GraphCall, account: str) -> JSONResponse:
    app_id = call.params.get("app_id", "")
    if not app_id.isdigit():
        raise bad_param("The parameter app_id is required")
    apps: list[str] = ns(state)["subscribed_apps"].setdefault(account, [])
    if app_id not in apps:
        apps.append(app_id)
    return ok({"success": "true"})  # Graph's documented sample answers the string "true"


def list_subscribed_apps(state: SandboxState, account: str) -> JSONResponse:
    apps = ns(state)["subscribed_apps"].get(account, [])
    return ok({"data": [{"name": "Sandbox app", "id": a} for a in apps]})


def unsubscribe_app(state: SandboxState, call: GraphCall, account: str) -> JSONResponse:
    apps = ns(state)["subscribed_apps"].get(account, [])
    if call.params.get("app_id") in apps:
        apps.remove(call.params["app_id"])
    return ok({"success": True})


# delivery ----------------------------------------------------------------------------------------------
def signature_headers(app_secret: str, body: bytes) -> dict[str, str]:
    sha256 = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    sha1 = hmac.new(app_secret.encode(), body, hashlib.sha1).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={sha256}",
            "X-Hub-Signature": f"sha1={sha1}"}


def _enqueue_in_process(state: SandboxState, campaign: dict[str, Any]) -> int:
    """Queue the in_process_ad_objects notification for every app subscribed to the campaign's account."""
    data = ns(state)
    account = campaign["account_id"]
    status = campaign["history"][-1]["status"]
    payload = {"object": "ad_account", "entry": [{
        "id": account, "time": int(campaign["in_process_until"]),
        "changes": [{"field": "in_process_ad_objects",
                     "value": {"id": campaign["id"], "level": "CAMPAIGN",
                               "status_name": status.capitalize()}}]}]}
    # Meta escapes non-ASCII as \uXXXX; receivers must verify over these exact bytes.
    body = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    queued = 0
    for app_id in data["subscribed_apps"].get(account, []):
        sub = data["subscriptions"].get(app_id, {}).get("ad_account")
        if sub and sub["active"] and "in_process_ad_objects" in sub["fields"]:
            data["outbox"].append({"id": str(uuid.uuid4()), "url": sub["callback_url"], "body": body,
                                   "campaign_id": campaign["id"], "attempts": 0,
                                   "next_at": state.clock.time()})
            queued += 1
    return queued


def pending_webhooks(state: SandboxState) -> list[dict[str, Any]]:
    """Deliveries not yet acknowledged (for debugging and end-to-end checks)."""
    return [dict(item) for item in ns(state)["outbox"]]


class Ticker:
    """One background task per sandbox state: moves campaigns out of IN_PROCESS and delivers webhooks."""

    def __init__(self, state: SandboxState, app_secret: str) -> None:
        self._state = weakref.ref(state)  # the registry below must not keep a finished sandbox alive
        self._secret = app_secret
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop = loop
        self._task = loop.create_task(self._run(), name="meta-webhook-ticker")

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
            while (state := self._state()) is not None:
                try:
                    await self.tick(state, http)
                except Exception:  # a bad receiver or a bug must not stop later deliveries
                    log.exception("meta webhook ticker")
                del state
                await asyncio.sleep(TICK_S)

    async def tick(self, state: SandboxState, http: httpx.AsyncClient) -> None:
        data = ns(state)
        now = state.clock.time()
        changed = False
        for cid in list(data["in_process"]):
            campaign = data["campaigns"].get(cid)
            if campaign is None or campaign["in_process_until"] <= now:
                data["in_process"].remove(cid)
                if campaign is not None:
                    _enqueue_in_process(state, campaign)
                changed = True
        due = [item for item in data["outbox"] if item["next_at"] <= now]
        if due:
            results = await asyncio.gather(*(self._deliver(http, item) for item in due))
            now = state.clock.time()
            for item, delivered in zip(due, results, strict=True):
                item["attempts"] += 1
                if delivered or item["attempts"] >= MAX_ATTEMPTS:
                    data["outbox"].remove(item)
                    data["webhook_log"].append({"id": item["id"], "url": item["url"], "campaign_id":
                                                item["campaign_id"], "attempts": item["attempts"],
                                                "delivered": delivered})
                    del data["webhook_log"][:-100]
                else:
                    item["next_at"] = now + FIRST_BACKOFF_S * 2 ** (item["attempts"] - 1)
            changed = True
        if changed:
            state.save()

    async def _deliver(self, http: httpx.AsyncClient, item: dict[str, Any]) -> bool:
        body = item["body"].encode()
        with contextlib.suppress(httpx.HTTPError):
            headers = signature_headers(self._secret, body)
            response = await http.post(item["url"], content=body, headers=headers)
            return 200 <= response.status_code < 300
        return False


_TICKERS: weakref.WeakKeyDictionary[SandboxState, Ticker] = weakref.WeakKeyDictionary()


def ticker_for(state: SandboxState, app_secret: str) -> Ticker:
    with state.lock:
        ticker = _TICKERS.get(state)
        if ticker is None:
            ticker = _TICKERS[state] = Ticker(state, app_secret)
        return ticker
