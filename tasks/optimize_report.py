"""Artifacts for an optimization cycle: the platform table and a summary of what changed and why."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from intelligence.aggregate import platform_summary
from models import BudgetDecision
from tasks.reporting import artifact_key


def table_rows(table: pd.DataFrame, decision: BudgetDecision | None) -> list[dict[str, Any]]:
    budgets = {p.value: v for p, v in decision.after.items()} if decision else {}
    before = {p.value: v for p, v in decision.before.items()} if decision else {}
    rows = []
    for rec in platform_summary(table).to_dict("records"):
        p = str(rec["platform"])
        cpev = rec["cost_per_engaged_view"]
        rows.append({"platform": p, "spend": round(float(rec["spend"]), 2), "views": int(rec["views"]),
                     "engagement": int(rec["engagement"]),
                     "cost_per_engaged_view": None if pd.isna(cpev) else round(float(cpev), 4),
                     "budget_before": before.get(p), "budget_after": budgets.get(p)})
    return rows


def summary_markdown(campaign_id: str, decision: BudgetDecision) -> str:
    lines = [f"# Budget for campaign {campaign_id}, window {decision.window}", "",
             f"**Outcome:** {decision.outcome.value}" + (f" (approved by {decision.approved_by})"
                                                         if decision.approved_by else ""), "",
             f"**Why:** {decision.reason}", "", "| platform | before | after | change |", "|---|---|---|---|"]
    for p in sorted(set(decision.before) | set(decision.after)):
        b, a = decision.before.get(p, 0.0), decision.after.get(p, 0.0)
        lines.append(f"| {p.value} | {b:.2f} | {a:.2f} | {a - b:+.2f} |")
    if decision.detail:
        lines += ["", f"Detail: {decision.detail}"]
    lines += ["", f"[Campaign dashboard](/campaigns/{campaign_id}/dashboard)"]
    return "\n".join(lines)


@task(name="report-optimization", cache_policy=NO_CACHE)
async def report_optimization(campaign_id: str, table: pd.DataFrame, decision: BudgetDecision) -> None:
    await acreate_table_artifact(table=table_rows(table, decision), key=artifact_key(campaign_id, "metrics"),
                                 description=f"Platforms, metrics and budgets for campaign {campaign_id}")
    await acreate_markdown_artifact(markdown=summary_markdown(campaign_id, decision),
                                    key=artifact_key(campaign_id, "budget"),
                                    description="What the optimizer changed and why")
