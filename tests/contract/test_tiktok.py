"""TikTok client against the TikTok fake, over real loopback HTTP, with injected faults."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from metacentric.settings import SANDBOX_APP_SECRET, Settings
from metacentric.store import Store
from models import PlatformCopy, PlatformPlan
from models.platform import Platform
from platforms.errors import (
    AmbiguousWriteError,
    AuthExpiredError,
    PermanentError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
    is_retriable,
)
from platforms.files import sha256_file
from platforms.tiktok import TikTokClient
from platforms.tiktok_wire import ChunkPlan
from sandbox import tiktok as tiktok_fake
from sandbox.app import SandboxConfig
from sandbox.faults import FaultRule
from sandbox.server import RunningSandbox, start_in_thread
from sandbox.state import SandboxState
from sandbox.tiktok_rules import MB, chunk_rule_violation

INIT = "/v2/post/publish/video/init/"
STATUS = "/v2/post/publish/status/fetch/"
CREATOR = "/v2/post/publish/creator_info/query/"
TOKEN = "/v2/oauth/token/"


# fixtures and helpers -----------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def fresh_sim_day(sandbox_server: RunningSandbox) -> None:
    """Start on a new sim day, so the creator's daily post cap is not shared with earlier test modules."""
    sandbox_server.state.clock.advance(86400)


def new_tokens(url: str, refresh_token: str = "sandbox-refresh") -> dict[str, Any]:
    resp = httpx.post(url + TOKEN, data={"client_key": "sandbox-client", "client_secret": SANDBOX_APP_SECRET,
                                         "grant_type": "refresh_token", "refresh_token": refresh_token})
    return resp.json()  # type: ignore[no-any-return]


@pytest.fixture
def tt_settings(settings: Settings) -> Settings:
    """Its own token family per test: the per-token rate windows never mix between tests."""
    tokens = new_tokens(settings.tiktok_base_url)
    return settings.model_copy(update={"tiktok_access_token": SecretStr(tokens["access_token"]),
                                       "tiktok_refresh_token": SecretStr(tokens["refresh_token"])})


@pytest.fixture
async def client(tt_settings: Settings, store: Store) -> AsyncIterator[TikTokClient]:
    c = TikTokClient.from_settings(tt_settings, store)
    yield c
    await c.aclose()


def api(settings: Settings) -> httpx.Client:
    token = settings.tiktok_access_token.get_secret_value()
    return httpx.Client(base_url=settings.tiktok_base_url, headers={"Authorization": f"Bearer {token}"})


def video(tmp_path: Path, size: int, *, sparse: bool = False) -> str:
    path = tmp_path / f"clip-{uuid.uuid4().hex[:6]}.mp4"
    with open(path, "wb") as f:
        if sparse:
            f.truncate(size)  # a hole: no disk, reads as zeros
        else:
            f.write(os.urandom(size))
    return str(path)


def plan(store: Store, caption: str | None = None) -> PlatformPlan:
    campaign_id = "1202" + str(uuid.uuid4().int)[:14]
    store.claim_post(campaign_id, "tiktok")
    text = caption or f"Midnight Drive out now {uuid.uuid4().hex[:8]}"
    return PlatformPlan(campaign_id=campaign_id, platform=Platform.TIKTOK, daily_budget=10.0,
                        copy=PlatformCopy(platform=Platform.TIKTOK, text=text, hashtags=["newmusic"]))


def fault(sandbox: Any, endpoint: str, kind: str, count: int | None = 1) -> FaultRule:
    rule = FaultRule(platform="tiktok", endpoint=endpoint, kind=kind, count=count)  # type: ignore[arg-type]
    sandbox.state.faults.add(rule)
    return rule


def fired(sandbox: Any, endpoint: str, kind: str) -> int:
    return sum(r.fired for r in sandbox.state.faults.rules() if r.endpoint == endpoint and r.kind == kind)


def posts_with(sandbox: Any, caption_start: str) -> list[dict[str, Any]]:
    return [p for p in tiktok_fake.published(sandbox.state) if p["text"].startswith(caption_start)]


def publishes_with(sandbox: Any, caption_start: str) -> list[dict[str, Any]]:
    recs = sandbox.state.ns("tiktok").get("publishes", {}).values()
    return [r for r in recs if r["title"].startswith(caption_start)]


