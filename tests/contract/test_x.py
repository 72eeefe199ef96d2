"""X client <-> X fake, over real loopback HTTP: wire format, threads, resumable upload, lost answers,
duplicates, rate limits, quotas and token rotation."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from metacentric.settings import SANDBOX_APP_SECRET, SANDBOX_TOKEN, Settings
from metacentric.store import Store
from models import Platform, PlatformCopy, PlatformPlan
from platforms.errors import (
    AuthExpiredError,
    PermanentError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
)
from platforms.files import sha256_file
from platforms.x import XClient
from sandbox import x as x_fake
from sandbox.faults import FaultRule
from sandbox.server import RunningSandbox

USER_ID = "1700000000000000001"


# helpers ----------------------------------------------------------------------------------------------------
def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:10]}"


def plan(text: str, *thread: str, campaign: str | None = None) -> PlatformPlan:
    return PlatformPlan(campaign_id=campaign or uuid.uuid4().hex, platform=Platform.X, daily_budget=10.0,
                        copy=PlatformCopy(platform=Platform.X, text=text, thread=list(thread)))


def posts_with(sandbox: RunningSandbox, text: str) -> list[dict[str, Any]]:
    return [p for p in x_fake.published(sandbox.state) if p["text"] == text]


def fault(sandbox: RunningSandbox, endpoint: str, kind: str, count: int | None = 1) -> None:
    sandbox.state.faults.add(FaultRule(platform="x", endpoint=endpoint, kind=kind, count=count))  # type: ignore[arg-type]


def raw(sandbox: RunningSandbox, token: str = SANDBOX_TOKEN) -> httpx.Client:
    return httpx.Client(base_url=sandbox.url + "/x", headers={"authorization": f"Bearer {token}"})


def set_limits(sandbox: RunningSandbox, **overrides: Any) -> None:
    httpx.put(sandbox.url + "/_admin/x/limits", json=overrides).raise_for_status()


def duplicates_refused(sandbox: RunningSandbox) -> int:
    return int(sandbox.state.ns("x").get("stats", {}).get("duplicates_refused", 0))


def media_records(sandbox: RunningSandbox) -> dict[str, dict[str, Any]]:
    return dict(sandbox.state.ns("x").get("media", {}))


@pytest.fixture(autouse=True)
def quick_processing(sandbox: RunningSandbox) -> Iterator[None]:
    """Video processing in 50 ms of simulated time instead of a second; limits restored afterwards."""
    set_limits(sandbox, processing_s=0.05)
    yield
    httpx.delete(sandbox.url + "/_admin/x/limits").raise_for_status()


@pytest.fixture
def video(tmp_path: Path) -> str:
    path = tmp_path / "release.mp4"
    path.write_bytes(os.urandom(300_000))
    return str(path)


def make_client(settings: Settings, store: Store, sandbox: RunningSandbox, **kw: Any) -> XClient:
    kw.setdefault("clock", sandbox.state.clock.time)
    return XClient.from_settings(settings, store, **kw)


@pytest.fixture
async def client(settings: Settings, store: Store, sandbox: RunningSandbox) -> AsyncIterator[XClient]:
    c = make_client(settings, store, sandbox)
    yield c
    await c.aclose()


async def publish(client: XClient, store: Store, p: PlatformPlan, video: str, intents: Any = None) -> Any:
    store.claim_post(p.campaign_id, "x")
    return await client.publish(p, video, intents or store)


# wire format ------------------------------------------------------------------------------------------------
def test_wire_post_lookup_and_rate_headers(sandbox: RunningSandbox) -> None:
    text = unique("Out now: Night Drive & <friends>")
    with raw(sandbox) as c:
        r = c.post("/2/tweets", json={"text": text})
        assert r.status_code == 201
        data = r.json()["data"]
        assert data["id"].isdigit() and data["edit_history_tweet_ids"] == [data["id"]]
        assert data["text"] == text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        reset = int(r.headers["x-rate-limit-reset"])
        assert r.headers["x-rate-limit-limit"] == "100" and reset > sandbox.state.clock.time()
        for h in ("x-user-limit-24hour", "x-app-limit-24hour"):
            assert int(r.headers[f"{h}-remaining"]) < int(r.headers[f"{h}-limit"])
        one, two = c.get("/2/users/me"), c.get("/2/users/me")
        assert one.json()["data"]["id"] == USER_ID
        assert int(two.headers["x-rate-limit-remaining"]) == int(one.headers["x-rate-limit-remaining"]) - 1
        reply = c.post("/2/tweets", json={"text": unique("reply"),
                                          "reply": {"in_reply_to_tweet_id": data["id"]}})
        assert reply.status_code == 201
        fields = "public_metrics,referenced_tweets,created_at"
        got = c.get("/2/tweets", params={"ids": f"{data['id']},{reply.json()['data']['id']},1",
                                         "tweet.fields": fields}).json()
        assert [t["id"] for t in got["data"]] == [data["id"], reply.json()["data"]["id"]]
        assert set(got["data"][0]["public_metrics"]) == {"retweet_count", "reply_count", "like_count",
                                                         "quote_count", "bookmark_count", "impression_count"}
        assert got["data"][1]["referenced_tweets"] == [{"type": "replied_to", "id": data["id"]}]
        assert got["data"][0]["created_at"].endswith("Z")
        assert got["errors"][0]["type"].endswith("/resource-not-found") and got["errors"][0]["value"] == "1"
        timeline = c.get(f"/2/users/{USER_ID}/tweets", params={"max_results": 5}).json()
        assert timeline["data"][0]["id"] == reply.json()["data"]["id"]
        assert timeline["meta"]["result_count"] <= 5


def test_wire_errors_are_problem_json(sandbox: RunningSandbox) -> None:
    text = unique("dup")
    with raw(sandbox) as c:
        assert c.post("/2/tweets", json={"text": text}).status_code == 201
        dup = c.post("/2/tweets", json={"text": text})
        assert dup.status_code == 403
        assert dup.json() == {"title": "Forbidden", "type": "about:blank", "status": 403,
                              "detail": "You are not allowed to create a Tweet with duplicate content."}
        orphan = c.post("/2/tweets", json={"text": unique("x"), "reply": {"in_reply_to_tweet_id": "42"}})
        assert orphan.status_code == 403 and "duplicate" not in orphan.json()["detail"]
        bad_media = c.post("/2/tweets", json={"text": unique("m"), "media": {"media_ids": ["77"]}})
        assert bad_media.status_code == 400
        assert bad_media.json()["type"] == "https://api.twitter.com/2/problems/invalid-request"
        assert "media.media_ids" in bad_media.json()["errors"][0]["parameters"]
        fault(sandbox, "tweets.create", "rate_limit")
        limited = c.post("/2/tweets", json={"text": unique("r")})
        assert limited.status_code == 429 and limited.json()["title"] == "Too Many Requests"
        assert limited.headers["x-rate-limit-remaining"] == "0"
        assert int(limited.headers["x-rate-limit-reset"]) > sandbox.state.clock.time()
        fault(sandbox, "tweets.lookup", "quota")
        capped = c.get("/2/tweets", params={"ids": "1"})
        assert capped.status_code == 429 and capped.json()["type"].endswith("/usage-capped")
    with raw(sandbox, token="nope") as c:
        assert c.get("/2/users/me").status_code == 401


def test_wire_media_upload_protocol(sandbox: RunningSandbox) -> None:
    def append(c: httpx.Client, mid: str, index: int, data: bytes) -> httpx.Response:
        return c.post(f"/2/media/upload/{mid}/append", data={"segment_index": str(index)},
                      files={"media": ("blob", data, "application/octet-stream")})

    with raw(sandbox) as c:
        init = c.post("/2/media/upload/initialize",
                      json={"media_type": "video/mp4", "total_bytes": 10, "media_category": "tweet_video"})
        assert init.status_code == 200
        mid, key = init.json()["data"]["id"], init.json()["data"]["media_key"]
        assert key == f"13_{mid}" and init.json()["data"]["expires_after_secs"] > 0
        assert append(c, mid, 1, b"world").status_code == 400  # out of order
        assert append(c, mid, 0, b"hello").status_code == 200
        assert append(c, mid, 0, b"hello").status_code == 200  # re-sent after a lost answer: a no-op
        assert append(c, mid, 0, b"HELLO").status_code == 400  # not the same bytes: refused
        early = c.post(f"/2/media/upload/{mid}/finalize")
        assert early.status_code == 400  # 5 of 10 bytes
        assert append(c, mid, 1, b"world").status_code == 200
        fin = c.post(f"/2/media/upload/{mid}/finalize").json()["data"]
        assert fin["processing_info"] == {"state": "pending", "check_after_secs": 1} and fin["size"] == 10
        with_video = {"text": unique("v"), "media": {"media_ids": [mid]}}
        assert c.post("/2/tweets", json=with_video).status_code == 400  # not processed yet
        sandbox.state.clock.advance(1)
        status = c.get("/2/media/upload", params={"command": "STATUS", "media_id": mid}).json()["data"]
        assert status["processing_info"]["state"] == "succeeded"
        made = c.post("/2/tweets", json=with_video)
        assert made.status_code == 201 and made.json()["data"]["text"].split()[-1].startswith("https://t.co/")
    assert media_records(sandbox)[mid]["sha256"] == hashlib.sha256(b"helloworld").hexdigest()


# publishing -------------------------------------------------------------------------------------------------
async def test_publish_thread_of_three(client: XClient, store: Store, sandbox: RunningSandbox,
                                       video: str) -> None:
    texts = [unique("Night Drive is out"), unique("Made in one night"), unique("Stream it")]
    p = plan(*texts)
    post = await publish(client, store, p, video)
    first, second, third = (posts_with(sandbox, t) for t in texts)
    assert len(first) == len(second) == len(third) == 1
    assert post.post_id == first[0]["post_id"] and post.url == f"https://x.com/i/web/status/{post.post_id}"
    assert first[0]["sha256"] == sha256_file(video) and first[0]["size"] == os.path.getsize(video)
    assert second[0]["in_reply_to"] == first[0]["post_id"] and third[0]["in_reply_to"] == second[0]["post_id"]
    assert {second[0]["thread_root"], third[0]["thread_root"]} == {post.post_id}
    assert store.load(p.campaign_id, "x")["tweet_ids"] == [first[0]["post_id"], second[0]["post_id"],
                                                           third[0]["post_id"]]
    again = await client.publish(p, video, store)  # a re-run publishes nothing new
    assert again == post and all(len(posts_with(sandbox, t)) == 1 for t in texts)


class DropMidSegment:
    """The store's intent log; once `after` segments are acknowledged, the next append is cut off."""

    def __init__(self, store: Store, sandbox: RunningSandbox, after: int) -> None:
        self.store, self.sandbox, self.after, self.armed = store, sandbox, after, False

    def load(self, campaign_id: str, platform: str) -> dict[str, Any]:
        return self.store.load(campaign_id, platform)

    def save(self, campaign_id: str, platform: str, state: dict[str, Any]) -> None:
        self.store.save(campaign_id, platform, state)
        if not self.armed and (state.get("media") or {}).get("next_segment") == self.after:
            self.armed = True
            fault(self.sandbox, "media.append", "drop_connection")


