"""Instagram client against the Instagram fake, over real loopback HTTP, with injected faults."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from metacentric.settings import Settings
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
)
from platforms.files import sha256_file
from platforms.instagram import InstagramClient
from sandbox.faults import FaultRule

RESUMABLE_REEL = {"media_type": "REELS", "upload_type": "resumable"}


@pytest.fixture
def ig_settings(settings: Settings) -> Settings:
    """A fresh IG account per test, so publishing quotas and media lists never mix between tests."""
    return settings.model_copy(update={"instagram_user_id": "1784" + str(uuid.uuid4().int)[:13]})


@pytest.fixture
async def client(ig_settings: Settings, store: Store) -> AsyncIterator[InstagramClient]:
    c = InstagramClient.from_settings(ig_settings, store)
    yield c
    await c.aclose()


@pytest.fixture
def video(tmp_path: Path) -> str:
    path = tmp_path / "clip.mp4"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return str(path)


def plan(store: Store, text: str = "Midnight Drive is out now") -> PlatformPlan:
    campaign_id = "1202" + str(uuid.uuid4().int)[:14]
    store.claim_post(campaign_id, "instagram")
    return PlatformPlan(campaign_id=campaign_id, platform=Platform.INSTAGRAM, daily_budget=10.0,
                        copy=PlatformCopy(platform=Platform.INSTAGRAM, text=text,
                                          hashtags=["newmusic", "#synthwave"]))


def fault(sandbox: Any, endpoint: str, kind: str, count: int | None = 1) -> FaultRule:
    rule = FaultRule(platform="instagram", endpoint=endpoint, kind=kind, count=count)  # type: ignore[arg-type]
    sandbox.state.faults.add(rule)
    return rule


def fired(sandbox: Any, endpoint: str, kind: str) -> int:
    return sum(r.fired for r in sandbox.state.faults.rules() if r.endpoint == endpoint and r.kind == kind)


def media_of(sandbox: Any, user_id: str) -> list[dict[str, Any]]:
    return [m for m in sandbox.state.ns("instagram").get("media", {}).values() if m["user_id"] == user_id]


def graph(ig_settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"{ig_settings.instagram_graph_url}/{ig_settings.meta_api_version}/",
                             headers={"Authorization": "Bearer " + ig_settings.instagram_access_token
                                      .get_secret_value()})


async def test_publish_makes_exactly_one_reel_with_the_file_bytes(sandbox, ig_settings, client, store, video):
    p = plan(store)
    post = await client.publish(p, video, store)

    mine = media_of(sandbox, ig_settings.instagram_user_id)
    assert [m["id"] for m in mine] == [post.post_id]
    listed = [x for x in httpx.get(sandbox.url + "/_admin/posts").json() if x["post_id"] == post.post_id]
    assert len(listed) == 1
    assert listed[0]["sha256"] == sha256_file(video) and listed[0]["size"] == os.path.getsize(video)
    assert listed[0]["text"] == "Midnight Drive is out now\n\n#newmusic #synthwave"
    assert post.url and post.url.startswith("https://www.instagram.com/reel/")
    intent = store.load(p.campaign_id, "instagram")
    assert intent["media_id"] == post.post_id and intent["container_id"]

    again = await client.publish(p, video, store)  # a re-run of a finished publish changes nothing
    assert again == post
    assert len(media_of(sandbox, ig_settings.instagram_user_id)) == 1


async def test_big_upload_dropped_midway_resumes_in_the_same_container(sandbox, ig_settings, client, store,
                                                                        tmp_path):
    path = tmp_path / "big.mp4"
    with open(path, "wb") as f:  # sparse 70 MB with real bytes at both ends and in the middle
        f.write(os.urandom(4096))
        f.seek(35 * 1024 * 1024)
        f.write(os.urandom(4096))
        f.truncate(70 * 1024 * 1024 + 5)
    p = plan(store)
    fault(sandbox, "rupload", "drop_connection")

    with pytest.raises(TransientError):
        await client.publish(p, str(path), store)
    cid = store.load(p.campaign_id, "instagram")["container_id"]
    container = sandbox.state.ns("instagram")["containers"][cid]
    assert 0 < container["received"] < path.stat().st_size

    post = await client.publish(p, str(path), store)
    container = sandbox.state.ns("instagram")["containers"][cid]
    assert container["media_id"] == post.post_id  # same container, not a new upload
    assert container["upload_offsets"][0] == 0 and container["upload_offsets"][-1] > 0  # second one resumed
    mine = media_of(sandbox, ig_settings.instagram_user_id)
    assert len(mine) == 1 and mine[0]["sha256"] == sha256_file(str(path))


async def test_lost_publish_response_is_resolved_by_looking_not_by_publishing_again(sandbox, ig_settings,
                                                                                    client, store, video):
    p = plan(store)
    fault(sandbox, "media_publish", "ambiguous")
    post = await client.publish(p, video, store)

    assert fired(sandbox, "media_publish", "ambiguous") == 1
    mine = media_of(sandbox, ig_settings.instagram_user_id)
    assert [m["id"] for m in mine] == [post.post_id]
    assert store.load(p.campaign_id, "instagram")["media_id"] == post.post_id
    assert (await client.publish(p, video, store)).post_id == post.post_id
    assert len(media_of(sandbox, ig_settings.instagram_user_id)) == 1


async def test_publish_dropped_before_it_reached_instagram_is_retried_once(sandbox, ig_settings, client,
                                                                          store, video):
    p = plan(store)
    fault(sandbox, "media_publish", "drop_connection")
    with pytest.raises(AmbiguousWriteError):
        await client.publish(p, video, store)
    assert media_of(sandbox, ig_settings.instagram_user_id) == []
    assert store.load(p.campaign_id, "instagram")["publish_attempted"] is True

    post = await client.publish(p, video, store)
    assert [m["id"] for m in media_of(sandbox, ig_settings.instagram_user_id)] == [post.post_id]


async def test_same_caption_published_earlier_is_not_mistaken_for_ours(sandbox, ig_settings, client, store,
                                                                     video):
    first = await client.publish(plan(store, "Same words"), video, store)
    p = plan(store, "Same words")
    fault(sandbox, "media_publish", "ambiguous")
    second = await client.publish(p, video, store)
    assert second.post_id != first.post_id
    mine = {m["id"] for m in media_of(sandbox, ig_settings.instagram_user_id)}
    assert mine == {first.post_id, second.post_id}


async def test_not_ready_publish_is_polled_and_retried(sandbox, ig_settings, client, store, video):
    p = plan(store)
    fault(sandbox, "media_publish", "stuck")  # media_publish answers 9007/2207027 once
    post = await client.publish(p, video, store)
    assert fired(sandbox, "media_publish", "stuck") == 1
    assert [m["id"] for m in media_of(sandbox, ig_settings.instagram_user_id)] == [post.post_id]


async def test_fake_refuses_to_publish_an_unfinished_container(ig_settings):
    uid = ig_settings.instagram_user_id
    async with graph(ig_settings) as g:
        cid = (await g.post(f"{uid}/media", data=RESUMABLE_REEL)).json()["id"]
        error = (await g.post(f"{uid}/media_publish", data={"creation_id": cid})).json()["error"]
        assert (error["code"], error["error_subcode"]) == (9007, 2207027)
        error = (await g.post(f"{uid}/media", data={"media_type": "VIDEO", "video_url": "https://x/v.mp4"})
                 ).json()["error"]
        assert error["code"] == 100


async def test_rupload_offset_mismatch_says_where_to_resume(ig_settings):
    uid = ig_settings.instagram_user_id
    token = ig_settings.instagram_access_token.get_secret_value()
    async with graph(ig_settings) as g:
        created = (await g.post(f"{uid}/media", data=RESUMABLE_REEL)).json()
        up = {"Authorization": f"OAuth {token}", "file_size": "1000"}
        first = await g.post(created["uri"], headers={**up, "offset": "0"}, content=b"a" * 400)
        assert first.json()["success"] is True
        wrong = await g.post(created["uri"], headers={**up, "offset": "0"}, content=b"a" * 600)
        assert wrong.status_code == 412
        assert wrong.json()["debug_info"]["type"] == "OffsetInvalidError"
        assert wrong.json()["debug_info"]["offset"] == 400
        assert (await g.get(created["uri"], headers=up)).json()["offset"] == 400
        status = (await g.get(created["id"], params={"fields": "status_code,video_status"})).json()
        assert status["status_code"] == "IN_PROGRESS"
        assert status["video_status"]["uploading_phase"]["bytes_transferred"] == 400


async def test_stuck_container_times_out_then_a_retry_polls_the_same_container(sandbox, ig_settings, store,
                                                                               video):
    impatient = InstagramClient.from_settings(ig_settings.model_copy(update={"poll_timeout_s": 1.5}), store)
    p = plan(store)
    fault(sandbox, "container.status", "stuck", count=None)
    try:
        with pytest.raises(TransientError):
            await impatient.publish(p, video, store)
        cid = store.load(p.campaign_id, "instagram")["container_id"]
        sandbox.state.faults.clear()
        post = await impatient.publish(p, video, store)
    finally:
        await impatient.aclose()
    assert sandbox.state.ns("instagram")["containers"][cid]["media_id"] == post.post_id


async def test_failed_processing_is_permanent_and_clears_the_container(sandbox, client, store, video):
    p = plan(store)
    fault(sandbox, "container.status", "failed")
    with pytest.raises(PermanentError) as err:
        await client.publish(p, video, store)
    assert "2207026" in err.value.message  # the container's status text reaches the person reading it
    assert "container_id" not in store.load(p.campaign_id, "instagram")


async def test_publishing_limit_defers_and_then_refuses_without_calling(sandbox, ig_settings, client, store,
                                                                        video):
    uid = ig_settings.instagram_user_id
    limit = {"ig_user_id": uid, "quota_total": 1}
    httpx.put(sandbox.url + "/_admin/instagram/limits", json=limit).raise_for_status()
    await client.publish(plan(store), video, store)

    with pytest.raises(QuotaExhaustedError) as err:
        await client.publish(plan(store), video, store)
    assert err.value.until > err.value.until.now(err.value.until.tzinfo)
    containers = [c for c in sandbox.state.ns("instagram")["containers"].values() if c["user_id"] == uid]
    assert len(containers) == 1  # known before any work: no container was made for the deferred post

    trap = fault(sandbox, "*", "transient", count=None)  # any call now would fail differently
    with pytest.raises(QuotaExhaustedError):
        await client.publish(plan(store), video, store)
    assert fired(sandbox, trap.endpoint, "transient") == 0
    assert len(media_of(sandbox, uid)) == 1


async def test_limit_reached_at_media_publish_is_a_deferral(sandbox, client, store, video):
    fault(sandbox, "media_publish", "quota")
    with pytest.raises(QuotaExhaustedError):
        await client.publish(plan(store), video, store)


async def test_content_publishing_limit_shape(sandbox, ig_settings, client, store, video):
    await client.publish(plan(store), video, store)
    async with graph(ig_settings) as g:
        body = (await g.get(f"{ig_settings.instagram_user_id}/content_publishing_limit",
                            params={"fields": "quota_usage,config"})).json()
    assert body == {"data": [{"quota_usage": 1, "config": {"quota_total": 100, "quota_duration": 86400}}]}


async def test_expired_token_asks_for_reauth_and_hides_the_token(sandbox, ig_settings, store, video):
    fault(sandbox, "publishing_limit", "token_expired")
    c = InstagramClient.from_settings(ig_settings, store)
    bad = InstagramClient.from_settings(
        ig_settings.model_copy(update={"instagram_access_token": ig_settings.instagram_access_token.__class__(
            "not-a-valid-token")}), store)
    try:
        with pytest.raises(AuthExpiredError) as err:
            await c.publish(plan(store), video, store)
        assert "re-auth needed for instagram" in str(err.value)
        assert ig_settings.instagram_access_token.get_secret_value() not in str(err.value)
        with pytest.raises(AuthExpiredError) as err:
            await bad.publish(plan(store), video, store)
        assert "not-a-valid-token" not in str(err.value)
    finally:
        await c.aclose()
        await bad.aclose()


async def test_rate_limit_carries_the_time_to_regain_access(sandbox, client, store, video):
    fault(sandbox, "media.create", "rate_limit")
    with pytest.raises(RateLimitedError) as err:
        await client.publish(plan(store), video, store)
    wait = (err.value.until - err.value.until.now(err.value.until.tzinfo)).total_seconds()
    assert 0 < wait <= 60  # the fake says estimated_time_to_regain_access = 1 minute


async def test_expired_container_is_replaced(sandbox, ig_settings, client, store, video):
    p = plan(store)
    fault(sandbox, "media_publish", "transient")
    with pytest.raises(TransientError):
        await client.publish(p, video, store)
    old = store.load(p.campaign_id, "instagram")["container_id"]
    httpx.post(sandbox.url + "/_admin/clock/advance", json={"seconds": 86400 + 60}).raise_for_status()

    post = await client.publish(p, video, store)
    new = store.load(p.campaign_id, "instagram")["container_id"]
    assert new != old
    assert sandbox.state.ns("instagram")["containers"][new]["media_id"] == post.post_id
    assert len(media_of(sandbox, ig_settings.instagram_user_id)) == 1


async def test_insights_are_none_before_data_then_the_documented_shape(sandbox, ig_settings, client, store,
                                                                       video):
    p = plan(store)
    post = await client.publish(p, video, store)
    [early] = await client.fetch_metrics(p.campaign_id, [post.post_id], date.today())
    assert early.post_id == post.post_id and early.platform is Platform.INSTAGRAM
    assert (early.views, early.likes, early.comments, early.shares, early.saves) == (None,) * 5
    assert not early.available

    metrics = "views,reach,likes,comments,shares,saved,total_interactions"
    async with graph(ig_settings) as g:
        assert (await g.get(f"{post.post_id}/insights", params={"metric": metrics})).json() == {"data": []}
        httpx.post(sandbox.url + "/_admin/clock/advance", json={"seconds": 2 * 3600}).raise_for_status()
        rows = (await g.get(f"{post.post_id}/insights", params={"metric": metrics})).json()["data"]
        deprecated = (await g.get(f"{post.post_id}/insights", params={"metric": "plays"})).json()
        fields = (await g.get(post.post_id, params={"fields": "like_count,comments_count,permalink,timestamp,"
                                                              "media_product_type"})).json()
    assert [r["name"] for r in rows] == metrics.split(",")
    for r in rows:
        assert r["period"] == "lifetime" and r["id"] == f"{post.post_id}/insights/{r['name']}/lifetime"
        assert isinstance(r["values"][0]["value"], int) and r["title"]
    assert deprecated["error"]["code"] == 100
    assert fields["media_product_type"] == "REELS" and fields["permalink"] == post.url

    [later] = await client.fetch_metrics(p.campaign_id, [post.post_id], date.today())
    by_name = {r["name"]: r["values"][0]["value"] for r in rows}
    assert later.views == by_name["views"] > 0
    assert (later.likes, later.comments, later.shares, later.saves) == (
        by_name["likes"], by_name["comments"], by_name["shares"], by_name["saved"])
