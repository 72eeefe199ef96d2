"""optimize-campaigns: collect every platform's numbers -> aggregate -> allocate -> approve -> apply -> report.

Campaigns are optimized concurrently inside this one flow run (plain coroutines over task calls; Prefect
runs async subflows one after another, which made a cycle of three campaigns five times slower). Moves
above the approval threshold are gathered and put to a person in ONE pause of this run, then applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Completed, Failed
from pydantic import BaseModel, ValidationError

from intelligence.aggregate import aggregate
from intelligence.guardrails import check
from metacentric.clock import platform_now
from metacentric.runtime import Runtime, get_runtime
from models import BudgetDecision, Campaign, DecisionOutcome, Platform, PublishStatus
from tasks.allocation import bounds_for, decide_budget
from tasks.analytics import collect_ad_metrics, collect_post_metrics
from tasks.budget import FINAL, apply_budget
from tasks.optimize_report import report_optimization, table_rows
from tasks.unified import post_unified_analytics

LOOKBACK_DAYS = 60
CAMPAIGNS_AT_ONCE = 16


class Answer(BaseModel):
    approve: bool = True
    split: dict[str, float] | None = None  # an edited split; None keeps the proposed one


class BudgetApproval(RunInput):
    """What a person answers in the Prefect UI: one answer per campaign whose move needs approval."""

    decisions: dict[str, Answer]
    approved_by: str = "prefect-ui"


@dataclass
class Cycle:
    campaign: Campaign
    window: str
    table: pd.DataFrame
    current: dict[str, float]
    decision: BudgetDecision | None = None
    note: str = ""


def needs_approval(decision: BudgetDecision, threshold_fraction: float) -> bool:
    moved = sum(max(0.0, decision.after.get(p, 0.0) - decision.before.get(p, 0.0))
                for p in set(decision.after) | set(decision.before))
    return moved > threshold_fraction * decision.daily_budget


def answered(decision: BudgetDecision, answer: Answer | None, approved_by: str, rt: Runtime,
             cycle: Cycle) -> BudgetDecision:
    """The decision as a person left it: approved (maybe edited, still within guardrails) or not applied."""
    if answer is None or not answer.approve:
        return decision.model_copy(update={"outcome": DecisionOutcome.NOT_APPLIED, "approved_by": approved_by,
                                           "detail": "rejected by a person" if answer else "no answer given"})
    update: dict[str, Any] = {"approved_by": approved_by}
    if answer.split is not None:
        update["after"] = {Platform(k): v for k, v in answer.split.items()}
    try:
        decision = BudgetDecision.model_validate({**decision.model_dump(), **update})
    except (ValidationError, ValueError) as exc:
        return decision.model_copy(update={"outcome": DecisionOutcome.NOT_APPLIED, "approved_by": approved_by,
                                           "detail": f"edited split rejected: {exc}"})
    problems = check(cycle.current, {p.value: v for p, v in decision.after.items()},
                     bounds_for(cycle.campaign, rt.settings))
    if problems:  # a person's edit is held to the same guardrails as the optimizer's proposal
        return decision.model_copy(update={"outcome": DecisionOutcome.NOT_APPLIED,
                                           "detail": "edited split breaks guardrails: " + "; ".join(problems)})
    return decision


async def ask_approval(pending: list[Cycle], rt: Runtime) -> None:
    """Pause this run until a person answers for every pending campaign; no answer in time = not applied."""
    assert all(c.decision is not None for c in pending)
    proposed = {c.campaign.id: Answer(split={p.value: v for p, v in c.decision.after.items()})  # type: ignore[union-attr]
                for c in pending}
    summary = "; ".join(f"{c.campaign.id}: {c.decision.reason}" for c in pending)  # type: ignore[union-attr]
    try:
        asking = BudgetApproval.with_initial_data(description=f"Approve budget moves. {summary}", decisions=proposed)
        reply: BudgetApproval = await pause_flow_run(  # type: ignore[misc]
            wait_for_input=asking, timeout=rt.settings.approval_timeout_s)  # type: ignore[arg-type]
    except FlowPauseTimeout:
        for c in pending:
            c.decision = c.decision.model_copy(update={  # type: ignore[union-attr]
                "outcome": DecisionOutcome.NOT_APPLIED,
                "detail": f"no approval within {rt.settings.approval_timeout_s} s"})
        return
    for c in pending:
        c.decision = answered(c.decision, reply.decisions.get(c.campaign.id), reply.approved_by, rt,  # type: ignore[arg-type]
                              c)


async def prepare(rt: Runtime, campaign_id: str, until: date) -> Cycle | None:
    """Collect and aggregate one campaign's numbers and propose its next split (None: nothing to decide)."""
    logger = get_run_logger()
    campaign = rt.store.get_campaign(campaign_id)
    if campaign is None:
        raise ValueError(f"campaign {campaign_id} is not known to Metacentric")
    window = until.isoformat()
    recorded = rt.store.decision(campaign_id, window)
    if recorded is not None and recorded.outcome in FINAL:
        logger.info("%s: window %s already decided (%s)", campaign_id, window, recorded.outcome)
        return None
    posts = [p for p in rt.store.posts(campaign_id) if p["status"] == PublishStatus.PUBLISHED.value]
    await asyncio.gather(
        collect_ad_metrics.with_options(task_run_name=f"collect-ads-{campaign_id}")(
            rt.clients.meta, rt.store, campaign_id, until - timedelta(days=LOOKBACK_DAYS), until),
        *[collect_post_metrics.with_options(task_run_name=f"collect-{p['platform']}-{campaign_id}")(
            rt.clients.publishers[Platform(p["platform"])], rt.store, campaign_id, Platform(p["platform"]),
            p["post_id"], until) for p in posts])
    table = aggregate(rt.store.snapshots(campaign_id, kind="ad"), rt.store.snapshots(campaign_id, kind="post"))
    live = {p["platform"] for p in posts}
    current = {p: v for p, v in (await rt.clients.meta.ad_set_budgets(campaign_id)).items() if p in live}
    cycle = Cycle(campaign, window, table, current)
    if not current:
        cycle.note = "no ad sets to optimize"
        return cycle
    cycle.decision = await decide_budget.with_options(task_run_name=f"decide-{campaign_id}")(
        rt.store, rt.settings, campaign, current, window)
    return cycle


