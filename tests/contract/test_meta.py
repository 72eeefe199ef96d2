"""Meta Marketing API: the sandbox fake speaks Graph's wire protocol, and MetaClient survives it.

Everything goes over real loopback HTTP: raw httpx for wire-format checks, the facebook-business SDK
(inside MetaClient) for the rest. Each test uses its own ad account so tests never see each other's objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from metacentric.settings import SANDBOX_APP_SECRET, SANDBOX_TOKEN, Settings
from metacentric.store import Store
from models import Targeting
from platforms.errors import (
    AmbiguousWriteError,
    AuthExpiredError,
    PermanentError,
    PlatformError,
    RateLimitedError,
    TransientError,
)
from platforms.meta import MetaClient
from sandbox.app import SandboxConfig
from sandbox.faults import FaultRule
from sandbox.meta_common import ns, sim_day
from sandbox.server import RunningSandbox, start_in_thread
from sandbox.state import SandboxState

_accounts = itertools.count(int(time.time() * 1000) % 10**9)
PROOF = hmac.new(SANDBOX_APP_SECRET.encode(), SANDBOX_TOKEN.encode(), hashlib.sha256).hexdigest()
AUTH = {"access_token": SANDBOX_TOKEN, "appsecret_proof": PROOF}


# helpers ---------------------------------------------------------------------------------------------
@pytest.fixture
def account() -> str:
    return str(1_900_000_000_000_000 + next(_accounts))


@pytest.fixture
def meta(settings: Settings, store: Store, account: str) -> MetaClient:
    return MetaClient.from_settings(settings.model_copy(update={"meta_ad_account_id": account}), store)


def graph(sb: RunningSandbox, method: str, path: str, **params: Any) -> httpx.Response:
    """A raw Graph call, encoded as the SDK encodes it (lists/dicts as JSON, auth in the query string)."""
    encoded = {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
               for k, v in params.items()}
    url = f"{sb.url}/graph/v25.0/{path}"
    if method == "GET":
        return httpx.get(url, params={**AUTH, **encoded})
    return httpx.request(method, url, params=AUTH, data=encoded)


def fault(sb: RunningSandbox, endpoint: str, kind: str, count: int | None = None, **extra: Any) -> None:
    sb.state.faults.add(FaultRule(platform="meta", endpoint=endpoint, kind=kind, count=count, **extra))


def campaigns_named(sb: RunningSandbox, name: str) -> list[dict[str, Any]]:
    return [c for c in sb.state.ns("meta")["campaigns"].values() if c["name"] == name]


def away_from_midnight(sb: RunningSandbox) -> None:
    """Keep a test's objects on one sim day (a create straddling UTC midnight would shift day indexes)."""
    if (sb.state.clock.time() % 86400) > 86400 - 120:
        sb.state.clock.advance(240)


@contextlib.asynccontextmanager
async def fast_clock(sb: RunningSandbox, step_s: float = 0.5) -> AsyncIterator[None]:
    """Run the sim clock fast while the body awaits the client (async report jobs take sim seconds)."""
    async def tick() -> None:
        while True:
            sb.state.clock.advance(step_s)
            await asyncio.sleep(0.02)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()


async def launch(sb: RunningSandbox, meta: MetaClient, name: str, budgets: dict[str, float]) -> str:
    away_from_midnight(sb)
    cid = await meta.create_campaign(name, sum(budgets.values()), labels=["genre:rock"])
    await meta.ensure_ad_sets(cid, list(budgets))
    await meta.set_ad_set_budgets(cid, budgets)
    return cid


def assert_no_secrets(exc: BaseException) -> None:
    text = f"{exc} {exc!r} {getattr(exc, 'message', '')}"
    for secret in (SANDBOX_TOKEN, SANDBOX_APP_SECRET, PROOF):
        assert secret not in text


