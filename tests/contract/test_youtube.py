"""YouTube: the client (google-api-python-client) against the sandbox's Data API, Analytics and OAuth fakes.

Everything goes over real loopback HTTP. The shared sandbox's sim clock may have been advanced by other
tests, so times here are read from it, never assumed.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from metacentric.settings import Settings
from metacentric.store import Store
from models import Platform, PlatformCopy, PlatformPlan
from platforms.errors import (
    AuthExpiredError,
    PermanentError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
)
from platforms.youtube import YouTubeClient
from platforms.youtube_errors import PACIFIC
from sandbox.server import RunningSandbox
from sandbox.youtube import published

QUANTUM = 256 * 1024
MiB = 1024 * 1024


# helpers ----------------------------------------------------------------------------------------------------
def write_video(path: Path, size: int) -> Path:
    """A sparse file with a marker every MiB, so a lost, repeated or reordered chunk changes the hash."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in range(0, size, MiB):
            f.seek(offset)
            f.write(f"<{offset}>".encode()[: max(0, size - offset)])
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MiB):
            h.update(block)
    return h.hexdigest()


def plan_for(campaign_id: str, title: str, scheduled_at: datetime | None = None) -> PlatformPlan:
    copy = PlatformCopy(platform=Platform.YOUTUBE, title=title, text="New single out now. Stream it <3",
                        hashtags=["#newmusic", "#indie rock"])
    return PlatformPlan(campaign_id=campaign_id, platform=Platform.YOUTUBE, copy=copy,
                        scheduled_at=scheduled_at, daily_budget=10.0)


def videos_titled(sandbox: RunningSandbox, title: str) -> list[dict[str, Any]]:
    return [v for v in published(sandbox.state) if v["title"] == title]


def fault(sandbox: RunningSandbox, **rule: Any) -> None:
    httpx.post(sandbox.url + "/_admin/faults", json={"platform": "youtube", **rule}).raise_for_status()


def fired(sandbox: RunningSandbox) -> list[int]:
    return [r["fired"] for r in httpx.get(sandbox.url + "/_admin/faults").json()]


def inserts_today(sandbox: RunningSandbox, project: str) -> int:
    usage = httpx.get(sandbox.url + "/_admin/youtube/limits").json()["quota"].get(project, {})
    return int(usage.get("inserts", 0))


@pytest.fixture
def now(sandbox: RunningSandbox) -> Any:
    return sandbox.state.clock.now


@pytest.fixture
async def client(settings: Settings, store: Store, now: Any) -> AsyncIterator[YouTubeClient]:
    c = YouTubeClient.from_settings(settings, store, chunksize=QUANTUM, clock=now)
    yield c
    await c.aclose()


@pytest.fixture
def campaign(store: Store) -> str:
    cid = "1202" + uuid.uuid4().hex[:12]
    store.claim_post(cid, "youtube")
    return cid


@pytest.fixture
def limits(sandbox: RunningSandbox) -> Iterator[Any]:
    """Change the sandbox's YouTube limits for one test; the previous ones come back afterwards."""
    before = httpx.get(sandbox.url + "/_admin/youtube/limits").json()["limits"]

    def put(**changes: Any) -> None:
        httpx.put(sandbox.url + "/_admin/youtube/limits", json=changes).raise_for_status()

    yield put
    put(**before)


