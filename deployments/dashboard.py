"""The dashboard: an overview of every campaign (with the create-campaign form) and one page per campaign.

Pages are plain HTML from the store, charts are inline SVG drawn here (deployments/charts.py): no CDN,
no client-side charting, readable offline. The only script is the form's submit (dashboard_assets.py).
Routes are sync, so FastAPI runs their store reads and pandas work in its thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from deployments import dashboard_page as page
from deployments.charts import Mark, Point, Series
from deployments.dashboard_assets import DASHBOARD_CSS, DASHBOARD_JS
from intelligence.aggregate import aggregate
from metacentric.settings import Settings
from metacentric.store import Store
from models import Analysis, BudgetDecision, Campaign, DecisionOutcome, Platform

# What was in force after a decision: its `after` when it took effect, else the `before` it left alone.
IN_FORCE = (DecisionOutcome.APPLIED, DecisionOutcome.UNCHANGED)
IN_PROGRESS_STATES = ("NEW", "QUEUED", "RUNNING")
REFRESH_S = 10

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class CampaignPage:
    campaign_id: str
    campaign: Campaign | None
    state: str
    analysis: Analysis | None
    posts: list[dict[str, object]]
    decisions: list[BudgetDecision]
    table: pd.DataFrame


def dashboard_router(store: Store, settings: Settings) -> APIRouter:
    router = APIRouter(tags=["dashboard"])

    @router.get("/dashboard", response_class=HTMLResponse, summary="Every campaign, and a form to launch one")
    def overview() -> HTMLResponse:
        rows = [overview_row(store, cid) for cid in reversed(store.campaign_ids())]
        body = page.overview_body(rows, mode=settings.mode, api_enabled=bool(settings.api_token.get_secret_value()))
        return _html(page.layout("Metacentric campaigns", body, mode=settings.mode))

    @router.get("/campaigns/{campaign_id}/dashboard", response_class=HTMLResponse,
                summary="One campaign: budget split, engagement, posts, virality, decision log")
    def campaign_dashboard(campaign_id: str) -> HTMLResponse:
        data = campaign_page(store, campaign_id)
        if data is None:
            return _html(page.layout("Campaign not found", page.not_found_body(campaign_id), mode=settings.mode),
                         status_code=404)
        body = page.campaign_body(data.campaign_id, data.campaign, data.state, data.analysis, data.posts,
                                  data.decisions, data.table, budget_chart_data(data.decisions),
                                  engagement_chart_data(data.table))
        title = data.campaign.name if data.campaign else f"Campaign {campaign_id}"
        refresh = REFRESH_S if data.state in IN_PROGRESS_STATES else None
        return _html(page.layout(title, body, mode=settings.mode, refresh_s=refresh))

    @router.get("/dashboard/assets/dashboard.css", include_in_schema=False)
    def stylesheet() -> Response:
        return Response(DASHBOARD_CSS, media_type="text/css", headers={"Cache-Control": "max-age=300"})

    @router.get("/dashboard/assets/dashboard.js", include_in_schema=False)
    def script() -> Response:
        return Response(DASHBOARD_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=300"})

    return router


def _html(content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status_code, headers=SECURITY_HEADERS)


def overview_row(store: Store, campaign_id: str) -> page.OverviewRow:
    campaign = store.get_campaign(campaign_id)
    analysis = store.latest_analysis(campaign_id)
    posts = store.posts(campaign_id)
    decisions = store.decisions(campaign_id)
    return page.OverviewRow(
        campaign_id=campaign_id, campaign=campaign, state=store.campaign_state(campaign_id) or "QUEUED",
        published=sum(1 for p in posts if p["status"] == "published"),
        wanted=len(campaign.platforms) if campaign else len(posts),
        virality=analysis.virality_score if analysis else None,
        last_decision=decisions[-1] if decisions else None)


def campaign_page(store: Store, campaign_id: str) -> CampaignPage | None:
    campaign = store.get_campaign(campaign_id)
    state = store.campaign_state(campaign_id)
    if campaign is None and store.launch(campaign_id) is None:
        return None
    table = aggregate(store.snapshots(campaign_id, kind="ad"), store.snapshots(campaign_id, kind="post"))
    return CampaignPage(campaign_id=campaign_id, campaign=campaign, state=state or "QUEUED",
                        analysis=store.latest_analysis(campaign_id), posts=store.posts(campaign_id),
                        decisions=store.decisions(campaign_id), table=table)


def _platform_order(names: set[str]) -> list[str]:
    known = [p.value for p in Platform if p.value in names]
    return known + sorted(names - set(known))


def short_label(text: str) -> str:
    """An x-axis label: 'launch:youtube,x' -> 'launch'; '2026-11-28' -> 'Nov 28'; anything else as it is."""
    if text.startswith("launch"):
        return "launch"
    try:
        return date.fromisoformat(text).strftime("%b %d")
    except ValueError:
        return text


def budget_chart_data(decisions: list[BudgetDecision]) -> tuple[list[Series], list[str]]:
    """Budget per platform after each decision, in decision order (decided_at).

    The line is what was in force (the `after` of an applied or unchanged decision, otherwise the
    `before` it left alone), with a dot where a decision was applied; a proposal that did not take
    effect (dry run, rejected, timed out, pending) is a ring at the amount it proposed.
    """
    labels = [short_label(d.window) for d in decisions]
    used = {p for d in decisions for p in (*d.before, *d.after)}
    series = []
    for platform in (p for p in Platform if p in used):
        name = platform.value
        points: list[Point] = []
        extra: list[Point] = []
        for i, d in enumerate(decisions):
            before, after = d.before.get(platform, 0.0), d.after.get(platform, 0.0)
            took_effect = d.outcome in IN_FORCE
            value = after if took_effect else before
            mark: Mark = "dot" if d.outcome is DecisionOutcome.APPLIED else "none"
            points.append(Point(i, value, mark, f"{name} {labels[i]}: {value:.2f} ({d.outcome.value})"))
            if not took_effect and abs(after - before) > 0.005:
                extra.append(Point(i, after, "ring",
                                   f"{name} {labels[i]}: proposed {after:.2f}, {d.outcome.value.replace('_', ' ')}"))
        series.append(Series(name, points, extra))
    return series, labels


def engagement_chart_data(table: pd.DataFrame) -> tuple[list[Series], list[str]]:
    """Engagement (paid + organic) per platform per day, from the aggregated platform x day table."""
    if table.empty:
        return [], []
    days = sorted(str(d) for d in table["day"].unique())
    index = {d: i for i, d in enumerate(days)}
    series = []
    for name in _platform_order({str(p) for p in table["platform"].unique()}):
        rows = table[table["platform"] == name].sort_values("day")
        points = [Point(index[str(day)], float(engagement),
                        note=f"{name} {day}: {float(engagement):,.0f} engagements, {float(views):,.0f} views")
                  for day, engagement, views in rows[["day", "engagement", "views"]].itertuples(index=False, name=None)]
        series.append(Series(name, points))
    return series, [short_label(d) for d in days]
