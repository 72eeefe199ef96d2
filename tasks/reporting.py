"""Artifacts a marketer reads in the Prefect UI: a table per platform and a markdown summary."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from models import Analysis, BudgetDecision, Campaign, PublishResult


def launch_rows(analysis: Analysis, results: list[PublishResult],
                decision: BudgetDecision | None) -> list[dict[str, Any]]:
    budgets = {p.value: v for p, v in decision.after.items()} if decision else {}
    rows = []
    for r in results:
        rows.append({
            "platform": r.platform.value,
            "status": r.status.value,
            "post_id": r.post_id or "",
            "url": r.url or "",
            "predicted_engagement": round(analysis.predicted_engagement.get(r.platform, 0.0), 1),
            "daily_budget": budgets.get(r.platform.value, 0.0),
            "error": r.error or "",
        })
    for platform, reason in analysis.skipped.items():
        rows.append({"platform": platform.value, "status": "skipped", "post_id": "", "url": "",
                     "predicted_engagement": round(analysis.predicted_engagement.get(platform, 0.0), 1),
                     "daily_budget": 0.0, "error": reason})
    return rows


def launch_markdown(campaign: Campaign, analysis: Analysis, results: list[PublishResult],
                    decision: BudgetDecision | None, dashboard_url: str | None) -> str:
    lines = [
        f"# Launch: {campaign.artist} - {campaign.song}",
        "",
        f"Meta campaign `{campaign.id}` ({campaign.name}), "
        f"daily budget {campaign.daily_budget:.2f} {campaign.currency}.",
        "",
        f"**Virality score** {analysis.virality_score:.2f} (model `{analysis.model_version}`"
        + (", cold start: trained on the simulator" if analysis.cold_start else "") + ").",
        "",
        "| platform | status | post | budget/day |",
        "|---|---|---|---|",
    ]
    budgets = decision.after if decision else {}
    for r in results:
        post = f"[{r.post_id}]({r.url})" if r.url else (r.post_id or (r.error or ""))
        lines.append(f"| {r.platform.value} | {r.status.value} | {post} | {budgets.get(r.platform, 0.0):.2f} |")
    for platform, reason in analysis.skipped.items():
        lines.append(f"| {platform.value} | skipped | {reason} | 0.00 |")
    if decision is not None:
        lines += ["", f"**Budget**: {decision.outcome.value}. {decision.reason}"]
        if decision.detail:
            lines.append(f"Detail: {decision.detail}")
    if dashboard_url:
        lines += ["", f"[Campaign dashboard]({dashboard_url})"]
    return "\n".join(lines)


def artifact_key(campaign_id: str, kind: str) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    return f"campaign-{campaign_id}-{kind}".lower()


@task(name="report", cache_policy=NO_CACHE)
async def report_launch(campaign: Campaign, analysis: Analysis, results: list[PublishResult],
                        decision: BudgetDecision | None, dashboard_url: str | None = None) -> dict[str, Any]:
    rows = launch_rows(analysis, results, decision)
    await acreate_table_artifact(table=rows, key=artifact_key(campaign.id, "launch"),
                                 description=f"Publish status per platform for campaign {campaign.id}")
    await acreate_markdown_artifact(
        markdown=launch_markdown(campaign, analysis, results, decision, dashboard_url),
        key=artifact_key(campaign.id, "launch-summary"), description="What the launch did and why")
    return {"campaign_id": campaign.id, "rows": rows}