# wire format -----------------------------------------------------------------------------------------
def test_node_paths_with_trailing_slash_and_budgets_as_strings(sandbox: RunningSandbox, account: str) -> None:
    r = graph(sandbox, "POST", f"act_{account}/campaigns", name="wire", objective="OUTCOME_ENGAGEMENT",
              status="PAUSED", special_ad_categories=[], daily_budget=5000)
    assert r.status_code == 200
    cid = r.json()["id"]
    assert isinstance(cid, str) and cid.isdigit()
    for path in (f"{cid}/", cid):
        body = graph(sandbox, "GET", path, fields="name,daily_budget,status,effective_status").json()
        assert body == {"id": cid, "name": "wire", "daily_budget": "5000", "status": "PAUSED",
                        "effective_status": "IN_PROCESS"}
    assert graph(sandbox, "POST", f"{cid}/", daily_budget=7500).json() == {"success": True}
    assert graph(sandbox, "GET", f"{cid}/", fields="daily_budget").json()["daily_budget"] == "7500"
    unknown = graph(sandbox, "GET", f"{cid}/", fields="name,colour").json()["error"]
    assert unknown["code"] == 100


def test_create_validates_json_list_params_and_odax_objectives(sandbox: RunningSandbox, account: str) -> None:
    base = {"name": "v", "objective": "OUTCOME_ENGAGEMENT", "special_ad_categories": ["NONE"]}
    assert "id" in graph(sandbox, "POST", f"act_{account}/campaigns", **base).json()
    missing = graph(sandbox, "POST", f"act_{account}/campaigns", name="v", objective="OUTCOME_ENGAGEMENT")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == 100
    legacy = graph(sandbox, "POST", f"act_{account}/campaigns", **{**base, "objective": "CONVERSIONS"})
    assert legacy.json()["error"]["code"] == 100
    targeting = {"geo_locations": {"countries": ["US", "MX"]}, "age_min": 18}
    cid = graph(sandbox, "POST", f"act_{account}/campaigns", **{**base, "daily_budget": 3000}).json()["id"]
    adset = graph(sandbox, "POST", f"act_{account}/adsets", name="metacentric:x", campaign_id=cid,
                  billing_event="IMPRESSIONS", targeting=targeting).json()
    assert graph(sandbox, "GET", adset["id"], fields="targeting").json()["targeting"] == targeting


def test_appsecret_proof_and_token_are_checked(sandbox: RunningSandbox, account: str) -> None:
    url = f"{sandbox.url}/graph/v25.0/act_{account}/campaigns"
    bad_proof = httpx.get(url, params={"access_token": SANDBOX_TOKEN, "appsecret_proof": "0" * 64}).json()
    assert bad_proof["error"]["code"] == 100
    bad_token = httpx.get(url, params={"access_token": "nope"})
    assert bad_token.status_code == 401 and bad_token.json()["error"]["code"] == 190
    assert httpx.get(url, params=AUTH).json() == {"data": []}


def test_edges_page_with_cursors_and_next_only_when_more(sandbox: RunningSandbox, account: str) -> None:
    for i in range(3):
        graph(sandbox, "POST", f"act_{account}/campaigns", name=f"p{i}", objective="OUTCOME_TRAFFIC",
              special_ad_categories=[])
    first = graph(sandbox, "GET", f"act_{account}/campaigns", fields="name", limit=2, summary=True).json()
    assert len(first["data"]) == 2 and first["summary"] == {"total_count": 3}
    assert "next" in first["paging"]
    second = graph(sandbox, "GET", f"act_{account}/campaigns", fields="name", limit=2,
                   after=first["paging"]["cursors"]["after"]).json()
    assert len(second["data"]) == 1 and "next" not in second["paging"]
    names = [c["name"] for c in first["data"] + second["data"]]
    assert sorted(names) == ["p0", "p1", "p2"]
    only = graph(sandbox, "GET", f"act_{account}/campaigns", fields="name",
                 filtering=[{"field": "name", "operator": "EQUAL", "value": "p1"}]).json()
    assert [c["name"] for c in only["data"]] == ["p1"]


