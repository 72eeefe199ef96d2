"""The demo's report.json and the summary printed at the end.

The reward figures are computed by the demo harness (not the product) from the sandbox market's hidden
ground truth: for every optimized day, the expected engagement of the spend that actually ran on each
platform, against what an even split of the same budget would have earned on the same days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from metacentric.store import Store
from models import DecisionOutcome, Platform, PublishStatus
from sandbox.server import RunningSandbox

_REPORTED = {PublishStatus.PUBLISHED.value: "published", PublishStatus.FAILED.value: "failed",
             "pending": "failed", PublishStatus.SCHEDULED.value: "skipped"}


def _platforms(store: Store, campaign_id: str) -> dict[str, dict[str, Any]]:
    analysis = store.latest_analysis(campaign_id)
    rows = {p["platform"]: p for p in store.posts(campaign_id)}
    out: dict[str, dict[str, Any]] = {}
    for platform in Platform:
        row = rows.get(platform.value)
        if row is None:
            why = analysis.skipped.get(platform) if analysis else None
            out[platform.value] = {"status": "skipped", "post_id": None, "error": why or "not chosen"}
        else:
            out[platform.value] = {"status": _REPORTED.get(row["status"], "failed"), "post_id": row["post_id"],
                                   "error": row["error"], "detail_status": row["status"], "url": row["url"]}
    return out


def _budget(store: Store, campaign_id: str, daily_budget: float) -> dict[str, Any]:
    decisions = store.decisions(campaign_id)
    applied = [d for d in decisions if d.outcome is DecisionOutcome.APPLIED]
    return {
        "daily_budget": daily_budget,
        "split": {p.value: v for p, v in applied[-1].after.items()} if applied else {},
        "history": [{"at": d.decided_at.isoformat(), "window": d.window, "outcome": d.outcome.value,
                     "split": {p.value: v for p, v in d.after.items()}, "reason": d.reason} for d in decisions],
    }


def _campaign_created_day(sandbox: RunningSandbox, campaign_id: str) -> date:
    created_t = sandbox.state.ns("meta")["campaigns"][campaign_id]["created_t"]
    return datetime.fromtimestamp(created_t, UTC).date()


def reward_summary(store: Store, sandbox: RunningSandbox, campaign_ids: list[str], cycles: int) -> dict[str, Any]:
    market = sandbox.state.market
    reward = uniform = realised = 0.0
    per_campaign: dict[str, dict[str, float]] = {}
    for cid in campaign_ids:
        created = _campaign_created_day(sandbox, cid)
        by_day: dict[str, dict[str, dict[str, Any]]] = {}
        for row in store.snapshots(cid, kind="ad"):
            by_day.setdefault(row["day"], {})[row["platform"]] = row
        c_reward = c_uniform = 0.0
        for day, rows in by_day.items():
            index = (date.fromisoformat(day) - created).days
            total = sum(float(r["spend"]) for r in rows.values())
            even = total / len(rows)
            for platform, r in rows.items():
                c_reward += market.expected_engagement(cid, platform, index, float(r["spend"]))
                c_uniform += market.expected_engagement(cid, platform, index, even)
                realised += float(r["engagements"])
        per_campaign[cid] = {"reward": round(c_reward, 1), "uniform_baseline_reward": round(c_uniform, 1)}
        reward += c_reward
        uniform += c_uniform
    return {"cycles": cycles, "reward": round(reward, 1), "uniform_baseline_reward": round(uniform, 1),
            "reward_vs_uniform": round(reward / uniform, 4) if uniform else None,
            "realised_engagements": int(realised), "per_campaign": per_campaign,
            "reward_definition": "expected engagements (noise-free market truth) of the spend that ran each day, "
                                 "vs the same daily spend split evenly over the same platforms"}


def build_report(store: Store, sandbox: RunningSandbox, campaign_ids: list[str], cycles: int) -> dict[str, Any]:
    campaigns = []
    for cid in campaign_ids:
        campaign = store.get_campaign(cid)
        analysis = store.latest_analysis(cid)
        launch = store.launch(cid)
        campaigns.append({
            "campaign_id": cid,
            "name": campaign.name if campaign else None,
            "flow_run_id": launch["flow_run_id"] if launch else None,
            "state": store.campaign_state(cid) or "NOT_LAUNCHED",
            "virality_score": analysis.virality_score if analysis else None,
            "model_version": analysis.model_version if analysis else None,
            "platforms": _platforms(store, cid),
            "budget": _budget(store, cid, campaign.daily_budget if campaign else 0.0),
        })
    return {"campaigns": campaigns, "optimization": reward_summary(store, sandbox, campaign_ids, cycles)}


def print_summary(console: Console, report: dict[str, Any], path: Path) -> None:
    table = Table(title="Metacentric demo")
    for col in ("campaign", "state", "virality", "platforms (post ids)", "budget before -> after"):
        table.add_column(col)
    for c in report["campaigns"]:
        posts = "\n".join(f"{p}: {v['status']} {v['post_id'] or v['error'] or ''}" for p, v in c["platforms"].items())
        history = c["budget"]["history"]
        first = history[0]["split"] if history else {}
        last = c["budget"]["split"]
        budget = "\n".join(f"{p}: {first.get(p, 0):.2f} -> {last.get(p, 0):.2f}" for p in sorted(last or first))
        score = f"{c['virality_score']:.2f}" if c["virality_score"] is not None else "-"
        table.add_row(f"{c['name']}\n{c['campaign_id']}", c["state"], score, posts, budget)
    console.print(table)
    opt = report["optimization"]
    console.print(f"Optimization: {opt['cycles']} cycles, reward {opt['reward']} vs even split "
                  f"{opt['uniform_baseline_reward']} ({opt['reward_vs_uniform']}x). "
                  f"Took {report.get('elapsed_s')} s. Report: {path}")