async def test_big_upload_resumes_after_dropped_connection(settings: Settings, store: Store,
                                                           sandbox: RunningSandbox, tmp_path: Path) -> None:
    path = tmp_path / "big.mp4"
    size = 64 * 1024 * 1024 + 1_234_567
    with open(path, "wb") as f:  # sparse, with markers so every segment's place matters
        f.truncate(size)
        for offset in (0, 20_000_000, 40_000_000, size - 16):
            f.seek(offset)
            f.write(os.urandom(16))
    set_limits(sandbox, max_segment_bytes=16 * 1024 * 1024)
    client = make_client(settings, store, sandbox, segment_bytes=16 * 1024 * 1024)
    texts = [unique("Big one"), unique("and a reply")]
    p = plan(*texts)
    before = set(media_records(sandbox))
    try:
        with pytest.raises(TransientError):
            await publish(client, store, p, str(path), DropMidSegment(store, sandbox, after=2))
        assert store.load(p.campaign_id, "x")["media"]["next_segment"] == 2
        assert posts_with(sandbox, texts[0]) == []
        post = await client.publish(p, str(path), store)
    finally:
        await client.aclose()
    new_media = [m for k, m in media_records(sandbox).items() if k not in before]
    assert len(new_media) == 1 and new_media[0]["next_segment"] == 5  # segments 0, 1 were not sent twice
    first = posts_with(sandbox, texts[0])
    assert len(first) == 1 and first[0]["post_id"] == post.post_id
    assert first[0]["sha256"] == sha256_file(str(path)) and first[0]["size"] == size
    assert len(posts_with(sandbox, texts[1])) == 1