def test_every_answer_carries_usage_headers(sandbox: RunningSandbox, account: str) -> None:
    for response in (graph(sandbox, "GET", f"act_{account}", fields="currency"),
                     graph(sandbox, "POST", f"act_{account}/campaigns", name="u")):  # the second is an error
        buc = json.loads(response.headers["x-business-use-case-usage"])
        assert buc[account][0]["type"] == "ads_management"
        assert "estimated_time_to_regain_access" in buc[account][0]
        assert "call_count" in json.loads(response.headers["x-app-usage"])


async def test_async_insights_accept_fields_as_json_array(sandbox: RunningSandbox, account: str) -> None:
    cid = graph(sandbox, "POST", f"act_{account}/campaigns", name="a", objective="OUTCOME_ENGAGEMENT",
                special_ad_categories=[], daily_budget=4000).json()["id"]
    graph(sandbox, "POST", f"act_{account}/adsets", name="metacentric:tiktok", campaign_id=cid,
          billing_event="IMPRESSIONS", targeting={"geo_locations": {"countries": ["US"]}})
    sandbox.state.clock.advance(2 * 86400)
    run = graph(sandbox, "POST", f"{cid}/insights", fields=["spend", "adset_name"], level="adset",
                time_increment=1, date_preset="last_7d").json()
    run_id = run["report_run_id"]
    fresh = graph(sandbox, "GET", f"{run_id}/", fields="async_status").json()
    assert fresh["async_status"] == "Job Not Started"
    sandbox.state.clock.advance(5)
    status = graph(sandbox, "GET", f"{run_id}/", fields="async_status,async_percent_completion").json()
    assert (status["async_status"], status["async_percent_completion"]) == ("Job Completed", 100)
    rows = graph(sandbox, "GET", f"{run_id}/insights").json()["data"]
    assert rows and all(set(r) == {"date_start", "date_stop", "spend", "adset_name"} for r in rows)
    assert all(r["spend"] == "40.0" and r["adset_name"] == "metacentric:tiktok" for r in rows)


# campaigns -------------------------------------------------------------------------------------------
async def test_create_read_update_campaign(sandbox: RunningSandbox, meta: MetaClient) -> None:
    cid = await meta.create_campaign("Release: Neon Nights", 50.0, labels=["genre:electronic"])
    got = await meta.get_campaign(cid)
    assert got["id"] == cid and got["name"] == "Release: Neon Nights" and got["daily_budget"] == 50.0
    assert (got["status"], got["effective_status"], got["currency"]) == ("ACTIVE", "IN_PROCESS", "USD")
    assert got["labels"] == ["genre:electronic"]
    assert sandbox.state.market.campaigns[cid]["genre"] == "electronic"
    sandbox.state.clock.advance(10)
    assert (await meta.get_campaign(cid))["effective_status"] == "ACTIVE"
    await meta.update_campaign(cid, daily_budget=62.5, status="PAUSED")
    got = await meta.get_campaign(cid)
    assert (got["daily_budget"], got["status"], got["effective_status"]) == (62.5, "PAUSED", "PAUSED")


async def test_create_campaign_is_idempotent_by_name(sandbox: RunningSandbox, meta: MetaClient,
                                                     account: str) -> None:
    first = await meta.create_campaign("once", 20.0)
    assert await meta.create_campaign("once", 20.0) == first
    assert [c["id"] for c in campaigns_named(sandbox, "once") if c["account_id"] == account] == [first]
    graph(sandbox, "DELETE", first)  # Graph hides deleted campaigns, so the name is free again
    assert await meta.find_campaign("once") is None
    assert await meta.create_campaign("once", 20.0) != first


def test_a_lost_answer_is_a_broken_connection(sandbox: RunningSandbox, account: str) -> None:
    fault(sandbox, "campaigns.create", "ambiguous", count=1)
    with pytest.raises(httpx.TransportError):
        graph(sandbox, "POST", f"act_{account}/campaigns", name="dropped", objective="OUTCOME_TRAFFIC",
              special_ad_categories=[])
    assert len(campaigns_named(sandbox, "dropped")) == 1  # committed, then the answer was lost


