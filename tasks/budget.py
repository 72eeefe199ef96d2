"""Applying a budget split to the Meta campaign's ad sets: recorded before, applied once, audited after."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from metacentric.store import Store
from models import BudgetDecision, DecisionOutcome, Platform
from platforms.errors import PlatformError
from platforms.meta import MetaClient

FINAL = (DecisionOutcome.APPLIED, DecisionOutcome.DRY_RUN, DecisionOutcome.UNCHANGED)


def as_platforms(split: dict[str, float]) -> dict[Platform, float]:
    return {Platform(k): v for k, v in split.items()}


@task(name="apply-budget", cache_policy=NO_CACHE)
async def apply_budget(meta: MetaClient, store: Store, decision: BudgetDecision, *, targeting: dict[str, object],
                       dry_run: bool = False) -> BudgetDecision:
    """Apply `decision.after` to Meta once per (campaign, window); a re-run returns the recorded outcome.

    The decision is written (PENDING) before Meta is called. Budget updates are sets, not increments,
    so a retry after an unknown outcome cannot double anything.
    """
    logger = get_run_logger()
    if not store.claim_decision(decision):
        recorded = store.decision(decision.campaign_id, decision.window)
        if recorded is not None and recorded.outcome in FINAL:
            logger.info("budget for %s window %s already %s", decision.campaign_id, decision.window,
                        recorded.outcome)
            return recorded
        decision = recorded or decision  # PENDING or NOT_APPLIED before: try again with the recorded intent
    if dry_run:
        decision = decision.model_copy(update={"outcome": DecisionOutcome.DRY_RUN})
    elif decision.after == decision.before:
        decision = decision.model_copy(update={"outcome": DecisionOutcome.UNCHANGED})
    else:
        try:
            platforms = [p.value for p, v in decision.after.items() if v > 0]
            await meta.ensure_ad_sets(decision.campaign_id, platforms, targeting)
            await meta.set_ad_set_budgets(decision.campaign_id, {p.value: v for p, v in decision.after.items()})
            decision = decision.model_copy(update={"outcome": DecisionOutcome.APPLIED})
        except PlatformError as exc:
            logger.warning("budget not applied for %s: %s", decision.campaign_id, exc)
            detail = str(exc)
            if decision.before:  # some ad sets may have changed before the failure: put them back
                try:
                    await meta.set_ad_set_budgets(decision.campaign_id,
                                                  {p.value: v for p, v in decision.before.items()})
                except PlatformError as undo:
                    detail += f"; restoring the previous budgets also failed ({undo}): check Ads Manager"
            decision = decision.model_copy(update={"outcome": DecisionOutcome.NOT_APPLIED, "detail": detail})
    store.update_decision(decision)
    return decision