async def test_lost_answer_on_create_posts_exactly_once(client: XClient, store: Store,
                                                        sandbox: RunningSandbox, video: str) -> None:
    # A link and a video in the first post: X shows both as t.co links, and the look must still match.
    texts = [unique("Lost answer, listen at https://example.com/night-drive"), unique("reply one"),
             unique("reply two")]
    fault(sandbox, "tweets.create", "ambiguous")
    refused = duplicates_refused(sandbox)
    post = await publish(client, store, plan(*texts), video)
    assert [len(posts_with(sandbox, t)) for t in texts] == [1, 1, 1]
    assert duplicates_refused(sandbox) == refused  # found by looking; never written a second time
    assert posts_with(sandbox, texts[0])[0]["post_id"] == post.post_id
    assert posts_with(sandbox, texts[1])[0]["in_reply_to"] == post.post_id


async def test_lost_answer_then_failed_look_is_resolved_by_looking_first(
        client: XClient, store: Store, sandbox: RunningSandbox, video: str) -> None:
    text = unique("Look before you write")
    p = plan(text)
    fault(sandbox, "tweets.create", "ambiguous")
    fault(sandbox, "users.me", "transient")
    with pytest.raises(TransientError):
        await publish(client, store, p, video)
    assert store.load(p.campaign_id, "x")["pending"]["unknown"] is True
    refused = duplicates_refused(sandbox)
    post = await client.publish(p, video, store)
    assert [x["post_id"] for x in posts_with(sandbox, text)] == [post.post_id]
    assert duplicates_refused(sandbox) == refused  # the retry looked first instead of writing again