@pytest.mark.parametrize("kind", ["ambiguous", "drop_connection"])
async def test_lost_create_answer_leaves_exactly_one_campaign(sandbox: RunningSandbox, meta: MetaClient,
                                                               account: str, kind: str) -> None:
    name = f"lost-{kind}"
    fault(sandbox, "campaigns.create", kind, count=1)
    cid = await meta.create_campaign(name, 20.0)
    matching = [c for c in campaigns_named(sandbox, name) if c["account_id"] == account]
    assert [c["id"] for c in matching] == [cid]


async def test_timed_out_create_is_looked_up_never_repeated(sandbox: RunningSandbox, settings: Settings,
                                                            store: Store, account: str) -> None:
    client = MetaClient(app_id=settings.meta_app_id, app_secret=SANDBOX_APP_SECRET,
                        access_token=SANDBOX_TOKEN, ad_account_id=account, graph_url=settings.meta_graph_url,
                        store=store, timeout=0.3)
    await client.find_campaign("slow")  # warm up (currency, connection) before the slow create
    fault(sandbox, "campaigns.create", "latency", latency_ms=800)
    with pytest.raises(AmbiguousWriteError) as info:
        await client.create_campaign("slow", 10.0)
    assert_no_secrets(info.value)
    sandbox.state.faults.clear()
    for _ in range(100):  # the slow create lands on the server after the client gave up
        if await client.find_campaign("slow"):
            break
        await asyncio.sleep(0.05)
    cid = await client.create_campaign("slow", 10.0)
    assert [c["id"] for c in campaigns_named(sandbox, "slow") if c["account_id"] == account] == [cid]


# ad sets and budgets ---------------------------------------------------------------------------------
async def test_ad_sets_are_created_once_per_platform(sandbox: RunningSandbox, meta: MetaClient) -> None:
    cid = await meta.create_campaign("adsets", 40.0)
    fault(sandbox, "adsets.create", "ambiguous", count=1)
    ids = await meta.ensure_ad_sets(cid, ["youtube", "tiktok"], {"geo_locations": {"countries": ["GB"]}})
    ours = Targeting(countries=["MX", "CO"], age_min=21).model_dump()  # Metacentric's own shape
    again = await meta.ensure_ad_sets(cid, ["youtube", "tiktok", "x"], ours)
    assert {k: again[k] for k in ids} == ids and set(again) == {"youtube", "tiktok", "x"}
    adsets = [a for a in sandbox.state.ns("meta")["adsets"].values() if a["campaign_id"] == cid]
    assert sorted(a["name"] for a in adsets) == ["metacentric:tiktok", "metacentric:x", "metacentric:youtube"]
    targeting = {a["name"]: a["targeting"] for a in adsets}
    assert targeting["metacentric:youtube"] == {"geo_locations": {"countries": ["GB"]}}
    assert targeting["metacentric:x"] == {"geo_locations": {"countries": ["MX", "CO"]}, "age_min": 21,
                                          "age_max": 65}
    # x came later and got a third of the campaign budget, in whole cents
    assert await meta.ad_set_budgets(cid) == {"youtube": 20.0, "tiktok": 20.0, "x": 13.33}
    with pytest.raises(ValueError):
        await meta.ensure_ad_sets(cid, ["myspace"])