@contextmanager
def private_sandbox(**tiktok_limits: Any) -> Iterator[RunningSandbox]:
    """A sandbox of our own, for knobs the shared one must not change (daily cap, scopes, timings)."""
    limits = {"processing_s": 0.05, "moderation_s": 0.05, **tiktok_limits}
    with start_in_thread(SandboxState(seed=3), config=SandboxConfig(limits={"tiktok": limits})) as running:
        yield running


# chunk rules ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "chunk", "count", "valid"), [
    (1_000, 1_000, 1, True),                     # under 5 MB: one chunk equal to the file
    (4 * MB, 2 * MB, 2, False),                  # under 5 MB may not be split
    (50_000_123, 10_000_000, 5, True),           # the media transfer guide's own example
    (50_000_123, 10_000_000, 6, False),          # count must be floor(size / chunk)
    (50_000_123, 4 * MB, 11, False),             # chunks under 5 MB
    (200 * MB, 65 * MB, 3, False),               # chunks over 64 MB
    (70 * MB, 70 * MB, 1, False),                # over 64 MB must be multi-chunk
    (300 * MB, 60 * MB, 5, True),                # final chunk 60 MB
    (250 * MB, 60 * MB, 4, True),                # final chunk 70 MB: over chunk_size, under 128 MB
    (250 * MB, 60 * MB, 5, False),               # rounded up instead of down
])
def test_chunk_rules(size: int, chunk: int, count: int, valid: bool) -> None:
    assert (chunk_rule_violation(size, chunk, count) is None) is valid


def test_final_chunk_over_128_mb_is_refused() -> None:
    assert chunk_rule_violation(64 * MB + 129 * MB, 64 * MB, 2) is not None  # final chunk 129 MB
    assert chunk_rule_violation(64 * MB + 100 * MB, 64 * MB, 2) is None


@pytest.mark.parametrize("size", [1, 5 * MB - 1, 5 * MB, 10 * MB, 10 * MB + 1, 64_000_000, 70_000_000,
                                  64 * MB + 1, 999 * MB, 4 * 1024 * MB])
@pytest.mark.parametrize("preferred", [5 * MB, 10 * MB, 64_000_000])
def test_client_chunk_plan_obeys_the_fake(size: int, preferred: int) -> None:
    p = ChunkPlan.for_file(size, preferred)
    assert chunk_rule_violation(size, p.chunk, p.count) is None
    assert p.bounds(p.count - 1)[1] == size - 1


