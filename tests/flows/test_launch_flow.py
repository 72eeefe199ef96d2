"""launch-campaign end to end under Prefect, with the sandbox as every platform (real HTTP)."""

from __future__ import annotations

from pathlib import Path

import httpx

from flows.launch_campaign import launch_campaign
from metacentric.runtime import Runtime
from models import DecisionOutcome
from sandbox.faults import FaultRule
from sandbox.server import RunningSandbox
from tests.flows.conftest import new_campaign


def sandbox_posts(sandbox: RunningSandbox) -> list[dict[str, object]]:
    return httpx.get(f"{sandbox.url}/_admin/posts", timeout=10).json()  # type: ignore[no-any-return]


async def test_launch_publishes_everywhere_once_and_rerun_changes_nothing(
        rt: Runtime, sandbox: RunningSandbox, tmp_path: Path) -> None:
    campaign = await new_campaign(rt, tmp_path, "Flow Artist - First Light")
    state = await launch_campaign(campaign.id, return_state=True)
    assert state.is_completed(), state.message

    posts = {p["platform"]: p for p in rt.store.posts(campaign.id)}
    analysis = rt.store.latest_analysis(campaign.id)
    assert analysis is not None
    assert set(posts) == {p.value for p in analysis.recommended_platforms}
    assert all(p["status"] == "published" and p["post_id"] for p in posts.values())
    on_sandbox = [p for p in sandbox_posts(sandbox) if p["post_id"] in {r["post_id"] for r in posts.values()}]
    assert len(on_sandbox) == len(posts)  # each post exists exactly once on its platform

    decisions = rt.store.decisions(campaign.id)
    assert len(decisions) == 1 and decisions[0].outcome is DecisionOutcome.APPLIED
    budgets = await rt.clients.meta.ad_set_budgets(campaign.id)
    assert abs(sum(budgets.values()) - campaign.daily_budget) < 0.01

    before = len(sandbox_posts(sandbox))
    again = await launch_campaign(campaign.id, return_state=True)
    assert again.is_completed()
    assert len(sandbox_posts(sandbox)) == before  # nothing published twice
    assert {p["platform"]: p["post_id"] for p in rt.store.posts(campaign.id)} == {
        k: v["post_id"] for k, v in posts.items()}
    assert len(rt.store.decisions(campaign.id)) == 1  # the same budget window is not decided twice


async def test_a_platform_failing_for_good_does_not_stop_the_others(
        rt: Runtime, sandbox: RunningSandbox, tmp_path: Path) -> None:
    campaign = await new_campaign(rt, tmp_path, "Flow Artist - Second Wind")
    sandbox.state.faults.add(FaultRule(platform="x", kind="token_expired"))  # dead credential: re-auth needed
    state = await launch_campaign(campaign.id, return_state=True)
    assert state.is_completed(), state.message

    posts = {p["platform"]: p for p in rt.store.posts(campaign.id)}
    assert posts["x"]["status"] == "failed"
    assert "re-auth needed for x" in (posts["x"]["error"] or "")
    others = [p for name, p in posts.items() if name != "x"]
    assert others and all(p["status"] == "published" for p in others)
    decision = rt.store.decisions(campaign.id)[-1]
    assert "x" not in {p.value for p, v in decision.after.items() if v > 0}  # no budget where nothing runs

    sandbox.state.faults.clear()
    published_before = {p["platform"]: p["post_id"] for p in others}
    rerun = await launch_campaign(campaign.id, return_state=True)
    assert rerun.is_completed()
    posts = {p["platform"]: p for p in rt.store.posts(campaign.id)}
    assert posts["x"]["status"] == "published"  # only the missing one was done
    assert {k: posts[k]["post_id"] for k in published_before} == published_before