async def test_budgets_are_set_in_minor_units_and_zero_pauses(sandbox: RunningSandbox,
                                                               meta: MetaClient) -> None:
    cid = await meta.create_campaign("budgets", 40.0)
    ids = await meta.ensure_ad_sets(cid, ["youtube", "instagram"])
    fault(sandbox, "adsets.update", "transient", count=1)  # budget sets are retried: they are idempotent
    await meta.set_ad_set_budgets(cid, {"youtube": 12.5, "instagram": 0})
    assert await meta.ad_set_budgets(cid) == {"youtube": 12.5, "instagram": 0.0}
    history = sandbox.state.ns("meta")["adsets"][ids["youtube"]]["history"]
    assert history[-1]["daily_budget"] == 1250 and history[-1]["status"] == "ACTIVE"
    await meta.set_ad_set_budgets(cid, {"instagram": 7.0})
    assert await meta.ad_set_budgets(cid) == {"youtube": 12.5, "instagram": 7.0}
    await meta.set_ad_set_budgets(cid, {"tiktok": 0.0})  # no ad set and no money: nothing to do
    with pytest.raises(PermanentError):
        await meta.set_ad_set_budgets(cid, {"tiktok": 5.0})


# insights ----------------------------------------------------------------------------------------------
async def test_sync_insights_are_the_markets_daily_outcomes(sandbox: RunningSandbox,
                                                             meta: MetaClient) -> None:
    cid = await launch(sandbox, meta, "insights-sync", {"youtube": 30.0, "tiktok": 20.0})
    created = sim_day(sandbox.state.clock.time())
    assert await meta.insights(cid, created, created) == []  # today is not complete yet
    sandbox.state.clock.advance(3 * 86400)
    rows = await meta.insights(cid, created, created + timedelta(days=6))
    assert [(r.day, r.platform.value) for r in rows] == [
        (created + timedelta(days=d), p) for d in range(3) for p in ("tiktok", "youtube")]
    for r in rows:
        want = sandbox.state.market.ad_outcome(cid, r.platform.value, (r.day - created).days, r.spend)
        assert r.spend == {"youtube": 30.0, "tiktok": 20.0}[r.platform.value]
        assert (r.impressions, r.video_views, r.engagements) == (
            want["impressions"], want["video_views"], want["engagements"])


async def test_each_day_spends_the_budget_in_effect(sandbox: RunningSandbox, meta: MetaClient) -> None:
    cid = await launch(sandbox, meta, "insights-history", {"x": 10.0})
    created = sim_day(sandbox.state.clock.time())
    sandbox.state.clock.advance(86400)
    await meta.set_ad_set_budgets(cid, {"x": 25.0})
    sandbox.state.clock.advance(86400)
    rows = await meta.insights(cid, created, created + timedelta(days=1))
    assert [(r.day, r.spend) for r in rows] == [(created, 10.0), (created + timedelta(days=1), 25.0)]


async def test_async_report_run_gives_the_same_rows(sandbox: RunningSandbox, meta: MetaClient) -> None:
    cid = await launch(sandbox, meta, "insights-async", {"instagram": 15.0, "x": 5.0})
    created = sim_day(sandbox.state.clock.time())
    sandbox.state.clock.advance(9 * 86400)
    window = (created, created + timedelta(days=8))
    sync = await meta.insights(cid, *window, use_async=False)
    async with fast_clock(sandbox):
        via_run = await meta.insights(cid, *window)  # 9 days: the client picks an async report run
    assert len(sync) == 18 and via_run == sync


async def test_stuck_report_run_is_transient(sandbox: RunningSandbox, settings: Settings, store: Store,
                                             account: str) -> None:
    quick = settings.model_copy(update={"meta_ad_account_id": account, "poll_timeout_s": 0.3})
    client = MetaClient.from_settings(quick, store)
    cid = await client.create_campaign("stuck", 10.0)
    fault(sandbox, "insights.async", "stuck")
    today = sim_day(sandbox.state.clock.time())
    async with fast_clock(sandbox):
        with pytest.raises(TransientError) as info:
            await client.insights(cid, today - timedelta(days=3), today, use_async=True)
    assert info.value.code == "report_timeout"