async def finish(rt: Runtime, cycle: Cycle, dry_run: bool) -> dict[str, Any]:
    """Apply (or record as not applied), report, and post to the unified analytics endpoint."""
    logger = get_run_logger()
    decision = cycle.decision
    cid = cycle.campaign.id
    if decision is not None:
        if decision.outcome is DecisionOutcome.NOT_APPLIED:
            if not rt.store.claim_decision(decision):
                rt.store.update_decision(decision)
        else:
            decision = await apply_budget.with_options(task_run_name=f"apply-budget-{cid}")(
                rt.clients.meta, rt.store, decision, targeting=cycle.campaign.targeting.model_dump(), dry_run=dry_run)
        await report_optimization.with_options(task_run_name=f"report-{cid}")(cid, cycle.table, decision)
    if rt.settings.unified_analytics_endpoint:
        # Reporting never blocks or undoes the budget decision: its failure is logged, not raised.
        rows = cycle.table.astype(object).where(cycle.table.notna(), None).to_dict("records")
        state = await post_unified_analytics(  # type: ignore[misc]
            rt.clients.analytics_http, rt.settings.unified_analytics_endpoint, cid, rows, return_state=True)
        if not state.is_completed():
            logger.warning("unified analytics endpoint did not take %s's table: %s", cid, state.message)
    return {"campaign_id": cid, "window": cycle.window,
            "outcome": decision.outcome.value if decision else cycle.note,
            "split": {p.value: v for p, v in decision.after.items()} if decision else cycle.current,
            "reason": decision.reason if decision else cycle.note, "rows": table_rows(cycle.table, decision)}


@flow(name="optimize-campaigns", log_prints=True)
async def optimize_campaigns(campaign_ids: list[str] | None = None, dry_run: bool = False) -> State:
    """Re-optimize the given campaigns (default: every launched campaign with auto-optimize on)."""
    rt = get_runtime()
    ids = campaign_ids or rt.store.campaign_ids(optimizable_only=True)
    until = platform_now(rt.settings).date() - timedelta(days=1)  # the last complete day
    # A bounded number of campaigns at a time: all at once exhausted the clients' connection pools
    # (PoolTimeout on every campaign at 1,000).
    slots = asyncio.Semaphore(CAMPAIGNS_AT_ONCE)

    async def bounded(coro: Awaitable[Any]) -> Any:
        async with slots:
            return await coro

    prepared = await asyncio.gather(*[bounded(prepare(rt, cid, until)) for cid in ids], return_exceptions=True)
    failed = {cid: str(c) for cid, c in zip(ids, prepared, strict=True) if isinstance(c, BaseException)}
    cycles = [c for c in prepared if isinstance(c, Cycle)]
    pending = [c for c in cycles if c.decision is not None and not dry_run
               and needs_approval(c.decision, rt.settings.approval_threshold_fraction)]
    if pending:
        await ask_approval(pending, rt)
    finished = await asyncio.gather(*[bounded(finish(rt, c, dry_run)) for c in cycles], return_exceptions=True)
    results = [r for r in finished if isinstance(r, dict)]
    failed.update({c.campaign.id: str(r) for c, r in zip(cycles, finished, strict=True)
                   if isinstance(r, BaseException)})
    summary = {"optimized": len(results), "failed": failed, "results": results}
    if failed:
        return Failed(message=f"{len(failed)} of {len(ids)} campaigns failed to optimize: {failed}", data=summary)
    return Completed(message=f"{len(results)} campaigns optimized", data=summary)
