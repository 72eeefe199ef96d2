"""The sandbox keeps campaigns, posts, quotas and its clock across a restart when given a state file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx

from metacentric.media import make_demo_video
from metacentric.settings import Settings
from metacentric.store import Store
from models import PlatformCopy, PlatformPlan
from platforms.meta import MetaClient
from platforms.tiktok import TikTokClient
from sandbox.faults import FaultRule
from sandbox.server import start_in_thread
from sandbox.state import SandboxState


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.json"
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    video = make_demo_video(tmp_path / "v.mp4", size=300_000, seed="restart")
    with start_in_thread(SandboxState(state_file, seed=3)) as first:
        settings = Settings(var_dir=tmp_path).for_sandbox(first.url)
        meta = MetaClient.from_settings(settings, store)
        campaign_id = await meta.create_campaign("Restart Artist - Persist", 80.0)
        tiktok = TikTokClient.from_settings(settings, store)
        store.claim_post("c-restart", "tiktok")
        plan = PlatformPlan(campaign_id="c-restart", platform="tiktok",  # type: ignore[arg-type]
                            copy_=PlatformCopy(platform="tiktok", text="persist me"),  # type: ignore[arg-type]
                            daily_budget=10)
        post = await tiktok.publish(plan, str(video), store)
        await tiktok.aclose()
        httpx.post(f"{first.url}/_admin/clock/advance", json={"days": 3}, timeout=10).raise_for_status()
        first.state.faults.add(FaultRule(platform="x", kind="transient", rate=0.5))
        posts_before = httpx.get(f"{first.url}/_admin/posts", timeout=10).json()
        offset_before = first.state.clock.offset_s

    assert state_file.exists()
    with start_in_thread(SandboxState(state_file, seed=3)) as second:
        settings = Settings(var_dir=tmp_path).for_sandbox(second.url)
        meta = MetaClient.from_settings(settings, store)
        fetched = await meta.get_campaign(campaign_id)
        assert fetched["name"] == "Restart Artist - Persist"
        assert fetched["daily_budget"] == 80.0
        posts_after = httpx.get(f"{second.url}/_admin/posts", timeout=10).json()
        assert posts_after == posts_before
        assert any(p["post_id"] == post.post_id for p in posts_after)
        assert abs(second.state.clock.offset_s - offset_before) < 1
        assert second.state.clock.now() > datetime.now(UTC)
        assert [r.kind for r in second.state.faults.rules()] == ["transient"]