async def test_failed_report_run_is_rerun_once(sandbox: RunningSandbox, meta: MetaClient) -> None:
    cid = await launch(sandbox, meta, "failed-once", {"youtube": 10.0})
    created = sim_day(sandbox.state.clock.time())
    sandbox.state.clock.advance(86400)
    fault(sandbox, "insights.async", "failed", count=1)
    async with fast_clock(sandbox):
        rows = await meta.insights(cid, created, created, use_async=True)
    assert [(r.day, r.spend) for r in rows] == [(created, 10.0)]
    fault(sandbox, "insights.async", "failed")
    async with fast_clock(sandbox):
        with pytest.raises(TransientError) as info:
            await meta.insights(cid, created, created, use_async=True)
    assert info.value.code == "-2"


# error classification ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "error", "wait_s"), [
    ("rate_limit", RateLimitedError, 60), ("quota", RateLimitedError, 300),
    ("token_expired", AuthExpiredError, None), ("transient", TransientError, None)])
async def test_faults_are_classified(sandbox: RunningSandbox, meta: MetaClient, kind: str,
                                     error: type[PlatformError], wait_s: int | None) -> None:
    cid = await meta.create_campaign(f"classified-{kind}", 10.0)
    fault(sandbox, "campaigns.get", kind)
    with pytest.raises(error) as info:
        await meta.get_campaign(cid)
    assert type(info.value) is error
    assert_no_secrets(info.value)
    if wait_s is not None:
        assert isinstance(info.value, RateLimitedError)
        left = (info.value.until - datetime.now(UTC)).total_seconds()
        assert wait_s - 30 < left <= wait_s + 1
    if kind == "token_expired":
        assert str(info.value).startswith("re-auth needed for meta")


async def test_one_transient_read_failure_is_retried(sandbox: RunningSandbox, meta: MetaClient) -> None:
    cid = await meta.create_campaign("retried", 10.0)
    fault(sandbox, "campaigns.get", "transient", count=2)
    assert (await meta.get_campaign(cid))["id"] == cid


async def test_bad_parameters_are_permanent(sandbox: RunningSandbox, meta: MetaClient) -> None:
    with pytest.raises(PermanentError) as info:
        await meta.get_campaign("999999")
    assert info.value.code == "100"
    with pytest.raises(PermanentError) as info:
        await meta.create_campaign("legacy", 10.0, objective="CONVERSIONS")
    assert info.value.code is not None and info.value.code.startswith("100")
    with pytest.raises(PermanentError):
        await meta.create_campaign("too-small", 0.5)
    assert_no_secrets(info.value)


@pytest.fixture
def tight_sandbox() -> Iterator[RunningSandbox]:
    """A second sandbox whose ad account allows 10 management calls an hour."""
    config = SandboxConfig(limits={"meta": {"ads_management_per_hour": 10}})
    with start_in_thread(SandboxState(seed=1), config=config) as running:
        yield running


async def test_client_holds_back_near_the_usage_limit(tight_sandbox: RunningSandbox, store: Store,
                                                      account: str) -> None:
    settings = Settings().for_sandbox(tight_sandbox.url).model_copy(update={"meta_ad_account_id": account})
    client = MetaClient.from_settings(settings, store)
    usage = ns(tight_sandbox.state)["usage"]
    with pytest.raises(RateLimitedError) as info:
        for _ in range(20):
            await client.find_campaign("nothing")
    assert info.value.code == "usage"
    assert len(usage[f"{account}|ads_management"]) == 9  # stopped at 90 %, before Meta throttled it
    with pytest.raises(RateLimitedError):  # the gate is in the shared store: another worker holds back too
        await MetaClient.from_settings(settings, store).find_campaign("nothing")
    assert len(usage[f"{account}|ads_management"]) == 9
    # A client that ignores the warning meets Meta's own throttle: 80004 with time to regain access.
    blind = MetaClient.from_settings(settings)
    blind.gate.threshold = 101.0
    with pytest.raises(RateLimitedError) as info:
        for _ in range(3):
            await blind.find_campaign("nothing")
    assert info.value.code == "80004/2446079"
    assert (info.value.until - datetime.now(UTC)).total_seconds() > 30 * 60