async def test_duplicate_403_after_lost_answer_is_reconciled(client: XClient, store: Store,
                                                             sandbox: RunningSandbox, video: str) -> None:
    texts = [unique("Eventually consistent"), unique("second")]
    set_limits(sandbox, timeline_lag_s=600)  # the lost post will not show up in the timeline at once
    fault(sandbox, "tweets.create", "ambiguous")
    refused_before = duplicates_refused(sandbox)
    task = asyncio.create_task(publish(client, store, plan(*texts), video))
    while duplicates_refused(sandbox) == refused_before:  # looked, missed, wrote again, got the 403
        assert not task.done(), task.exception()
        await asyncio.sleep(0.01)
    set_limits(sandbox, timeline_lag_s=0)
    sandbox.state.clock.advance(1)
    post = await asyncio.wait_for(task, timeout=30)
    assert [x["post_id"] for x in posts_with(sandbox, texts[0])] == [post.post_id]
    assert len(posts_with(sandbox, texts[1])) == 1


async def test_duplicate_without_earlier_attempt_is_permanent(client: XClient, store: Store,
                                                              sandbox: RunningSandbox, video: str) -> None:
    text = unique("Said it before")
    with raw(sandbox) as c:
        assert c.post("/2/tweets", json={"text": text}).status_code == 201
    p = plan(text)
    with pytest.raises(PermanentError) as err:
        await publish(client, store, p, video)
    assert err.value.code == "duplicate-content" and "duplicate" in err.value.message
    assert len(posts_with(sandbox, text)) == 1 and "pending" not in store.load(p.campaign_id, "x")


async def test_expired_media_is_uploaded_again(settings: Settings, store: Store, sandbox: RunningSandbox,
                                               video: str) -> None:
    set_limits(sandbox, media_expires_s=5)
    # Real time as the client's clock: the sandbox's media expires while the client still trusts it.
    client = make_client(settings, store, sandbox, clock=time.time)
    text = unique("Fresh media")
    p = plan(text)
    fault(sandbox, "tweets.create", "quota")
    try:
        with pytest.raises(QuotaExhaustedError):
            await publish(client, store, p, video)
        old = store.load(p.campaign_id, "x")["media"]["id"]
        sandbox.state.clock.advance(10)
        post = await client.publish(p, video, store)
    finally:
        await client.aclose()
    [made] = posts_with(sandbox, text)
    assert made["post_id"] == post.post_id and made["sha256"] == sha256_file(video)
    assert store.load(p.campaign_id, "x")["media"]["id"] != old


