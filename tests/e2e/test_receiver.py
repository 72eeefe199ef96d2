"""The receiver over real loopback HTTP (uvicorn): Meta's handshake and signatures, validation, limits,
the seed's endpoints, campaign status, concurrent duplicate deliveries, and Prefect being down.

`quiet_receiver` tests never reach Prefect (the launcher is not started), so they check exactly what the
receiver writes. `live_receiver` tests launch for real: in-process Prefect flows publishing to the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections import Counter
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterName
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments.receiver import MAX_BODY
from metacentric.runtime import Runtime
from metacentric.tables import LaunchRow, WebhookDeliveryRow
from models import Platform
from sandbox.meta_common import ns as meta_state
from sandbox.server import RunningSandbox, free_port
from tests.e2e.conftest import (
    ReceiverUnderTest,
    live_receiver_for,
    meta_change,
    percentile,
    sandbox_posts,
    sign,
    store_rows,
    video_sha256,
    wait_until,
)

SIGNED_ENDPOINTS = ["/webhooks/meta", "/webhook/campaign-created"]


def campaign_created(campaign_id: str, **extra: Any) -> bytes:
    return json.dumps({"campaign_id": campaign_id, "campaign_name": "Artist - Song", "daily_budget": 50,
                       **extra}).encode()


def launch_rows(r: ReceiverUnderTest, campaign_id: str | None = None) -> list[LaunchRow]:
    with r.store.session() as s:
        q = s.query(LaunchRow)
        return list(q.filter(LaunchRow.campaign_id == campaign_id) if campaign_id else q)


def deliveries_for(r: ReceiverUnderTest, campaign_id: str) -> list[dict[str, Any]]:
    return [d for d in r.store.deliveries() if d["campaign_id"] == campaign_id]


def finished(r: ReceiverUnderTest, campaign_id: str) -> bool:
    return r.store.campaign_state(campaign_id) in ("COMPLETED", "FAILED")


async def prefect_launch_runs(campaign_id: str) -> list[Any]:
    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"launch-{campaign_id}"])))


def each_post_exists_once(r: ReceiverUnderTest, campaign_id: str, platforms: set[str] | None = None) -> None:
    """The store's posts and the sandbox agree: every post the store calls published exists exactly once on its
    platform; a post deferred by the platform's quota ("scheduled") does not exist yet. At least one went out."""
    posts = {p["platform"]: p for p in r.store.posts(campaign_id)}
    assert posts and all(p["status"] in ("published", "scheduled") for p in posts.values()), posts
    published = {k: v["post_id"] for k, v in posts.items() if v["status"] == "published"}
    assert published and all(published.values()), posts
    if platforms is not None:
        assert set(posts) <= platforms
    campaign = r.store.get_campaign(campaign_id)
    assert campaign is not None
    sha = video_sha256(campaign.creative.video_path)
    on_sandbox = [p for p in sandbox_posts(r.sandbox.url) if p.get("sha256") == sha and not p.get("in_reply_to")]
    assert sorted((p["platform"], p["post_id"]) for p in on_sandbox) == sorted(published.items()), on_sandbox


