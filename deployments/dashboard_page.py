"""The dashboard's HTML. Every piece of text from the store or the user goes through `e()` (html.escape)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from urllib.parse import quote

import pandas as pd

from deployments.charts import Series, line_chart
from intelligence.aggregate import platform_summary
from models import Analysis, BudgetDecision, Campaign, Platform

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "MXN": "MX$", "JPY": "¥"}
NONE = "&ndash;"  # shown for a missing amount
POST_STATUS_TEXT = {"published": "published", "scheduled": "scheduled", "failed": "failed",
                    "skipped": "skipped", "pending": "in progress"}


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def money(value: float, currency: str = "USD") -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{value:,.2f}" if symbol else f"{value:,.2f} {currency}"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def campaign_href(campaign_id: str) -> str:
    return f"/campaigns/{quote(campaign_id, safe='')}/dashboard"


def safe_link(url: str | None, text: str) -> str:
    """A link only for http(s) URLs (a stored javascript: URL must not become clickable)."""
    if url and url.lower().startswith(("https://", "http://")):
        return f'<a href="{e(url)}" target="_blank" rel="noopener noreferrer">{e(text)}</a>'
    return e(text)


def badge(status: str, text: str | None = None) -> str:
    return f'<span class="badge {e(status)}">{e(text or status.replace("_", " "))}</span>'


def swatch(platform: str) -> str:
    return f'<span class="swatch swatch-{e(platform)}" aria-hidden="true"></span>{e(platform)}'


def layout(title: str, body: str, *, mode: str, refresh_s: int | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{refresh}'
            '<link rel="icon" href="data:,">'
            f"<title>{e(title)} · Metacentric</title>"
            f'<link rel="stylesheet" href="/dashboard/assets/dashboard.css"></head><body>'
            f'<header class="top"><a href="/dashboard">Metacentric</a><span>campaign launches</span>'
            f'<span class="mode">{e(mode)} mode</span></header><main>{body}</main>'
            f'<script src="/dashboard/assets/dashboard.js" defer></script></body></html>')


# ---------------------------------------------------------------------------------------------- overview
@dataclass(frozen=True)
class OverviewRow:
    campaign_id: str
    campaign: Campaign | None
    state: str
    published: int
    wanted: int
    virality: float | None
    last_decision: BudgetDecision | None


def overview_body(rows: Sequence[OverviewRow], *, mode: str, api_enabled: bool) -> str:
    if rows:
        lines = "".join(_overview_line(r) for r in rows)
        listing = ('<table id="campaigns"><thead><tr><th>Campaign</th><th>Artist</th><th>Song</th><th>State</th>'
                   '<th class="num">Daily budget</th><th>Published</th><th class="num">Virality</th>'
                   f"<th>Last budget decision</th></tr></thead><tbody>{lines}</tbody></table>")
    else:
        listing = '<p class="note" id="campaigns-empty">No campaigns yet: launch one with the form below.</p>'
    return (f'<h1>Campaigns</h1><p class="sub">{len(rows)} campaign{"" if len(rows) == 1 else "s"} '
            f"known to Metacentric ({e(mode)} mode).</p>"
            f'<section class="card">{listing}</section>{create_form(api_enabled)}')


def _overview_line(r: OverviewRow) -> str:
    c = r.campaign
    name = c.name if c else r.campaign_id
    decision = (f"{badge(r.last_decision.outcome.value)} {e(r.last_decision.window.split(':')[0])}"
                if r.last_decision else '<span class="note">none yet</span>')
    return (f'<tr data-campaign-id="{e(r.campaign_id)}"><td><a href="{e(campaign_href(r.campaign_id))}">{e(name)}</a>'
            f'<br><code class="note">{e(r.campaign_id)}</code></td><td>{e(c.artist if c else "")}</td>'
            f'<td>{e(c.song if c else "")}</td><td>{badge(r.state)}</td>'
            f'<td class="num">{money(c.daily_budget, c.currency) if c else ""}</td>'
            f"<td>{r.published}/{r.wanted}</td>"
            f'<td class="num">{"" if r.virality is None else f"{r.virality:.2f}"}</td><td>{decision}</td></tr>')


def create_form(api_enabled: bool) -> str:
    boxes = "".join(f'<label><input type="checkbox" name="platforms" value="{p.value}" checked> {p.value}</label>'
                    for p in Platform)
    disabled = "" if api_enabled else (
        '<p class="note error-text">The API is switched off on this server: set METACENTRIC_API_TOKEN to '
        "launch campaigns from here.</p>")
    return ('<section class="card"><h2>Launch a release</h2>'
            '<p class="note">Creates the Meta campaign (named “artist - song”) and launches it on every chosen '
            f"platform.</p>{disabled}"
            '<form id="create-form" class="create" data-endpoint="/campaigns/create-with-orchestration" novalidate>'
            + _field("artist", "Artist", '<input type="text" name="artist" maxlength="200" required>')
            + _field("song", "Song", '<input type="text" name="song" maxlength="200" required>')
            + _field("daily_budget", "Daily budget (at least 10)",
                     '<input type="number" name="daily_budget" min="10" step="0.01" value="50" required>')
            + _field("token", "API token", '<input type="password" name="token" autocomplete="off" required>')
            + f'<fieldset id="input-platforms"><legend>Platforms</legend>{boxes}'
              '<div class="field-error" id="error-platforms" aria-live="polite"></div></fieldset>'
            + '<div class="actions"><button type="submit">Create and launch</button></div></form>'
            '<div id="create-result" class="result" aria-live="polite"></div></section>')


def _field(key: str, label: str, control: str) -> str:
    control = control.replace("<input ", f'<input id="input-{key}" aria-describedby="error-{key}" ', 1)
    return (f'<div><label for="input-{key}">{e(label)}</label>{control}'
            f'<div class="field-error" id="error-{key}" aria-live="polite"></div></div>')


# ---------------------------------------------------------------------------------------------- campaign
def not_found_body(campaign_id: str) -> str:
    return (f"<h1>Campaign not found</h1><p>Campaign <code>{e(campaign_id)}</code> is not known to Metacentric.</p>"
            '<p><a href="/dashboard">All campaigns</a></p>')


def campaign_body(campaign_id: str, campaign: Campaign | None, state: str, analysis: Analysis | None,
                  posts: list[dict[str, object]], decisions: list[BudgetDecision], table: pd.DataFrame,
                  budget: tuple[list[Series], list[str]], engagement: tuple[list[Series], list[str]]) -> str:
    currency = campaign.currency if campaign else "USD"
    heading = (f"<h1>{e(campaign.name)}</h1><p class=\"sub\">{e(campaign.artist)} · “{e(campaign.song)}” · "
               f"Meta campaign <code>{e(campaign_id)}</code></p>" if campaign else
               f'<h1>Campaign {e(campaign_id)}</h1><p class="sub">Waiting for its release details.</p>')
    stats = _stats(campaign, state, analysis, decisions, currency)
    budget_svg = line_chart(*budget, title="Daily budget per platform after each decision",
                            y_format=lambda v: money(v, currency).removesuffix(".00"),
                            legend_notes=[("dot", "applied"), ("ring", "proposed, not applied")],
                            empty_text="no budget decisions yet")
    engagement_svg = line_chart(*engagement, title="Engagement per platform per day (paid + organic)",
                                empty_text="no metrics yet: they arrive with the first optimization cycle")
    return (f'{heading}<p><a href="/dashboard">← All campaigns</a> · '
            f'<a href="/campaigns/{e(quote(campaign_id, safe=""))}">JSON status</a></p>{stats}'
            f'<section class="card" id="budget-chart"><h2>Budget split over time</h2>{budget_svg}</section>'
            f'<section class="card" id="engagement-chart"><h2>Engagement per platform per day</h2>'
            f"{engagement_svg}{_summary(table, currency)}</section>"
            f"{_publishing(campaign, analysis, posts)}{_virality(analysis)}{_decision_log(decisions, currency)}")


def _stats(campaign: Campaign | None, state: str, analysis: Analysis | None, decisions: list[BudgetDecision],
           currency: str) -> str:
    def stat(label: str, value: str, key: str) -> str:
        return (f'<div class="stat" id="stat-{key}"><div class="label">{e(label)}</div>'
                f'<div class="value">{value}</div></div>')

    score = f"{analysis.virality_score:.2f}" if analysis else '<span class="note">not scored yet</span>'
    return ('<div class="grid">' + stat("State", badge(state), "state")
            + stat("Daily budget", money(campaign.daily_budget, currency) if campaign else NONE, "budget")
            + stat("Virality score", score, "virality")
            + stat("Budget decisions", str(len(decisions)), "decisions") + "</div>")


def _summary(table: pd.DataFrame, currency: str) -> str:
    summary = platform_summary(table)
    if summary.empty:
        return ""
    order = {p.value: i for i, p in enumerate(Platform)}
    summary = summary.sort_values("platform", key=lambda col: col.map(lambda p: order.get(p, len(order))))
    rows = "".join(
        f"<tr><td>{swatch(str(platform))}</td><td class=\"num\">{money(float(spend), currency)}</td>"
        f'<td class="num">{float(views):,.0f}</td><td class="num">{float(engagement):,.0f}</td>'
        f'<td class="num">{NONE if pd.isna(cpe) else money(float(cpe), currency)}</td></tr>'
        for platform, spend, views, engagement, cpe in summary[
            ["platform", "spend", "views", "engagement", "cost_per_engaged_view"]].itertuples(index=False, name=None))
    return ('<table class="summary"><thead><tr><th>Platform</th><th class="num">Spend</th><th class="num">Views</th>'
            f'<th class="num">Engagement</th><th class="num">Cost per engagement</th></tr></thead><tbody>{rows}'
            "</tbody></table>")


def _publishing(campaign: Campaign | None, analysis: Analysis | None, posts: list[dict[str, object]]) -> str:
    by_platform = {str(p["platform"]): p for p in posts}
    wanted = [p.value for p in campaign.platforms] if campaign else []
    names = wanted + [p for p in by_platform if p not in wanted]
    skipped = {p.value: why for p, why in analysis.skipped.items()} if analysis else {}
    rows = []
    for name in names:
        post = by_platform.get(name)
        if post is None:
            status, link = ("skipped", "") if name in skipped else ("waiting", "")
            note = skipped.get(name, "not published yet")
        else:
            status = str(post["status"])
            post_id = str(post["post_id"] or "")
            link = safe_link(str(post["url"] or ""), post_id or "open post") if post_id or post["url"] else ""
            note = str(post["error"] or "")
            deferred = post.get("deferred_until")
            if status == "scheduled" and isinstance(deferred, datetime):
                note = f"goes out at {when(deferred)}" + (f"; {note}" if note else "")
        rows.append(f'<tr data-platform="{e(name)}"><td>{swatch(name)}</td>'
                    f"<td>{badge(status, POST_STATUS_TEXT.get(status, status))}</td><td>{link}</td>"
                    f'<td class="{"error-text" if status == "failed" else "note"}">{e(note)}</td></tr>')
    body = "".join(rows) or '<tr><td colspan="4" class="note">No platforms chosen yet.</td></tr>'
    return ('<section class="card" id="publishing"><h2>Publishing</h2><table><thead><tr><th>Platform</th>'
            f"<th>Status</th><th>Post</th><th>Note</th></tr></thead><tbody>{body}</tbody></table></section>")


def _virality(analysis: Analysis | None) -> str:
    if analysis is None:
        return ('<section class="card" id="virality"><h2>Virality</h2>'
                '<p class="note">Not analysed yet: the score appears once the launch flow has run.</p></section>')
    predicted = "".join(f"<tr><td>{swatch(p.value)}</td><td class=\"num\">{v:,.0f}</td></tr>"
                        for p, v in analysis.predicted_engagement.items())
    source = "cold start: model trained on the simulator" if analysis.cold_start else "trained on real outcomes"
    return ('<section class="card" id="virality"><h2>Virality</h2>'
            f'<p><strong id="virality-score">{analysis.virality_score:.2f}</strong> '
            f'<meter min="0" max="1" value="{analysis.virality_score:.3f}"></meter> '
            f'<span class="note">model {e(analysis.model_version)} ({e(source)})</span></p>'
            + ('<table><thead><tr><th>Platform</th><th class="num">Predicted engagement</th></tr></thead>'
               f"<tbody>{predicted}</tbody></table>" if predicted else "")
            + "</section>")


def _decision_log(decisions: list[BudgetDecision], currency: str) -> str:
    rows = []
    for d in reversed(decisions):  # newest first
        platforms = [p for p in Platform if p in d.before or p in d.after]
        moves = "".join(
            f"<li>{swatch(p.value)} {_amount(d.before.get(p), currency)} → {_amount(d.after.get(p), currency)}</li>"
            for p in platforms)
        rows.append(f'<tr data-window="{e(d.window)}"><td class="time">{_stamp(d.decided_at)}</td>'
                    f'<td>{e(d.window.replace(",", ", "))}</td>'
                    f'<td><ul class="moves">{moves}</ul></td><td>{e(d.reason)}</td><td>{badge(d.outcome.value)}</td>'
                    f'<td>{e(d.approved_by or "")}</td><td>{e(d.detail or "")}</td></tr>')
    body = "".join(rows) or '<tr><td colspan="7" class="note">No budget decisions yet.</td></tr>'
    return ('<section class="card" id="decision-log"><h2>Budget decision log</h2><div class="scroll"><table>'
            "<thead><tr><th>Time (UTC)</th><th>Window</th><th>Before → after</th><th>Reason</th><th>Outcome</th>"
            f"<th>Approved by</th><th>Detail</th></tr></thead><tbody>{body}</tbody></table></div></section>")


def _stamp(moment: datetime) -> str:
    return f'{moment.strftime("%Y-%m-%d")}<br><span class="note">{moment.strftime("%H:%M:%S")}</span>'


def _amount(value: float | None, currency: str) -> str:
    return NONE if value is None else money(value, currency)