async def test_media_processing_failure_and_stuck(settings: Settings, store: Store, sandbox: RunningSandbox,
                                                  client: XClient, video: str) -> None:
    fault(sandbox, "media.status", "failed")
    p = plan(unique("Broken video"))
    with pytest.raises(PermanentError) as err:
        await publish(client, store, p, video)
    assert err.value.code == "InvalidMedia" and "media" not in store.load(p.campaign_id, "x")
    sandbox.state.faults.clear()
    fault(sandbox, "media.status", "stuck")
    impatient = make_client(settings.model_copy(update={"poll_timeout_s": 0.3}), store, sandbox)
    q = plan(unique("Stuck video"))
    try:
        with pytest.raises(TransientError) as err2:
            await publish(impatient, store, q, video)
    finally:
        await impatient.aclose()
    assert err2.value.code == "media-processing"
    assert store.load(q.campaign_id, "x")["media"]["finalized"] is True


# limits -----------------------------------------------------------------------------------------------------
async def test_429_gives_reset_and_next_call_is_refused_before_http(
        client: XClient, store: Store, sandbox: RunningSandbox, video: str) -> None:
    text = unique("Too fast")
    p = plan(text)
    fault(sandbox, "tweets.create", "rate_limit")
    with pytest.raises(RateLimitedError) as err:
        await publish(client, store, p, video)
    reset = store.limit("x", "tweets.create")["window"]["reset"]
    assert err.value.until == datetime.fromtimestamp(reset, UTC)
    assert sandbox.state.clock.time() + 800 < reset <= sandbox.state.clock.time() + 901
    with pytest.raises(RateLimitedError) as again:  # the fault is spent: only the client can refuse now
        await client.publish(p, video, store)
    assert again.value.until == err.value.until and posts_with(sandbox, text) == []
    assert sandbox.state.faults.rules()[0].fired == 1


async def test_caps_raise_quota_exhausted(client: XClient, store: Store, sandbox: RunningSandbox,
                                          video: str) -> None:
    with raw(sandbox) as c:
        c.post("/2/tweets", json={"text": unique("warm-up")})  # at least one post in today's window
    set_limits(sandbox, user_24h={"tweets.create": 1})
    p = plan(unique("Over the daily cap"))
    with pytest.raises(QuotaExhaustedError) as err:
        await publish(client, store, p, video)
    assert err.value.code == "x-user-limit-24hour"
    assert err.value.until.timestamp() == store.limit("x", "tweets.create")["user_24h"]["reset"]
    with pytest.raises(QuotaExhaustedError):  # known before calling
        await client.publish(p, video, store)
    fault(sandbox, "tweets.lookup", "quota")
    with pytest.raises(QuotaExhaustedError) as capped:
        await client.fetch_metrics("c1", ["1"], date.today())
    assert capped.value.code == "usage-capped" and capped.value.until.day == 1


# metrics ----------------------------------------------------------------------------------------------------
async def test_fetch_metrics_maps_public_metrics(client: XClient, sandbox: RunningSandbox) -> None:
    with raw(sandbox) as c:
        tweet_id = c.post("/2/tweets", json={"text": unique("metrics")}).json()["data"]["id"]
        sandbox.state.ns("x")["tweets"][tweet_id]["created_at"] -= 3 * 86400  # a post three days old

        def lookup() -> dict[str, int]:
            r = c.get("/2/tweets", params={"ids": tweet_id, "tweet.fields": "public_metrics"})
            return r.json()["data"][0]["public_metrics"]  # type: ignore[no-any-return]

        low = lookup()
        fault(sandbox, "tweets.lookup", "transient")
        with pytest.raises(TransientError):
            await client.fetch_metrics("c1", [tweet_id], date(2026, 1, 3))
        got, missing = await client.fetch_metrics("c1", [tweet_id, "1"], date(2026, 1, 3))
        high = lookup()
    assert low["impression_count"] > 0
    assert low["impression_count"] <= (got.views or 0) <= high["impression_count"]
    assert low["like_count"] <= (got.likes or 0) <= high["like_count"]
    assert low["reply_count"] <= (got.comments or 0) <= high["reply_count"]
    assert (low["retweet_count"] + low["quote_count"] <= (got.shares or 0)
            <= high["retweet_count"] + high["quote_count"])
    assert low["bookmark_count"] <= (got.saves or 0) <= high["bookmark_count"]
    assert (got.platform, got.post_id, got.day) == (Platform.X, tweet_id, date(2026, 1, 3))
    assert missing.post_id == "1" and missing.views is None and not missing.available