def say(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[measure] {line}")


# Meta's handshake ------------------------------------------------------------------------------------
async def test_handshake_echoes_the_challenge_only_for_subscribe_with_the_right_token(
        quiet_receiver: ReceiverUnderTest) -> None:
    token = quiet_receiver.rt.settings.meta_webhook_verify_token.get_secret_value()
    async with httpx.AsyncClient(base_url=quiet_receiver.url) as http:
        ok = await http.get("/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": token,
                                                      "hub.challenge": "1158201444"})
        assert ok.status_code == 200
        assert ok.headers["content-type"].startswith("text/plain")
        assert ok.text == "1158201444"  # the raw challenge, not JSON

        refused = [
            {"hub.mode": "subscribe", "hub.verify_token": token + "x", "hub.challenge": "1"},
            {"hub.mode": "unsubscribe", "hub.verify_token": token, "hub.challenge": "1"},
            {"hub.verify_token": token, "hub.challenge": "1"},
            {"hub.mode": "subscribe", "hub.challenge": "1"},
            {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
        ]
        for params in refused:
            response = await http.get("/webhooks/meta", params=params)
            assert response.status_code == 403, params
            assert response.text != "1"


# signatures ------------------------------------------------------------------------------------------
async def test_only_correctly_signed_deliveries_are_accepted_and_refused_ones_change_nothing(
        quiet_receiver: ReceiverUnderTest) -> None:
    r = quiet_receiver
    bodies = {"/webhooks/meta": meta_change("120299999999990001"),
              "/webhook/campaign-created": campaign_created("120299999999990002")}
    before = store_rows(r.store)
    async with httpx.AsyncClient(base_url=r.url) as http:
        for path, body in bodies.items():
            good = sign(r.secret, body)["x-hub-signature-256"]
            reserialized = json.dumps(json.loads(body), indent=2).encode()  # same data, other bytes
            attempts: dict[str, tuple[bytes, dict[str, str]]] = {
                "missing": (body, {"content-type": "application/json"}),
                "wrong secret": (body, sign("not-the-app-secret", body)),
                "tampered body": (body.replace(b"1202999", b"1202998"), {"x-hub-signature-256": good}),
                "re-serialized body": (reserialized, {"x-hub-signature-256": good}),
                "sha1 only": (body, {"x-hub-signature": "sha1=" + "0" * 40}),
                "no sha256= prefix": (body, {"x-hub-signature-256": good.removeprefix("sha256=")}),
                "garbage": (body, {"x-hub-signature-256": "sha256=zz"}),
            }
            for name, (content, headers) in attempts.items():
                response = await http.post(path, content=content, headers=headers)
                assert response.status_code == 401, (path, name, response.text)
        assert store_rows(r.store) == before  # nothing recorded, nothing claimed

        for path, body in bodies.items():
            response = await http.post(path, content=body, headers=sign(r.secret, body))
            assert response.status_code == 200, response.text
    recorded = {d["campaign_id"]: d for d in r.store.deliveries()}
    assert set(recorded) == {"120299999999990001", "120299999999990002"}
    assert all(d["kind"] == "launch" and d["status"] == "received" for d in recorded.values())
    assert {row.campaign_id for row in launch_rows(r)} == set(recorded)


# what is recorded but not launched -------------------------------------------------------------------
async def test_unknown_fields_are_recorded_and_acknowledged_but_not_launched(quiet_receiver: ReceiverUnderTest) -> None:
    r = quiet_receiver
    payload = {"object": "ad_account", "future_top_level_key": {"x": 1}, "entry": [
        {"id": "1000000000000002", "time": 1_760_000_100, "uid": "extra", "changes": [
            {"field": "with_issues_ad_objects", "value": {"id": "120299999999990010", "level": "CAMPAIGN"}},
            {"field": "a_field_meta_adds_next_year", "value": {"anything": [1, 2]}, "verb": "update"},
            {"field": "in_process_ad_objects", "value": {"id": "120299999999990011", "level": "AD"}},
        ]}]}
    body = json.dumps(payload).encode()
    async with httpx.AsyncClient(base_url=r.url) as http:
        first = await http.post("/webhooks/meta", content=body, headers=sign(r.secret, body))
        again = await http.post("/webhooks/meta", content=body, headers=sign(r.secret, body))
    assert first.status_code == 200 and again.status_code == 200
    assert [c["outcome"] for c in first.json()["changes"]] == ["ignored"] * 3
    assert [c["outcome"] for c in again.json()["changes"]] == ["duplicate"] * 3  # same bytes: seen already

    recorded = r.store.deliveries()
    assert len(recorded) == 3
    assert all(d["kind"] == "ignored" and d["status"] == "ignored" for d in recorded)
    by_field = {d["payload"]["field"]: d["payload"] for d in recorded}
    assert by_field["a_field_meta_adds_next_year"]["value"] == {"anything": [1, 2]}
    assert by_field["a_field_meta_adds_next_year"]["verb"] == "update"  # extra keys are kept, not dropped
    assert launch_rows(r) == []


async def test_invalid_json_is_400_and_invalid_fields_are_422_naming_the_field(
        quiet_receiver: ReceiverUnderTest) -> None:
    r = quiet_receiver
    before = store_rows(r.store)
    campaigns_on_meta = len(meta_state(r.sandbox.state)["campaigns"])
    async with httpx.AsyncClient(base_url=r.url) as http:
        for path in SIGNED_ENDPOINTS:
            for broken in (b'{"object": "ad_account", "entry": [', b"\xff\xfe not utf-8", b""):
                response = await http.post(path, content=broken, headers=sign(r.secret, broken))
                assert response.status_code == 400, (path, broken, response.text)

        invalid: list[tuple[str, dict[str, Any] | list[Any], str]] = [
            ("/webhooks/meta", {"object": "page", "entry": [{"id": "1", "time": 1}]}, "object"),
            ("/webhooks/meta", {"object": "ad_account", "entry": []}, "entry"),
            ("/webhooks/meta", {"object": "ad_account", "entry": [{"time": 1}]}, "entry.0.id"),
            ("/webhooks/meta", {"object": "ad_account", "entry": [{"id": "1", "time": "soon"}]}, "entry.0.time"),
            ("/webhooks/meta", [1, 2], "(body)"),
            ("/webhook/campaign-created", {"campaign_name": "no id"}, "campaign_id"),
            ("/webhook/campaign-created", {"campaign_id": "", "daily_budget": 10}, "campaign_id"),
            ("/webhook/campaign-created", {"campaign_id": "1202", "daily_budget": -5}, "daily_budget"),
        ]
        for path, data, field in invalid:
            body = json.dumps(data).encode()
            response = await http.post(path, content=body, headers=sign(r.secret, body))
            assert response.status_code == 422, (path, data, response.text)
            assert field in {d["field"] for d in response.json()["detail"]}, response.json()

        bearer = {"authorization": f"Bearer {r.api_token}"}
        good = {"name": "Nova - Static", "daily_budget": 50, "artist_name": "Nova", "song_name": "Static"}
        for change, field in [({"daily_budget": 5}, "daily_budget"), ({"artist_name": None}, "artist_name"),
                              ({"platforms": ["myspace"]}, "platforms.0"), ({"colour": "red"}, "colour"),
                              ({"platforms": []}, "platforms")]:
            data = {k: v for k, v in {**good, **change}.items() if v is not None}
            response = await http.post("/campaigns/create-with-orchestration", json=data, headers=bearer)
            assert response.status_code == 422, (change, response.text)
            assert field in {d["field"] for d in response.json()["detail"]}, response.json()
        response = await http.post("/campaigns/create-with-orchestration", content=b"{nope", headers=bearer)
        assert response.status_code == 422
    assert store_rows(r.store) == before
    assert len(meta_state(r.sandbox.state)["campaigns"]) == campaigns_on_meta  # nothing created on Meta


async def test_bodies_over_one_megabyte_are_413_with_or_without_content_length(
        quiet_receiver: ReceiverUnderTest) -> None:
    r = quiet_receiver
    before = store_rows(r.store)

    def padded(size: int) -> bytes:  # a valid, signed JSON body of exactly `size` bytes
        body = meta_change("120299999999990020")
        return body + b" " * (size - len(body))

    async def chunked(data: bytes) -> Any:
        for i in range(0, len(data), 64 * 1024):
            yield data[i:i + 64 * 1024]

    too_big = padded(MAX_BODY + 1)
    bearer = {"authorization": f"Bearer {r.api_token}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=r.url, timeout=30) as http:
        for path in SIGNED_ENDPOINTS:
            response = await http.post(path, content=too_big, headers=sign(r.secret, too_big))
            assert response.status_code == 413, (path, "content-length")
            response = await http.post(path, content=chunked(too_big), headers=sign(r.secret, too_big))
            assert response.status_code == 413, (path, "chunked")
        response = await http.post("/campaigns/create-with-orchestration", content=too_big, headers=bearer)
        assert response.status_code == 413
        assert store_rows(r.store) == before

        exactly = padded(MAX_BODY)  # the limit itself is allowed
        response = await http.post("/webhooks/meta", content=exactly, headers=sign(r.secret, exactly))
        assert response.status_code == 200, response.text
    assert [d["campaign_id"] for d in r.store.deliveries()] == ["120299999999990020"]


async def test_acknowledgements_at_20_concurrent_senders_lose_nothing(
        quiet_receiver: ReceiverUnderTest, capsys: pytest.CaptureFixture[str]) -> None:
    """200 distinct launch deliveries from 20 concurrent senders: every one acknowledged, recorded and claimed."""
    r = quiet_receiver
    ids = [f"12029999999{n:07d}" for n in range(200)]
    latencies: list[float] = []

    async def sender(http: httpx.AsyncClient, mine: list[str]) -> list[int]:
        codes = []
        for campaign_id in mine:
            body = meta_change(campaign_id)
            started = time.perf_counter()
            response = await http.post("/webhooks/meta", content=body, headers=sign(r.secret, body))
            latencies.append(time.perf_counter() - started)
            codes.append(response.status_code)
        return codes

    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    async with httpx.AsyncClient(base_url=r.url, limits=limits, timeout=60) as http:
        await http.get("/healthz")
        codes = await asyncio.gather(*(sender(http, ids[i::20]) for i in range(20)))
    assert Counter(c for cs in codes for c in cs) == Counter({200: 200})
    assert sorted(d["campaign_id"] for d in r.store.deliveries(status="received")) == sorted(ids)
    assert len(launch_rows(r)) == 200
    # Senders and receiver share this process and the test run's load: a smoke figure, not the benchmark's.
    say(capsys, f"receiver ack latency, 20 concurrent senders x 10 deliveries, senders in-process (SQLite store): "
                f"p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms")


# the seed's one-call launch --------------------------------------------------------------------------
async def test_create_with_orchestration_needs_the_bearer_token(quiet_receiver: ReceiverUnderTest) -> None:
    r = quiet_receiver
    before = store_rows(r.store)
    campaigns_on_meta = len(meta_state(r.sandbox.state)["campaigns"])
    data = {"name": "Nova - Static", "daily_budget": 50, "artist_name": "Nova", "song_name": "Static"}
    async with httpx.AsyncClient(base_url=r.url) as http:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": r.api_token},
                        {"authorization": f"Basic {r.api_token}"}, {"authorization": "Bearer"}):
            response = await http.post("/campaigns/create-with-orchestration", json=data, headers=headers)
            assert response.status_code == 401, headers
    assert store_rows(r.store) == before
    assert len(meta_state(r.sandbox.state)["campaigns"]) == campaigns_on_meta


async def test_create_with_orchestration_creates_the_campaign_launches_it_and_reports_status(
        live_receiver: ReceiverUnderTest) -> None:
    r = live_receiver
    request = {"name": "Luz Marina - Neon", "daily_budget": 90, "artist_name": "Luz Marina", "song_name": "Neon",
               "platforms": ["youtube", "x"], "targeting": {"countries": ["MX", "US"]}}
    async with httpx.AsyncClient(base_url=r.url, timeout=60) as http:
        response = await http.post("/campaigns/create-with-orchestration", json=request,
                                   headers={"authorization": f"Bearer {r.api_token}"})
        assert response.status_code == 200, response.text
        answer = response.json()
        campaign_id = answer["campaign"]["id"]
        assert answer["campaign"] == {"id": campaign_id, "name": "Luz Marina - Neon", "daily_budget": 90.0}
        assert answer["launch"] == {"status": "started"}
        assert answer["monitoring_url"] == f"/campaigns/{campaign_id}/dashboard"
        assert answer["analysis"] is not None, "the analysis was not ready within the receiver's wait"
        assert answer["analysis"]["campaign_id"] == campaign_id
        assert 0 <= answer["analysis"]["virality_score"] <= 1

        on_meta = r.on_launcher_loop(r.rt.clients.meta.get_campaign(campaign_id))
        assert on_meta["name"] == "Luz Marina - Neon"

        await wait_until(lambda: finished(r, campaign_id), what=f"launch of {campaign_id}")
        status = (await http.get(f"/campaigns/{campaign_id}")).json()
        unknown = await http.get("/campaigns/120200000099999999")
    assert status["campaign_id"] == campaign_id
    assert status["state"] == "COMPLETED"
    runs = await prefect_launch_runs(campaign_id)
    assert [str(run.id) for run in runs] == status["flow_run_ids"]  # exactly one flow run, the one reported
    assert set(status["platforms"]) <= {"youtube", "x"} and status["platforms"]
    assert {k: v["status"] for k, v in status["platforms"].items()} == {
        p["platform"]: p["status"] for p in r.store.posts(campaign_id)}
    each_post_exists_once(r, campaign_id, {"youtube", "x"})
    assert unknown.status_code == 404


# Meta's own webhook and duplicates --------------------------------------------------------------------
async def test_the_sandbox_meta_webhook_launches_a_new_campaign(
        live_receiver: ReceiverUnderTest, capsys: pytest.CaptureFixture[str]) -> None:
    """Subscribe (Meta checks the callback with the handshake), create a campaign on Meta, and Meta's own
    signed in_process_ad_objects webhook starts the launch."""
    r = live_receiver
    callback = f"{r.url}/webhooks/meta"
    meta = meta_state(r.sandbox.state)
    subscriptions = meta["subscriptions"]
    # Campaigns earlier tests created on the session's sandbox are announced when they leave IN_PROCESS, to
    # whoever is subscribed then: let that happen before this receiver subscribes.
    advance_clock = {"url": f"{r.sandbox.url}/_admin/clock/advance", "json": {"seconds": 3}, "timeout": 10}
    httpx.post(**advance_clock).raise_for_status()
    await wait_until(lambda: not meta["in_process"], what="earlier campaigns to leave IN_PROCESS")
    try:
        r.on_launcher_loop(r.rt.clients.meta.subscribe_webhooks(
            callback, r.rt.settings.meta_webhook_verify_token.get_secret_value()))
        campaign = r.new_campaign("Kai Monroe - Gold Teeth")
        # Meta announces a campaign when it leaves IN_PROCESS (3 s on the sandbox's clock): skip the wait.
        httpx.post(**advance_clock).raise_for_status()
        await wait_until(lambda: finished(r, campaign.id), what="the webhook-started launch")
        await wait_until(lambda: not r.store.deliveries(status="received"), what="the hand-over to be recorded")
    finally:  # the session's sandbox must not keep calling this receiver after the test
        for subs in subscriptions.values():
            for obj in [o for o, s in subs.items() if s["callback_url"] == callback]:
                del subs[obj]
    assert r.store.campaign_state(campaign.id) == "COMPLETED"
    (delivery,) = r.store.deliveries()  # this campaign's announcement, nothing else
    assert delivery["campaign_id"] == campaign.id
    assert delivery["kind"] == "launch" and delivery["payload"]["field"] == "in_process_ad_objects"
    log = [w for w in meta["webhook_log"] if w["campaign_id"] == campaign.id]
    assert log and all(w["delivered"] for w in log)
    (run,) = await prefect_launch_runs(campaign.id)
    assert delivery["flow_run_id"] == str(run.id) and delivery["status"] == "handed_over"
    each_post_exists_once(r, campaign.id)

    async with get_client() as client:
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    with r.store.session() as s:
        received_at = s.get(WebhookDeliveryRow, delivery["id"]).received_at  # type: ignore[union-attr]
    first_task = min(t.start_time for t in tasks if t.start_time)
    received_at = received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)
    say(capsys, f"webhook received -> first task started (inprocess launcher): "
                f"{(first_task - received_at).total_seconds() * 1000:.0f} ms; flow run total "
                f"{(run.end_time - run.start_time).total_seconds():.1f} s")


