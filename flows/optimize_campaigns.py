"""optimize-campaigns: collect every platform's numbers -> aggregate -> allocate -> approve -> apply -> report.

One `optimize-campaign` subflow per campaign, so each has its own runs, artifacts and (for big moves)
its own pause for approval in the Prefect UI.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Completed, Failed, State
from pydantic import ValidationError

from intelligence.aggregate import aggregate
from intelligence.guardrails import check
from metacentric.clock import platform_now
from metacentric.runtime import get_runtime
from models import BudgetDecision, DecisionOutcome, Platform, PublishStatus
from tasks.allocation import bounds_for, decide_budget
from tasks.analytics import collect_ad_metrics, collect_post_metrics
from tasks.budget import FINAL, apply_budget
from tasks.optimize_report import report_optimization, table_rows
from tasks.unified import post_unified_analytics

LOOKBACK_DAYS = 60


class BudgetApproval(RunInput):
    """What a person answers in the Prefect UI when a budget move needs approval."""

    approve: bool = True
    split: dict[str, float] | None = None  # an edited split; None keeps the proposed one
    approved_by: str = "prefect-ui"


def needs_approval(decision: BudgetDecision, threshold_fraction: float) -> bool:
    moved = sum(max(0.0, decision.after.get(p, 0.0) - decision.before.get(p, 0.0))
                for p in set(decision.after) | set(decision.before))
    return moved > threshold_fraction * decision.daily_budget


async def ask_approval(decision: BudgetDecision, timeout_s: int) -> BudgetDecision:
    """Pause until a person approves, edits or rejects the split; no answer in time means not applied."""
    try:
        answer = await pause_flow_run(  # type: ignore[misc]
            wait_for_input=BudgetApproval.with_initial_data(
                description=f"Approve budget for campaign {decision.campaign_id}: {decision.reason}",
                split={p.value: v for p, v in decision.after.items()}),
            timeout=timeout_s)
    except FlowPauseTimeout:
        return decision.model_copy(update={"outcome": DecisionOutcome.NOT_APPLIED,
                                           "detail": f"no approval within {timeout_s} s"})
    if not answer.approve:
        return decision.model_copy(update={"outcome": DecisionOutcome.NOT_APPLIED, "approved_by": answer.approved_by,
                                           "detail": "rejected by a person"})
    update: dict[str, Any] = {"approved_by": answer.approved_by}
    if answer.split is not None:
        update["after"] = {Platform(k): v for k, v in answer.split.items()}
    try:
        return BudgetDecision.model_validate({**decision.model_dump(), **update})
    except (ValidationError, ValueError) as exc:
        return decision.model_copy(update={"outcome": DecisionOutcome.NOT_APPLIED, "approved_by": answer.approved_by,
                                           "detail": f"edited split rejected: {exc}"})


@flow(name="optimize-campaign", flow_run_name="optimize-{campaign_id}")
async def optimize_campaign(campaign_id: str, dry_run: bool = False) -> dict[str, Any]:
    logger = get_run_logger()
    rt = get_runtime()
    campaign = rt.store.get_campaign(campaign_id)
    if campaign is None:
        raise ValueError(f"campaign {campaign_id} is not known to Metacentric")
    until = platform_now(rt.settings).date() - timedelta(days=1)  # the last complete day
    window = until.isoformat()
    recorded = rt.store.decision(campaign_id, window)
    if recorded is not None and recorded.outcome in FINAL:
        logger.info("window %s already decided (%s); nothing to do", window, recorded.outcome)
        return {"campaign_id": campaign_id, "window": window, "outcome": recorded.outcome.value}

    posts = [p for p in rt.store.posts(campaign_id) if p["status"] == PublishStatus.PUBLISHED.value]
    await asyncio.gather(
        collect_ad_metrics(rt.clients.meta, rt.store, campaign_id, until - timedelta(days=LOOKBACK_DAYS), until),
        *[collect_post_metrics.with_options(task_run_name=f"collect-{p['platform']}")(
            rt.clients.publishers[Platform(p["platform"])], rt.store, campaign_id, Platform(p["platform"]),
            p["post_id"], until) for p in posts])
    table = aggregate(rt.store.snapshots(campaign_id, kind="ad"), rt.store.snapshots(campaign_id, kind="post"))

    current = await rt.clients.meta.ad_set_budgets(campaign_id)
    live = {p["platform"] for p in posts}
    current = {p: v for p, v in current.items() if p in live}
    if not current:
        return {"campaign_id": campaign_id, "window": window, "outcome": "no ad sets to optimize"}
    decision = decide_budget(rt.store, rt.settings, campaign, current, window)
    if not dry_run and needs_approval(decision, rt.settings.approval_threshold_fraction):
        decision = await ask_approval(decision, rt.settings.approval_timeout_s)
        problems = check(current, {p.value: v for p, v in decision.after.items()}, bounds_for(campaign, rt.settings))
        if problems and decision.outcome is DecisionOutcome.PENDING:
            # A person's edit is held to the same guardrails as the optimizer's proposal.
            decision = decision.model_copy(update={"outcome": DecisionOutcome.NOT_APPLIED,
                                                   "detail": "edited split breaks guardrails: " + "; ".join(problems)})
    if decision.outcome is DecisionOutcome.NOT_APPLIED:
        rt.store.claim_decision(decision) or rt.store.update_decision(decision)
    else:
        decision = await apply_budget(rt.clients.meta, rt.store, decision,
                                      targeting=campaign.targeting.model_dump(), dry_run=dry_run)
    await report_optimization(campaign_id, table, decision)
    if rt.settings.unified_analytics_endpoint:
        # Reporting never blocks or undoes the budget decision: its failure is logged, not raised.
        state = await post_unified_analytics(rt.clients.analytics_http, rt.settings.unified_analytics_endpoint,
                                             campaign_id, table.astype(object).where(table.notna(), None)
                                             .to_dict("records"), return_state=True)
        if not state.is_completed():
            logger.warning("unified analytics endpoint did not take the table: %s", state.message)
    return {"campaign_id": campaign_id, "window": window, "outcome": decision.outcome.value,
            "split": {p.value: v for p, v in decision.after.items()}, "reason": decision.reason,
            "rows": table_rows(table, decision)}


@flow(name="optimize-campaigns", log_prints=True)
async def optimize_campaigns(campaign_ids: list[str] | None = None, dry_run: bool = False) -> State:
    """Re-optimize the given campaigns (default: every launched campaign with auto-optimize on)."""
    rt = get_runtime()
    ids = campaign_ids or rt.store.campaign_ids(optimizable_only=True)
    states = await asyncio.gather(*[optimize_campaign(cid, dry_run=dry_run, return_state=True) for cid in ids])
    results = [await s.aresult() for s in states if s.is_completed()]
    failed = [cid for cid, s in zip(ids, states, strict=True) if not s.is_completed()]
    summary = {"optimized": len(results), "failed": failed, "results": results}
    if failed:
        return Failed(message=f"{len(failed)} of {len(ids)} campaigns failed to optimize: {failed}", data=summary)
    return Completed(message=f"{len(results)} campaigns optimized", data=summary)

