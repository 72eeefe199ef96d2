"""launch-campaign: fetch the campaign from Meta -> analyze -> publish everywhere at once -> set budgets -> report.

Publishing runs the platform tasks concurrently in this flow's event loop (asyncio.gather over task
calls: each is its own task run with retries). The clients are async and bound to this loop, which is
why the tasks are not `.map`ped onto the thread-pool runner.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from intelligence.split import restrict_split
from metacentric.clock import platform_now
from metacentric.runtime import get_runtime
from models import Analysis, BudgetDecision, Campaign, PublishResult, PublishStatus
from platforms.errors import PlatformError
from tasks.analysis import analyze_campaign
from tasks.budget import apply_budget, as_platforms
from tasks.campaign import fetch_campaign
from tasks.publishing import failed, publish_to_platform
from tasks.reporting import report_launch


async def _current_budgets(campaign: Campaign) -> dict[str, float]:
    try:
        return await get_runtime().clients.meta.ad_set_budgets(campaign.id)
    except PlatformError:
        return {}


def launch_decision(campaign: Campaign, analysis: Analysis, results: list[PublishResult],
                    before: dict[str, float]) -> BudgetDecision | None:
    """The first budget split: the analysis's split over the platforms that actually published."""
    live = sorted(r.platform.value for r in results if r.status is PublishStatus.PUBLISHED)
    if not live:
        return None
    split = restrict_split({p.value: v for p, v in analysis.budget_split.items()}, live, campaign.daily_budget)
    left_out = sorted({p.value for p in analysis.recommended_platforms} - set(live))
    reason = "launch: split by predicted engagement" + (
        f"; no budget for {', '.join(left_out)} (not published)" if left_out else "")
    return BudgetDecision(campaign_id=campaign.id, window="launch:" + ",".join(live), decided_at=datetime.now(UTC),
                          daily_budget=campaign.daily_budget, before=as_platforms(before),
                          after=as_platforms(split), reason=reason, model_version=analysis.model_version)


@flow(name="launch-campaign", flow_run_name="launch-{campaign_id}", log_prints=True)
async def launch_campaign(campaign_id: str, publish_now: bool = True) -> State:
    """Launch one Meta campaign everywhere it should go. Safe to re-run: only what is missing is done."""
    logger = get_run_logger()
    rt = get_runtime()
    rt.store.claim_launch(campaign_id, delivery_id=f"flow:{flow_run.id}")
    rt.store.set_launch_flow_run_if_missing(campaign_id, str(flow_run.id))

    campaign = await fetch_campaign(rt.clients.meta, rt.store, rt.settings, campaign_id)
    rt.store.set_campaign_state(campaign_id, "RUNNING")
    analysis = await analyze_campaign(rt.store, campaign, now=platform_now(rt.settings), immediate=publish_now,
                                min_platform_budget=rt.settings.min_platform_budget)
    plans = [analysis.plan_for(p) for p in analysis.recommended_platforms]
    logger.info("virality %.2f; publishing to %s", analysis.virality_score, ", ".join(p.platform for p in plans))

    states: list[State[PublishResult]] = await asyncio.gather(*[  # type: ignore[call-overload]
        # The tag lets an operator cap concurrent jobs per platform with a Prefect tag concurrency limit
        # (e.g. `prefect concurrency-limit create platform:x 10`: X limits are per user).
        publish_to_platform.with_options(task_run_name=f"publish-{plan.platform.value}",
                                         tags=[f"platform:{plan.platform.value}"])(
            rt.clients.publishers[plan.platform], rt.store, campaign, plan, publish_now,
            clock=partial(platform_now, rt.settings), return_state=True)
        for plan in plans])
    results: list[PublishResult] = []
    for plan, state in zip(plans, states, strict=True):
        if state.is_completed():
            results.append(await state.aresult())
        else:  # retries exhausted or an unexpected error: record why, keep going with the others
            try:
                await state.aresult()
            except Exception as exc:
                result = failed(plan, exc)
                rt.store.record_result(result)
                results.append(result)

    decision = launch_decision(campaign, analysis, results, await _current_budgets(campaign))
    if decision is not None:
        decision = await apply_budget(rt.clients.meta, rt.store, decision,
                                      targeting=campaign.targeting.model_dump())
    await report_launch(campaign, analysis, results, decision, dashboard_url=f"/campaigns/{campaign.id}/dashboard")

    summary: dict[str, Any] = {
        "campaign_id": campaign.id,
        "virality_score": analysis.virality_score,
        "platforms": {r.platform.value: {"status": r.status.value, "post_id": r.post_id, "error": r.error}
                      for r in results},
    }
    if any(r.status is PublishStatus.PUBLISHED or r.status is PublishStatus.SCHEDULED for r in results):
        rt.store.set_campaign_state(campaign_id, "COMPLETED")
        return Completed(message="launched", data=summary)
    rt.store.set_campaign_state(campaign_id, "FAILED")
    return Failed(message="no platform could publish: " + "; ".join(r.error or "" for r in results), data=summary)