def test_init_refuses_bad_chunks_over_the_wire(tt_settings: Settings) -> None:
    body = {"post_info": {"title": "chunk rules", "privacy_level": "SELF_ONLY"},
            "source_info": {"source": "FILE_UPLOAD", "video_size": 50_000_123, "chunk_size": 10_000_000,
                            "total_chunk_count": 6}}
    with api(tt_settings) as http:
        resp = http.post(INIT, json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_params"
    assert resp.json()["data"] == {}


# the upload protocol on the wire --------------------------------------------------------------------
def test_upload_is_sequential_repeatable_and_hashed(tt_settings: Settings, sandbox: RunningSandbox) -> None:
    data = os.urandom(11 * MB)  # two chunks: 5 MB and a final 6 MB
    body = {"post_info": {"title": f"wire {uuid.uuid4().hex}", "privacy_level": "SELF_ONLY"},
            "source_info": {"source": "FILE_UPLOAD", "video_size": len(data), "chunk_size": 5 * MB,
                            "total_chunk_count": 2}}
    with api(tt_settings) as http:
        init = http.post(INIT, json=body).json()["data"]
        url, pid = init["upload_url"], init["publish_id"]

        def put(first: int, last: int) -> httpx.Response:
            return httpx.put(url, content=data[first:last + 1], headers={
                "Content-Type": "video/mp4", "Content-Range": f"bytes {first}-{last}/{len(data)}"})

        assert put(5 * MB, len(data) - 1).status_code == 416  # out of order
        assert put(0, 4 * MB).status_code == 400  # not a chunk boundary
        assert put(0, 5 * MB - 1).status_code == 206
        assert put(0, 5 * MB - 1).status_code == 206  # repeating a chunk is harmless
        status = http.post(STATUS, json={"publish_id": pid}).json()["data"]
        assert status == {"status": "PROCESSING_UPLOAD", "uploaded_bytes": 5 * MB}
        assert put(5 * MB, len(data) - 1).status_code == 201
    rec = sandbox.state.ns("tiktok")["publishes"][pid]
    assert rec["sha256"] == hashlib.sha256(data).hexdigest()


def test_status_machine_follows_the_sim_clock(tmp_path: Path) -> None:
    with private_sandbox(processing_s=100, moderation_s=100) as box, httpx.Client(
            base_url=box.url + "/tiktok", headers={"Authorization": "Bearer sandbox-token"}) as http:
        body = {"post_info": {"title": "clock", "privacy_level": "SELF_ONLY"},
                "source_info": {"source": "FILE_UPLOAD", "video_size": 10, "chunk_size": 10,
                                "total_chunk_count": 1}}
        init = http.post(INIT, json=body).json()["data"]
        pid = init["publish_id"]

        def status() -> dict[str, Any]:
            return http.post(STATUS, json={"publish_id": pid}).json()["data"]  # type: ignore[no-any-return]

        assert status() == {"status": "PROCESSING_UPLOAD", "uploaded_bytes": 0}
        httpx.put(init["upload_url"], content=b"0123456789",
                  headers={"Content-Type": "video/mp4", "Content-Range": "bytes 0-9/10"}).raise_for_status()
        assert status()["status"] == "PROCESSING_UPLOAD"
        box.state.clock.advance(150)
        assert status() == {"status": "PUBLISH_COMPLETE", "uploaded_bytes": 10,
                            "publicaly_available_post_id": []}
        assert len(tiktok_fake.published(box.state)) == 1  # the post exists before moderation lets it out
        box.state.clock.advance(101)
        (post_id,) = status()["publicaly_available_post_id"]
        assert isinstance(post_id, int) and str(post_id) == tiktok_fake.published(box.state)[0]["post_id"]


def test_inbox_upload_ends_in_the_inbox_and_pull_needs_a_verified_domain() -> None:
    with private_sandbox() as box, httpx.Client(
            base_url=box.url + "/tiktok", headers={"Authorization": "Bearer sandbox-token"}) as http:
        source = {"source": "FILE_UPLOAD", "video_size": 10, "chunk_size": 10, "total_chunk_count": 1}
        inbox = http.post("/v2/post/publish/inbox/video/init/", json={"source_info": source}).json()["data"]
        httpx.put(inbox["upload_url"], content=b"0123456789",
                  headers={"Content-Type": "video/mp4", "Content-Range": "bytes 0-9/10"}).raise_for_status()
        unverified = http.post(INIT, json={"post_info": {"title": "pull", "privacy_level": "SELF_ONLY"},
                                           "source_info": {"source": "PULL_FROM_URL",
                                                           "video_url": "https://elsewhere.example/v.mp4"}})
        assert unverified.status_code == 403
        assert unverified.json()["error"]["code"] == "url_ownership_unverified"
        pull = http.post(INIT, json={"post_info": {"title": "pull", "privacy_level": "SELF_ONLY"},
                                     "source_info": {"source": "PULL_FROM_URL",
                                                     "video_url": "https://verified.example.com/v.mp4"}})
        assert "upload_url" not in pull.json()["data"]
        box.state.clock.advance(5)
        inbox_status = http.post(STATUS, json={"publish_id": inbox["publish_id"]}).json()["data"]
        pull_status = http.post(STATUS, json={"publish_id": pull.json()["data"]["publish_id"]}).json()["data"]
        assert inbox_status["status"] == "SEND_TO_USER_INBOX"
        assert pull_status["status"] == "PUBLISH_COMPLETE"
        assert len(pull_status["publicaly_available_post_id"]) == 1
        assert [p["text"] for p in tiktok_fake.published(box.state)] == ["pull"]  # a draft is not a post


# publishing ---------------------------------------------------------------------------------------------
async def test_publish_creates_one_post_with_the_right_bytes(client: TikTokClient, store: Store,
                                                             sandbox: RunningSandbox, tmp_path: Path) -> None:
    path = video(tmp_path, 12 * MB)
    p = plan(store)
    client.chunk_size = 5 * MB  # two chunks
    post = await client.publish(p, path, store)
    found = posts_with(sandbox, p.copy_.text)
    assert [x["post_id"] for x in found] == [post.post_id]
    assert found[0]["sha256"] == sha256_file(path) and found[0]["size"] == 12 * MB
    assert found[0]["text"] == p.copy_.text + " #newmusic"
    assert post.url == f"https://www.tiktok.com/@metacentric.sandbox/video/{post.post_id}"
    (rec,) = publishes_with(sandbox, p.copy_.text)
    assert rec["privacy_level"] == "PUBLIC_TO_EVERYONE" and rec["total_chunk_count"] == 2
    # The intent log says it is done: publishing again is a no-op that returns the same post.
    assert store.load(p.campaign_id, "tiktok")["post_id"] == post.post_id
    assert await client.publish(p, path, store) == post
    assert len(publishes_with(sandbox, p.copy_.text)) == 1
    all_posts = httpx.get(sandbox.url + "/_admin/posts").json()
    ours = [x["post_id"] for x in all_posts if x["platform"] == "tiktok" and x["text"] == found[0]["text"]]
    assert ours == [post.post_id]


async def test_private_only_creator_gets_a_self_only_post(tmp_path: Path, store: Store) -> None:
    with private_sandbox(privacy_level_options=["FOLLOWER_OF_CREATOR", "SELF_ONLY"]) as box:
        s = Settings(var_dir=tmp_path).for_sandbox(box.url)
        c = TikTokClient.from_settings(s, store)
        try:
            await c.publish(plan(store), video(tmp_path, 1000), store)
        finally:
            await c.aclose()
        (rec,) = box.state.ns("tiktok")["publishes"].values()
        assert rec["privacy_level"] == "SELF_ONLY"


async def test_big_upload_resumes_after_a_dropped_chunk(client: TikTokClient, store: Store,
                                                        sandbox: RunningSandbox, tmp_path: Path) -> None:
    size = 70_000_000  # > 64 MB: must be chunked (10 MiB chunks: 6 of them, the last one 17.6 MB)
    path = video(tmp_path, size, sparse=True)
    p = plan(store)
    fault(sandbox, "upload.chunk.2", "drop_connection")  # the connection breaks halfway through chunk 2
    with pytest.raises(TransientError):
        await client.publish(p, path, store)
    intent = store.load(p.campaign_id, "tiktok")
    assert intent["publish_id"] and intent["uploaded"] == 2 * 10 * MB
    (rec,) = publishes_with(sandbox, p.copy_.text)
    assert rec["received"] == 2 * 10 * MB  # nothing of the broken chunk was kept

    post = await client.publish(p, path, store)  # the same intents: resume, never init again
    (found,) = posts_with(sandbox, p.copy_.text)
    assert found["post_id"] == post.post_id
    assert found["sha256"] == sha256_file(path) and found["size"] == size
    assert len(publishes_with(sandbox, p.copy_.text)) == 1


async def test_lost_init_answer_does_not_double_post(client: TikTokClient, store: Store,
                                                     sandbox: RunningSandbox, tmp_path: Path) -> None:
    path = video(tmp_path, 2000)
    p = plan(store)
    fault(sandbox, "video.init", "ambiguous")  # TikTok creates the publish, the answer is lost
    with pytest.raises(AmbiguousWriteError) as caught:
        await client.publish(p, path, store)
    assert is_retriable(caught.value)
    assert "ambiguous_init_at" in store.load(p.campaign_id, "tiktok")
    assert len(publishes_with(sandbox, p.copy_.text)) == 1  # the orphan, which never gets a byte

    post = await client.publish(p, path, store)
    assert [x["post_id"] for x in posts_with(sandbox, p.copy_.text)] == [post.post_id]
    orphan = [r for r in publishes_with(sandbox, p.copy_.text) if r.get("post_id") != post.post_id]
    assert len(orphan) == 1 and orphan[0]["received"] == 0 and orphan[0]["status"] == "PROCESSING_UPLOAD"


async def test_lost_init_answer_adopts_the_post_if_it_went_out(
        client: TikTokClient, store: Store, sandbox: RunningSandbox, tmp_path: Path) -> None:
    path = video(tmp_path, 3000)
    p = plan(store)
    fault(sandbox, "video.init", "ambiguous")
    with pytest.raises(AmbiguousWriteError):
        await client.publish(p, path, store)
    # Someone (say, an earlier run's upload) completed that very publish: it is public now.
    (rec,) = publishes_with(sandbox, p.copy_.text)
    url = f"{sandbox.url}/tiktok/upload/?upload_id={rec['upload_id']}&upload_token={rec['upload_token']}"
    httpx.put(url, content=Path(path).read_bytes(),
              headers={"Content-Type": "video/mp4", "Content-Range": "bytes 0-2999/3000"}).raise_for_status()
    sandbox.state.clock.advance(5)
    post = await client.publish(p, path, store)
    assert [x["post_id"] for x in posts_with(sandbox, p.copy_.text)] == [post.post_id]
    assert len(publishes_with(sandbox, p.copy_.text)) == 1  # found by /v2/video/list/, not initialised again


async def test_stuck_publish_times_out_then_completes(tt_settings: Settings, store: Store,
                                                      sandbox: RunningSandbox, tmp_path: Path) -> None:
    c = TikTokClient.from_settings(tt_settings.model_copy(update={"poll_timeout_s": 1.0}), store)
    path, p = video(tmp_path, 1000), plan(store)
    fault(sandbox, "status.fetch", "stuck", count=None)
    try:
        with pytest.raises(TransientError) as caught:
            await c.publish(p, path, store)
        pid = store.load(p.campaign_id, "tiktok")["publish_id"]
        assert pid in caught.value.message and "still" in caught.value.message
        sandbox.state.faults.clear()
        post = await c.publish(p, path, store)
    finally:
        await c.aclose()
    assert [x["post_id"] for x in posts_with(sandbox, p.copy_.text)] == [post.post_id]
    assert len(publishes_with(sandbox, p.copy_.text)) == 1


async def test_failed_internal_is_transient_and_a_retry_publishes_once(client: TikTokClient, store: Store,
                                                                      sandbox: RunningSandbox,
                                                                      tmp_path: Path) -> None:
    path, p = video(tmp_path, 1000), plan(store)
    fault(sandbox, "status.fetch", "failed")
    with pytest.raises(TransientError) as caught:
        await client.publish(p, path, store)
    assert caught.value.code == "internal"
    intent = store.load(p.campaign_id, "tiktok")
    assert "publish_id" not in intent and len(intent["failed_publish_ids"]) == 1
    post = await client.publish(p, path, store)  # the old publish FAILED for good: a new init is safe
    assert [x["post_id"] for x in posts_with(sandbox, p.copy_.text)] == [post.post_id]
    statuses = sorted(r["status"] for r in publishes_with(sandbox, p.copy_.text))
    assert statuses == ["FAILED", "PUBLISH_COMPLETE"]


async def test_missing_scope_is_permanent_not_a_refresh(tmp_path: Path, store: Store) -> None:
    with private_sandbox(scopes="user.info.basic,video.list") as box:
        c = TikTokClient.from_settings(Settings(var_dir=tmp_path).for_sandbox(box.url), store)
        try:
            with pytest.raises(PermanentError) as caught:
                await c.publish(plan(store), video(tmp_path, 1000), store)
        finally:
            await c.aclose()
    assert caught.value.code == "scope_not_authorized" and c.tokens.refreshes == 0


# limits --------------------------------------------------------------------------------------------------
async def test_rate_limit_defers_and_the_client_then_refuses_early(
        client: TikTokClient, tt_settings: Settings, store: Store, sandbox: RunningSandbox,
        tmp_path: Path) -> None:
    with api(tt_settings) as http:  # someone else used this token's 20 creator_info calls this minute
        for _ in range(20):
            assert http.post(CREATOR).status_code == 200
        assert http.post(CREATOR).json()["error"]["code"] == "rate_limit_exceeded"
    path, p = video(tmp_path, 1000), plan(store)
    before = datetime.now(UTC)
    with pytest.raises(RateLimitedError) as caught:
        await client.publish(p, path, store)
    assert before + timedelta(seconds=55) <= caught.value.until <= datetime.now(UTC) + timedelta(seconds=61)
    assert is_retriable(caught.value)
    assert store.load(p.campaign_id, "tiktok") == {}  # deferred: nothing started, nothing marked failed
    probe = fault(sandbox, "creator_info", "transient")  # would fire if the client called again
    with pytest.raises(RateLimitedError):
        await client.publish(p, path, store)
    assert fired(sandbox, probe.endpoint, probe.kind) == 0


async def test_init_rate_limit_is_rate_limited_error(client: TikTokClient, store: Store,
                                                     sandbox: RunningSandbox, tmp_path: Path) -> None:
    fault(sandbox, "video.init", "rate_limit")
    p = plan(store)
    with pytest.raises(RateLimitedError):
        await client.publish(p, video(tmp_path, 1000), store)
    assert store.load(p.campaign_id, "tiktok") == {}


async def test_daily_cap_defers_until_tomorrow(client: TikTokClient, tt_settings: Settings, store: Store,
                                               sandbox: RunningSandbox, tmp_path: Path) -> None:
    fault(sandbox, "video.init", "quota")  # spam_risk_too_many_posts
    p = plan(store)
    with pytest.raises(QuotaExhaustedError) as caught:
        await client.publish(p, video(tmp_path, 1000), store)
    tomorrow = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
    assert caught.value.until == tomorrow
    assert store.load(p.campaign_id, "tiktok") == {}
    # Another client (another process) sharing the store knows without asking TikTok.
    other = TikTokClient.from_settings(tt_settings, store)
    probe = fault(sandbox, "creator_info", "transient")
    try:
        with pytest.raises(QuotaExhaustedError):
            await other.publish(plan(store), video(tmp_path, 1000), store)
    finally:
        await other.aclose()
    assert fired(sandbox, probe.endpoint, probe.kind) == 0


async def test_the_fake_enforces_its_daily_cap(tmp_path: Path, store: Store) -> None:
    with private_sandbox(daily_post_cap=1) as box:
        c = TikTokClient.from_settings(Settings(var_dir=tmp_path).for_sandbox(box.url), store)
        store.put_limit("tiktok", "daily_posts:default", {"day": "2000-01-01", "count": 0})  # client unaware
        try:
            await c.publish(plan(store), video(tmp_path, 1000), store)
            second = plan(store)
            with pytest.raises(QuotaExhaustedError):
                await c.publish(second, video(tmp_path, 1000), store)
        finally:
            await c.aclose()
        assert store.load(second.campaign_id, "tiktok") == {}
        assert len(tiktok_fake.published(box.state)) == 1


# tokens and metrics ----------------------------------------------------------------------------------
async def test_expired_token_is_refreshed_once_and_rotation_persisted(
        tt_settings: Settings, store: Store, sandbox: RunningSandbox, tmp_path: Path) -> None:
    first_refresh = tt_settings.tiktok_refresh_token.get_secret_value()
    c = TikTokClient.from_settings(tt_settings, store)
    fault(sandbox, "creator_info", "token_expired")
    try:
        post = await c.publish(plan(store), video(tmp_path, 1000), store)
        assert c.tokens.refreshes == 1
        rotated = store.token("tiktok", "default")[0]["refresh_token"]  # type: ignore[index]
        assert rotated != first_refresh
        assert new_tokens(tt_settings.tiktok_base_url, first_refresh)["error"] == "invalid_grant"

        sandbox.state.clock.advance(3 * 3600)  # the 2-hour access token is dead on TikTok's clock
        metrics = await c.fetch_metrics("c1", [post.post_id, "7999999999999999999"], date.today())
        assert c.tokens.refreshes == 2
        assert metrics[0].post_id == post.post_id and metrics[0].views is not None and metrics[0].views > 0
        assert metrics[1].views is None and metrics[1].likes is None  # not ours / not there: unknown, not 0
        newest = store.token("tiktok", "default")[0]["refresh_token"]  # type: ignore[index]
        assert newest != rotated
        assert new_tokens(tt_settings.tiktok_base_url, rotated)["error"] == "invalid_grant"
    finally:
        await c.aclose()
    # A new process reads the persisted tokens: no refresh needed, and the metrics keep growing.
    again = TikTokClient.from_settings(tt_settings, store)
    sandbox.state.clock.advance(1800)
    try:
        later = await again.fetch_metrics("c1", [post.post_id], date.today())
    finally:
        await again.aclose()
    assert again.tokens.refreshes == 0 and later[0].views >= metrics[0].views  # type: ignore[operator]


async def test_dead_refresh_token_needs_reauth(tt_settings: Settings, store: Store,
                                               sandbox: RunningSandbox) -> None:
    spent = tt_settings.tiktok_refresh_token.get_secret_value()
    new_tokens(tt_settings.tiktok_base_url, spent)  # someone else rotated it: ours is spent
    c = TikTokClient.from_settings(tt_settings, store)
    fault(sandbox, "video.query", "token_expired")
    try:
        with pytest.raises(AuthExpiredError) as caught:
            await c.fetch_metrics("c1", ["1"], date.today())
    finally:
        await c.aclose()
    assert caught.value.code == "invalid_grant" and spent not in str(caught.value)