async def test_200_concurrent_duplicate_deliveries_launch_the_campaign_exactly_once(
        live_receiver: ReceiverUnderTest) -> None:
    r = live_receiver
    # Not TikTok: its 15-posts-a-day cap is shared by every test on the session's sandbox.
    campaign = r.new_campaign("The Hollow Pines - Paper Lanterns", platforms=[Platform.YOUTUBE, Platform.INSTAGRAM,
                                                                              Platform.X])
    same = meta_change(campaign.id, when=1_760_000_500)  # Meta retrying one delivery: identical bytes
    deliveries: list[tuple[str, bytes]] = (
        [("/webhooks/meta", same)] * 80
        + [("/webhooks/meta", meta_change(campaign.id, when=1_760_000_500 + n)) for n in range(1, 41)]
        + [("/webhooks/meta", meta_change(campaign.id, when=1_760_000_900 + n, field="field_changed"))
           for n in range(40)]
        + [("/webhook/campaign-created", campaign_created(campaign.id, n=n)) for n in range(40)])
    random.Random(7).shuffle(deliveries)

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=r.url, limits=limits, timeout=60) as http:
        responses = await asyncio.gather(*(http.post(path, content=body, headers=sign(r.secret, body))
                                           for path, body in deliveries))
        assert [x.status_code for x in responses] == [200] * 200
        outcomes = Counter(x.json().get("outcome") or x.json()["changes"][0]["outcome"] for x in responses)
        assert outcomes == Counter({"launch": 1, "duplicate": 199})

        await wait_until(lambda: finished(r, campaign.id), what="the launch")
        await wait_until(lambda: not r.store.deliveries(status="received"), what="the hand-over to be recorded")
        status = (await http.get(f"/campaigns/{campaign.id}")).json()

    assert status["state"] == "COMPLETED"
    assert len(launch_rows(r, campaign.id)) == 1
    launches = [d for d in deliveries_for(r, campaign.id) if d["kind"] == "launch"]
    assert len(launches) == 1 and launches[0]["status"] == "handed_over"
    # Each distinct delivery is recorded once: Meta's by (entry, time, change); the seed's payload has no
    # delivery id, so its deliveries are one per campaign.
    assert len(deliveries_for(r, campaign.id)) == 41 + 40 + 1
    runs = await prefect_launch_runs(campaign.id)
    assert len(runs) == 1 and status["flow_run_ids"] == [str(runs[0].id)]
    each_post_exists_once(r, campaign.id, {"youtube", "instagram", "x"})