def token(sandbox: RunningSandbox, refresh_token: str = "wire-test-refresh") -> str:
    r = httpx.post(sandbox.url + "/google/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "wire-test",
        "client_secret": "sandbox-app-secret"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    return str(body["access_token"])


# the wire ---------------------------------------------------------------------------------------------------
def test_resumable_upload_wire_sequence(sandbox: RunningSandbox) -> None:
    auth = {"Authorization": f"Bearer {token(sandbox)}"}
    total = 2 * QUANTUM + 1000
    data = os.urandom(total)
    meta = {"snippet": {"title": "wire " + uuid.uuid4().hex, "categoryId": "10"},
            "status": {"privacyStatus": "public"}}
    initiate = "/youtube/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status"
    with httpx.Client(base_url=sandbox.url) as http:
        start = http.post(initiate, json=meta, headers={
            **auth, "X-Upload-Content-Length": str(total), "X-Upload-Content-Type": "video/mp4"})
        assert start.status_code == 200 and start.content == b""
        session = start.headers["location"]
        assert "upload_id=" in session

        first = http.put(session, content=data[:QUANTUM],
                         headers={"Content-Range": f"bytes 0-{QUANTUM - 1}/{total}"})
        assert first.status_code == 308 and first.headers["range"] == f"bytes=0-{QUANTUM - 1}"

        # A non-final chunk that is not a multiple of 256 KiB is refused, and nothing of it is kept.
        odd = http.put(session, content=data[QUANTUM:QUANTUM + 1000],
                       headers={"Content-Range": f"bytes {QUANTUM}-{QUANTUM + 999}/{total}"})
        assert odd.status_code == 400
        assert odd.json()["error"]["errors"][0]["reason"] == "badRequest"

        status = http.put(session, headers={"Content-Range": f"bytes */{total}"})
        assert status.status_code == 308 and status.headers["range"] == f"bytes=0-{QUANTUM - 1}"

        last = http.put(session, content=data[QUANTUM:],
                        headers={"Content-Range": f"bytes {QUANTUM}-{total - 1}/{total}"})
        assert last.status_code == 200
        video = last.json()
        assert video["kind"] == "youtube#video" and video["status"]["uploadStatus"] == "uploaded"
        assert video["snippet"]["title"] == meta["snippet"]["title"]

        again = http.put(session, headers={"Content-Range": f"bytes */{total}"})
        assert again.status_code == 200 and again.json()["id"] == video["id"]

        unknown = http.put(session.replace("upload_id=", "upload_id=nope"),
                           headers={"Content-Range": f"bytes */{total}"})
        assert unknown.status_code == 404

        # The discovery document's resumable path is accepted too.
        other = http.post(initiate.replace("/youtube/upload/", "/youtube/resumable/upload/"), json=meta,
                          headers={**auth, "X-Upload-Content-Length": "10"})
        assert other.status_code == 200 and "upload_id=" in other.headers["location"]

    [made] = [v for v in published(sandbox.state) if v["post_id"] == video["id"]]
    assert made["size"] == total and made["sha256"] == hashlib.sha256(data).hexdigest()


def test_tokens_expire_in_sim_time_and_revoked_refresh_tokens_fail(sandbox: RunningSandbox) -> None:
    access = token(sandbox, "expiring-refresh")
    url = sandbox.url + "/youtube/youtube/v3/videos?part=status&id=none"
    assert httpx.get(url, headers={"Authorization": f"Bearer {access}"}).status_code == 200
    assert httpx.get(url).json()["error"]["errors"][0]["reason"] == "required"

    sandbox.state.clock.advance(3600)
    expired = httpx.get(url, headers={"Authorization": f"Bearer {access}"})
    assert expired.status_code == 401
    assert expired.json()["error"]["errors"][0]["reason"] == "authError"

    revoke = httpx.post(sandbox.url + "/_admin/youtube/revoke", json={"refresh_token": "expiring-refresh"})
    revoke.raise_for_status()
    refused = httpx.post(sandbox.url + "/google/token", data={
        "grant_type": "refresh_token", "refresh_token": "expiring-refresh", "client_id": "wire-test",
        "client_secret": "sandbox-app-secret"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


# publishing -------------------------------------------------------------------------------------------------
async def test_publish_uploads_once_and_returns_the_saved_video_after(
        sandbox: RunningSandbox, client: YouTubeClient, store: Store, campaign: str, tmp_path: Path,
        settings: Settings) -> None:
    video = write_video(tmp_path / "single.mp4", 3 * QUANTUM + 12345)
    title = "Once " + campaign
    post = await client.publish(plan_for(campaign, title), str(video), store)

    [made] = videos_titled(sandbox, title)
    assert made["post_id"] == post.post_id and post.url and post.post_id in post.url
    assert made["size"] == video.stat().st_size and made["sha256"] == sha256(video)
    assert store.load(campaign, "youtube") == {"video_id": post.post_id}
    stored = sandbox.state.ns("youtube")["videos"][post.post_id]
    assert stored["category_id"] == "10" and stored["privacy"] == "public"
    assert stored["tags"] == ["newmusic", "indie rock"] and "<" not in stored["description"]

    inserts = inserts_today(sandbox, settings.youtube_client_id)
    again = await client.publish(plan_for(campaign, title), str(video), store)
    assert again == post
    assert len(videos_titled(sandbox, title)) == 1
    assert inserts_today(sandbox, settings.youtube_client_id) == inserts


async def test_big_upload_survives_a_5xx_and_a_dropped_connection(
        sandbox: RunningSandbox, settings: Settings, store: Store, campaign: str, tmp_path: Path,
        now: Any) -> None:
    video = write_video(tmp_path / "big.mp4", 72 * MiB + 4321)
    client = YouTubeClient.from_settings(settings, store, chunksize=16 * MiB, clock=now)
    title = "Big " + campaign
    plan = plan_for(campaign, title)
    inserts = inserts_today(sandbox, settings.youtube_client_id)
    # The 2nd chunk request of the session answers 503; the 4th (the 2nd after resuming) loses its connection.
    fault(sandbox, endpoint="upload.chunk.2", kind="transient", count=1)
    fault(sandbox, endpoint="upload.chunk.4", kind="drop_connection", count=1)

    tracemalloc.start()
    try:
        with pytest.raises(TransientError) as e1:
            await client.publish(plan, str(video), store)
        assert e1.value.code == "backendError"
        saved = store.load(campaign, "youtube")
        assert saved["total_size"] == video.stat().st_size and "upload_id=" in saved["session_uri"]
        assert videos_titled(sandbox, title) == []

        with pytest.raises(TransientError) as e2:
            await client.publish(plan, str(video), store)
        assert e2.value.code == "connection"
        assert store.load(campaign, "youtube")["session_uri"] == saved["session_uri"]

        post = await client.publish(plan, str(video), store)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await client.aclose()

    assert fired(sandbox) == [1, 1]
    [made] = videos_titled(sandbox, title)
    assert made["post_id"] == post.post_id
    assert made["size"] == video.stat().st_size and made["sha256"] == sha256(video)
    assert inserts_today(sandbox, settings.youtube_client_id) == inserts + 1  # one session, resumed twice
    assert peak < 16 * MiB  # neither side ever held a whole chunk, let alone the file


async def test_lost_reply_to_the_last_chunk_is_resolved_by_asking_the_session(
        sandbox: RunningSandbox, client: YouTubeClient, store: Store, campaign: str, tmp_path: Path) -> None:
    video = write_video(tmp_path / "ambiguous.mp4", 2 * QUANTUM + 999)
    title = "Ambiguous " + campaign
    fault(sandbox, endpoint="upload.final", kind="ambiguous", count=1)

    with pytest.raises(TransientError):
        await client.publish(plan_for(campaign, title), str(video), store)
    [made] = videos_titled(sandbox, title)  # YouTube has the video; we only lost the reply
    assert "video_id" not in store.load(campaign, "youtube")

    post = await client.publish(plan_for(campaign, title), str(video), store)
    assert post.post_id == made["post_id"]
    assert len(videos_titled(sandbox, title)) == 1
    assert made["sha256"] == sha256(video)
    assert store.load(campaign, "youtube") == {"video_id": post.post_id}


async def test_an_expired_session_starts_a_new_upload(
        sandbox: RunningSandbox, client: YouTubeClient, store: Store, campaign: str, tmp_path: Path) -> None:
    video = write_video(tmp_path / "expired.mp4", 3 * QUANTUM)
    title = "Expired " + campaign
    fault(sandbox, endpoint="upload.chunk.2", kind="transient", count=1)
    with pytest.raises(TransientError):
        await client.publish(plan_for(campaign, title), str(video), store)
    old = store.load(campaign, "youtube")["session_uri"]
    sandbox.state.uploads.pop(old.split("upload_id=")[1])  # as a sandbox restart loses it

    post = await client.publish(plan_for(campaign, title), str(video), store)
    [made] = videos_titled(sandbox, title)
    assert made["post_id"] == post.post_id and made["sha256"] == sha256(video)


async def test_a_lost_reply_to_the_session_start_opens_a_second_session_but_makes_one_video(
        sandbox: RunningSandbox, client: YouTubeClient, store: Store, campaign: str, tmp_path: Path) -> None:
    video = write_video(tmp_path / "start.mp4", 2 * QUANTUM)
    title = "Start " + campaign
    fault(sandbox, endpoint="videos.insert", kind="ambiguous", count=1)
    with pytest.raises(TransientError):
        await client.publish(plan_for(campaign, title), str(video), store)
    assert store.load(campaign, "youtube") == {}  # the session URI never reached us: nothing to resume

    post = await client.publish(plan_for(campaign, title), str(video), store)
    [made] = videos_titled(sandbox, title)  # the orphaned session holds no bytes and never becomes a video
    assert made["post_id"] == post.post_id


async def test_scheduled_release_is_private_until_publish_at(
        sandbox: RunningSandbox, client: YouTubeClient, store: Store, campaign: str, tmp_path: Path,
        now: Any) -> None:
    video = write_video(tmp_path / "scheduled.mp4", QUANTUM)
    at = (now() + timedelta(hours=6)).replace(microsecond=0)
    post = await client.publish(plan_for(campaign, "Scheduled " + campaign, at), str(video), store)

    status = await client.video_status(post.post_id)
    assert status["privacy_status"] == "private"
    assert datetime.fromisoformat(status["publish_at"]) == at
    [metrics] = await client.fetch_metrics(campaign, [post.post_id], now().astimezone(PACIFIC).date())
    assert metrics.views is None and metrics.likes is None and not metrics.available

    sandbox.state.clock.advance(7 * 3600)
    status = await client.video_status(post.post_id)
    assert status["privacy_status"] == "public" and status["upload_status"] == "processed"


async def test_processing_finishes_or_fails(
        sandbox: RunningSandbox, client: YouTubeClient, store: Store, tmp_path: Path, limits: Any) -> None:
    limits(processing_s=60)
    video = write_video(tmp_path / "processing.mp4", QUANTUM)
    ok = "ok-" + uuid.uuid4().hex
    store.claim_post(ok, "youtube")
    post = await client.publish(plan_for(ok, "Processing " + ok), str(video), store)
    assert (await client.video_status(post.post_id))["processing_status"] == "processing"
    sandbox.state.clock.advance(61)
    assert (await client.wait_until_processed(post.post_id))["upload_status"] == "processed"

    bad = "bad-" + uuid.uuid4().hex
    store.claim_post(bad, "youtube")
    fault(sandbox, endpoint="videos.processing", kind="failed", count=1)
    broken = await client.publish(plan_for(bad, "Broken " + bad), str(video), store)
    with pytest.raises(PermanentError) as failed:
        await client.wait_until_processed(broken.post_id)
    assert failed.value.code == "conversion"


# quota, rate limits and auth --------------------------------------------------------------------------------
async def test_quota_exceeded_is_remembered_and_refused_before_any_http(
        sandbox: RunningSandbox, client: YouTubeClient, store: Store, now: Any) -> None:
    fault(sandbox, endpoint="videos.list", kind="quota", count=2)
    with pytest.raises(QuotaExhaustedError) as first:
        await client.video_status("anything")
    tomorrow = now().astimezone(PACIFIC) + timedelta(days=1)
    midnight = tomorrow.replace(hour=0, minute=0, second=0, microsecond=0)
    assert first.value.until == midnight and first.value.code == "quotaExceeded"
    assert store.limit("youtube", "quota")["default"]["reason"] == "quotaExceeded"

    with pytest.raises(QuotaExhaustedError):
        await client.fetch_metrics("c", ["anything"], now().date())
    assert fired(sandbox) == [1]  # the second call never reached YouTube


async def test_spent_quota_comes_back_at_pacific_midnight(
        sandbox: RunningSandbox, settings: Settings, client: YouTubeClient, limits: Any) -> None:
    with pytest.raises(PermanentError):  # videoNotFound: the call went out and cost a unit
        await client.video_status("reset-1")
    used = httpx.get(sandbox.url + "/_admin/youtube/limits").json()["quota"][settings.youtube_client_id]["units"]
    limits(units_per_day=used)
    with pytest.raises(QuotaExhaustedError) as spent:
        await client.video_status("reset-2")

    sandbox.state.clock.advance((spent.value.until - sandbox.state.clock.now()).total_seconds() + 1)
    with pytest.raises(PermanentError):  # a new Pacific day: both sides count from zero again
        await client.video_status("reset-3")


async def test_spent_insert_quota_and_channel_cap(
        sandbox: RunningSandbox, settings: Settings, client: YouTubeClient, store: Store, campaign: str,
        tmp_path: Path, limits: Any, now: Any) -> None:
    video = write_video(tmp_path / "quota.mp4", QUANTUM)
    limits(insert_calls_per_day=0)
    with pytest.raises(QuotaExhaustedError) as spent:
        await client.publish(plan_for(campaign, "Quota " + campaign), str(video), store)
    assert spent.value.code == "quotaExceeded"
    # Known spent: the next upload is refused here, yet reads (another bucket) still go out.
    limits(insert_calls_per_day=100)
    with pytest.raises(QuotaExhaustedError):
        await client.publish(plan_for(campaign, "Quota " + campaign), str(video), store)
    assert store.load(campaign, "youtube") == {}
    with pytest.raises(PermanentError):  # videoNotFound: the read went out
        await client.video_status("missing-but-asked")

    capped_store = Store(f"sqlite:///{tmp_path / 'capped.db'}")
    capped_store.claim_post(campaign, "youtube")
    capped = YouTubeClient.from_settings(settings, capped_store, chunksize=QUANTUM, clock=now)
    limits(channel_uploads_per_day=0)
    with pytest.raises(QuotaExhaustedError) as cap:
        await capped.publish(plan_for(campaign, "Cap " + campaign), str(video), capped_store)
    assert cap.value.code == "uploadLimitExceeded"
    assert timedelta(hours=23) < cap.value.until - now() <= timedelta(hours=24)
    await capped.aclose()


async def test_rate_limit_and_backend_errors(
        sandbox: RunningSandbox, client: YouTubeClient, now: Any) -> None:
    fault(sandbox, endpoint="videos.list", kind="rate_limit", count=1)
    with pytest.raises(RateLimitedError) as limited:
        await client.video_status("x")
    assert limited.value.code == "rateLimitExceeded" and limited.value.until > now()

    fault(sandbox, endpoint="videos.list", kind="transient", count=1)
    with pytest.raises(TransientError) as backend:
        await client.video_status("x")
    assert backend.value.code == "backendError"

    with pytest.raises(PermanentError) as missing:
        await client.video_status("does-not-exist")
    assert missing.value.code == "videoNotFound"


async def test_a_401_refreshes_once_and_the_call_succeeds(
        sandbox: RunningSandbox, client: YouTubeClient) -> None:
    with pytest.raises(PermanentError):
        await client.video_status("warm-up")  # the first call gets the first access token
    assert client.tokens.refreshes == 1

    fault(sandbox, endpoint="videos.list", kind="token_expired", count=1)
    with pytest.raises(PermanentError):  # got past the 401: the video just does not exist
        await client.video_status("after-401")
    assert client.tokens.refreshes == 2 and fired(sandbox) == [1]

    fault(sandbox, endpoint="videos.list", kind="token_expired", count=2)
    with pytest.raises(AuthExpiredError):
        await client.video_status("twice")
    assert client.tokens.refreshes == 3


async def test_tokens_refresh_before_they_expire_in_sim_time(
        sandbox: RunningSandbox, client: YouTubeClient) -> None:
    with pytest.raises(PermanentError):
        await client.video_status("first")
    sandbox.state.clock.advance(3300)  # inside the refresh margin of a 3599 s token
    with pytest.raises(PermanentError):
        await client.video_status("second")
    assert client.tokens.refreshes == 2 and fired(sandbox) == []


async def test_invalid_grant_needs_a_person(
        sandbox: RunningSandbox, settings: Settings, store: Store, now: Any) -> None:
    fault(sandbox, endpoint="token", kind="token_expired", count=1)
    client = YouTubeClient.from_settings(settings, store, clock=now)
    with pytest.raises(AuthExpiredError) as refused:
        await client.video_status("x")
    assert refused.value.code == "invalid_grant"
    assert settings.youtube_refresh_token.get_secret_value() not in str(refused.value)

    revoked = settings.model_copy(update={"youtube_refresh_token": SecretStr("revoked-" + uuid.uuid4().hex)})
    httpx.post(sandbox.url + "/_admin/youtube/revoke",
               json={"refresh_token": revoked.youtube_refresh_token.get_secret_value()}).raise_for_status()
    with pytest.raises(AuthExpiredError):
        await YouTubeClient.from_settings(revoked, store, clock=now).video_status("x")
    await client.aclose()


# metrics ----------------------------------------------------------------------------------------------------
async def test_metrics_come_from_analytics_rows_once_a_day_is_over(
        sandbox: RunningSandbox, client: YouTubeClient, store: Store, campaign: str, tmp_path: Path,
        now: Any, limits: Any) -> None:
    limits(processing_s=600)  # long enough that the first look surely sees it processing
    video = write_video(tmp_path / "metrics.mp4", QUANTUM)
    post = await client.publish(plan_for(campaign, "Metrics " + campaign), str(video), store)
    today = now().astimezone(PACIFIC).date()

    [fresh] = await client.fetch_metrics(campaign, [post.post_id], today)
    assert fresh.views is None and fresh.shares is None  # still processing: no data, not zero
    [before] = await client.fetch_metrics(campaign, [post.post_id], today - timedelta(days=1))
    assert before.views is None

    sandbox.state.clock.advance(2 * 86400)
    access = token(sandbox, settings_refresh(client))
    api = httpx.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {access}"})
    report = api.get("/youtubeanalytics/v2/reports", params={
        "ids": "channel==MINE", "startDate": (today - timedelta(days=3)).isoformat(),
        "endDate": (today + timedelta(days=5)).isoformat(), "metrics": "views,likes,shares",
        "dimensions": "day", "filters": f"video=={post.post_id}", "sort": "day"}).json()
    assert [h["name"] for h in report["columnHeaders"]] == ["day", "views", "likes", "shares"]
    days = [row[0] for row in report["rows"]]
    assert days == [today.isoformat(), (today + timedelta(days=1)).isoformat()]  # only days that are over
    assert report["rows"][0][1] > 0

    fault(sandbox, endpoint="reports.query", kind="transient", count=1)
    with pytest.raises(TransientError):
        await client.fetch_metrics(campaign, [post.post_id], today + timedelta(days=1))
    [day0, day1] = await client.fetch_metrics(campaign, [post.post_id] * 2, today + timedelta(days=1))
    assert day0.model_dump(exclude={"collected_at"}) == day1.model_dump(exclude={"collected_at"})
    assert day1.views == sum(row[1] for row in report["rows"])
    assert day1.likes == sum(row[2] for row in report["rows"])
    assert day1.shares == sum(row[3] for row in report["rows"])
    assert day1.watch_time_s is not None and day1.watch_time_s > 0 and day1.saves is None

    # The day still running: the video's lifetime counters so far (the Data API has no shares).
    [running] = await client.fetch_metrics(campaign, [post.post_id], today + timedelta(days=2))
    listed = api.get("/youtube/youtube/v3/videos", params={"part": "statistics", "id": post.post_id}).json()
    stats = listed["items"][0]["statistics"]
    assert running.views is not None and day1.views <= running.views <= int(stats["viewCount"])
    assert running.shares is None and running.watch_time_s is None
    [future] = await client.fetch_metrics(campaign, [post.post_id], today + timedelta(days=3))
    assert future.views is None

    empty = api.get("/youtubeanalytics/v2/reports", params={
        "ids": "channel==MINE", "startDate": "2020-01-01", "endDate": "2020-01-31", "metrics": "views",
        "dimensions": "day", "filters": f"video=={post.post_id}"}).json()
    assert "rows" not in empty and empty["kind"] == "youtubeAnalytics#resultTable"
    api.close()


def settings_refresh(client: YouTubeClient) -> str:
    """The refresh token the client's TokenManager holds (so a raw call acts as the same channel)."""
    found = client.tokens.store.token(client.tokens.platform, client.tokens.account)
    assert found is not None
    return str(found[0]["refresh_token"])