# webhooks ----------------------------------------------------------------------------------------------
class Receiver:
    """A tiny webhook endpoint: answers the hub.challenge, records signed POSTs, fails the first one."""

    def __init__(self, verify_token: str, *, echo: bool = True, fail_first: int = 1) -> None:
        self.verify_token, self.echo, self.fail_first = verify_token, echo, fail_first
        self.handshakes: list[dict[str, list[str]]] = []
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                q = parse_qs(urlparse(self.path).query)
                receiver.handshakes.append(q)
                ok = (q.get("hub.verify_token") == [receiver.verify_token]
                      and q.get("hub.mode") == ["subscribe"])
                body = (q["hub.challenge"][0] if receiver.echo else "nope").encode()
                self.send_response(200 if ok else 403)
                self.end_headers()
                self.wfile.write(body if ok else b"")

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((raw, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(500 if len(receiver.posts) <= receiver.fail_first else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/meta/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_webhook_handshake_and_signed_delivery(sandbox: RunningSandbox, meta: MetaClient,
                                                     account: str) -> None:
    receiver = Receiver("verify-me")
    try:
        await meta.subscribe_webhooks(receiver.url, "verify-me")
        assert receiver.handshakes and receiver.handshakes[0]["hub.mode"] == ["subscribe"]
        cid = await meta.create_campaign("Café Tacvba — En Vivo", 30.0)
        sandbox.state.clock.advance(5)  # post-processing ends; nobody reads the campaign meanwhile
        for _ in range(200):
            if len(receiver.posts) >= 2:
                break
            await asyncio.sleep(0.05)
        assert len(receiver.posts) == 2  # the first delivery got a 500 and was retried
        (raw1, _), (raw, headers) = receiver.posts
        assert raw1 == raw
        expected = hmac.new(SANDBOX_APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-hub-signature-256"], f"sha256={expected}")
        sha1 = hmac.new(SANDBOX_APP_SECRET.encode(), raw, hashlib.sha1).hexdigest()
        assert headers["x-hub-signature"] == f"sha1={sha1}"
        event = json.loads(raw)
        assert event["object"] == "ad_account" and event["entry"][0]["id"] == account
        assert event["entry"][0]["changes"] == [{"field": "in_process_ad_objects", "value": {
            "id": cid, "level": "CAMPAIGN", "status_name": "Active"}}]
        assert raw.isascii()
    finally:
        graph(sandbox, "DELETE", f"act_{account}/subscribed_apps", app_id=meta.app_id)
        receiver.close()


async def test_subscription_needs_the_challenge_echoed(sandbox: RunningSandbox, meta: MetaClient) -> None:
    receiver = Receiver("verify-me", echo=False)
    try:
        with pytest.raises(PermanentError) as info:
            await meta.subscribe_webhooks(receiver.url, "verify-me")
        assert info.value.code == "2201"
        with pytest.raises(PermanentError):
            await meta.subscribe_webhooks(receiver.url, "wrong-token")  # the endpoint answers 403
        subs = sandbox.state.ns("meta")["subscriptions"].get(meta.app_id, {})
        assert subs.get("ad_account", {}).get("callback_url") != receiver.url
    finally:
        receiver.close()


def test_long_lived_token_exchange(sandbox: RunningSandbox, account: str) -> None:
    r = graph(sandbox, "GET", "oauth/access_token", grant_type="fb_exchange_token", client_id="1",
              client_secret=SANDBOX_APP_SECRET, fb_exchange_token=SANDBOX_TOKEN).json()
    assert r["token_type"] == "bearer" and r["expires_in"] > 86400 * 30
    url = f"{sandbox.url}/graph/v25.0/act_{account}"
    assert httpx.get(url, params={"access_token": r["access_token"]}).status_code == 200
    wrong = graph(sandbox, "GET", "oauth/access_token", grant_type="fb_exchange_token", client_id="1",
                  client_secret="guess", fb_exchange_token=SANDBOX_TOKEN).json()
    assert wrong["error"]["code"] == 1