# Prefect down ----------------------------------------------------------------------------------------
class TcpProxy:
    """A loopback TCP forwarder in its own thread: 'down' means nothing listens on its port."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, name="prefect-proxy", daemon=True)
        self._thread.start()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def up(self) -> None:
        async def start() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._call(start())

    def down(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
        self._call(stop())

    def close(self) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(self._pipe(reader, upstream), self._pipe(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    w.close()
            self._connections.discard(task)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()


async def test_a_delivery_during_a_prefect_outage_is_kept_and_launched_when_prefect_is_back(
        prefect_harness: None, e2e_rt: Runtime, sandbox: RunningSandbox) -> None:
    """The launcher talks to Prefect through a proxy that is down at first: the delivery is acknowledged and
    stays "received" while hand-over fails; once the proxy is up, the same launcher launches it, once."""
    proxy = TcpProxy(urlsplit(PREFECT_API_URL.value()).port or 80)
    try:
        with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{proxy.port}/api"}):
            receiver = live_receiver_for(e2e_rt, sandbox, max_backoff_s=1.0)  # the launcher copies these settings
            r = receiver.__enter__()
        try:
            campaign = r.new_campaign("Dune Arcade - Overdrive", platforms=[Platform.YOUTUBE, Platform.X])
            body = campaign_created(campaign.id)
            async with httpx.AsyncClient(base_url=r.url, timeout=30) as http:
                response = await http.post("/webhook/campaign-created", content=body, headers=sign(r.secret, body))
                assert response.status_code == 200 and response.json()["outcome"] == "launch"

                await wait_until(lambda: r.launcher.failures >= 1, what="a failed hand-over attempt")
                (delivery,) = deliveries_for(r, campaign.id)
                assert delivery["status"] == "received" and delivery["flow_run_id"] is None
                status = (await http.get(f"/campaigns/{campaign.id}")).json()
                assert status["flow_run_ids"] == [] and status["platforms"] == {}

                proxy.up()  # Prefect is back
                await wait_until(lambda: finished(r, campaign.id), what="the launch after the outage")
                await wait_until(lambda: deliveries_for(r, campaign.id)[0]["status"] == "handed_over",
                                 what="the hand-over to be recorded")
                status = (await http.get(f"/campaigns/{campaign.id}")).json()
        finally:
            receiver.__exit__(None, None, None)
    finally:
        proxy.close()
    assert status["state"] == "COMPLETED"
    runs = await prefect_launch_runs(campaign.id)
    assert len(runs) == 1 and status["flow_run_ids"] == [str(runs[0].id)]
    assert r.launcher.failures == 0
    each_post_exists_once(r, campaign.id, {"youtube", "x"})