# tokens -----------------------------------------------------------------------------------------------------
def _connect_new_account(sandbox: RunningSandbox, ttl: int = 100) -> tuple[str, str]:
    """What the consent screen + authorization-code exchange give a newly connected account."""
    r = httpx.post(sandbox.url + "/x/2/oauth2/token", auth=("sandbox-client", SANDBOX_APP_SECRET), data={
        "grant_type": "authorization_code", "code": uuid.uuid4().hex, "code_verifier": "v" * 43,
        "redirect_uri": "http://127.0.0.1/callback"})
    assert r.status_code == 200 and r.json()["expires_in"] == ttl
    return r.json()["access_token"], r.json()["refresh_token"]


def _refresh_raw(sandbox: RunningSandbox, refresh_token: str) -> httpx.Response:
    return httpx.post(sandbox.url + "/x/2/oauth2/token", auth=("sandbox-client", SANDBOX_APP_SECRET),
                      data={"grant_type": "refresh_token", "refresh_token": refresh_token})


async def test_expired_token_is_refreshed_once_with_rotation(settings: Settings, store: Store,
                                                             sandbox: RunningSandbox) -> None:
    set_limits(sandbox, token_ttl_s=100)
    access, refresh = _connect_new_account(sandbox)
    mine = settings.model_copy(update={"x_access_token": SecretStr(access),
                                       "x_refresh_token": SecretStr(refresh)})
    # Real time as the client's clock, so only the sandbox knows the token has expired.
    client = make_client(mine, store, sandbox, clock=time.time)
    try:
        sandbox.state.clock.advance(101)
        assert len(await client.fetch_metrics("c1", ["1"], date.today())) == 1
        assert client.tokens.refreshes == 1
        stored, _ = store.token("x", "default")
        assert stored["refresh_token"] != refresh and stored["access_token"] != access
        assert _refresh_raw(sandbox, refresh).json()["error"] == "invalid_request"  # rotated away
        fault(sandbox, "tweets.lookup", "token_expired")
        await client.fetch_metrics("c1", ["1"], date.today())
        assert client.tokens.refreshes == 2
        assert _refresh_raw(sandbox, stored["refresh_token"]).status_code == 400
        fault(sandbox, "tweets.lookup", "token_expired", count=2)
        with pytest.raises(AuthExpiredError):  # refreshed once, still refused: a person must reconnect
            await client.fetch_metrics("c1", ["1"], date.today())
        assert client.tokens.refreshes == 3
    finally:
        await client.aclose()
    dead = settings.model_copy(update={"x_access_token": SecretStr("expired-access"),
                                       "x_refresh_token": SecretStr(refresh)})
    other = make_client(dead, Store(store.url.replace("store.db", "other.db")), sandbox)
    try:
        with pytest.raises(AuthExpiredError) as err:
            await other.fetch_metrics("c1", ["1"], date.today())
    finally:
        await other.aclose()
    assert refresh not in str(err.value) and "expired-access" not in str(err.value)


async def test_refused_stored_token_falls_back_to_the_configured_one(
        settings: Settings, store: Store, sandbox: RunningSandbox) -> None:
    """The store holds a rotated pair the server no longer knows (say the sandbox restarted without its state
    file); the refresh token in the settings still works, so the client recovers without a person."""
    client = make_client(settings, store, sandbox)  # the sandbox's bootstrap credentials
    try:
        fault(sandbox, "tweets.lookup", "token_expired")
        await client.fetch_metrics("c1", ["1"], date.today())
        rotated, _ = store.token("x", "default")
        assert rotated["refresh_token"] != "sandbox-refresh" and client.tokens.refreshes == 1
        ns = sandbox.state.ns("x")
        ns["refresh_tokens"].pop(rotated["refresh_token"])
        ns["access_tokens"].pop(rotated["access_token"])
        assert len(await client.fetch_metrics("c1", ["1"], date.today())) == 1
        assert client.tokens.refreshes == 2
        assert store.token("x", "default")[0]["refresh_token"] not in (rotated["refresh_token"], "sandbox-refresh")
    finally:
        await client.aclose()
