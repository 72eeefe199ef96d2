"""Insights of the Meta fake: sync GET /{object}/insights and async report runs.

Delivery is simulated per ad set per completed sim day: the ad set spends the daily budget in effect when
the day ends (or its share of the campaign budget when it has none), and the market turns that spend into
impressions, video views and engagements for the platform the ad set promotes ("metacentric:<platform>").
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from fastapi.responses import JSONResponse

from sandbox.graph import GraphCall
from sandbox.market import PLATFORMS
from sandbox.meta_common import MetaError, bad_param, day_end, graph_id, ns, ok, page, sim_day
from sandbox.state import SandboxState
from sandbox.wire import fields_param, json_param

LEVELS = ("account", "campaign", "adset", "ad")
NUMERIC = {"spend", "impressions", "reach", "clicks", "cpm", "ctr", "frequency", "inline_post_engagement"}
IDENTITY = {"account_id", "account_currency", "campaign_id", "campaign_name", "adset_id", "adset_name",
            "objective", "date_start", "date_stop"}
LISTS = {"actions", "video_play_actions"}
ALLOWED = NUMERIC | IDENTITY | LISTS
BREAKDOWNS = {"publisher_platform"}
DEFAULT_FIELDS = ["date_start", "date_stop", "impressions", "spend"]
# Report runs: Not Started for the first moment, Running until done (sim seconds).
RUN_START_S, RUN_DONE_S = 0.2, 1.0


def _value_at(history: list[dict[str, Any]], t: float, key: str) -> Any:
    value = None
    for entry in history:
        if entry["t"] <= t:
            value = entry[key]
    return value


def platform_of(adset_name: str) -> str | None:
    prefix, _, suffix = adset_name.partition(":")
    return suffix if prefix == "metacentric" and suffix in PLATFORMS else None


def adset_day(state: SandboxState, adset: dict[str, Any], day: date) -> dict[str, float] | None:
    """One ad set's delivery on one completed day, or None when it did not deliver."""
    data = ns(state)
    campaign = data["campaigns"][adset["campaign_id"]]
    end = day_end(day)
    if adset["created_t"] >= end:
        return None
    if _value_at(adset["history"], end, "status") != "ACTIVE" or _value_at(campaign["history"], end,
                                                                             "status") != "ACTIVE":
        return None
    budget = _value_at(adset["history"], end, "daily_budget")
    if not budget:  # campaign budget optimisation: the campaign budget is shared by its ad sets
        siblings = [a for a in data["adsets"].values() if a["campaign_id"] == campaign["id"]
                    and a["created_t"] < end and _value_at(a["history"], end, "status") == "ACTIVE"
                    and not _value_at(a["history"], end, "daily_budget")]
        budget = (_value_at(campaign["history"], end, "daily_budget") or 0) / max(1, len(siblings))
    spend = round(budget / 100, 2)
    if spend <= 0:
        return None
    platform = platform_of(adset["name"])
    if platform is None:  # not one of ours: it buys impressions the market knows nothing about
        return {"spend": spend, "impressions": int(spend * 40), "video_views": 0, "engagements": 0}
    day_index = (day - sim_day(campaign["created_t"])).days
    return state.market.ad_outcome(campaign["id"], platform, day_index, spend)


def _date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise bad_param(f"Param time_range[{name}] must be a date YYYY-MM-DD") from None


def window(params: dict[str, str], today: date) -> tuple[date, date]:
    """The (since, until) the request asks for: time_range wins over date_preset; default last_30d."""
    if params.get("time_range"):
        tr = json_param(params["time_range"])
        if not isinstance(tr, dict) or "since" not in tr or "until" not in tr:
            raise bad_param("Param time_range must be {\"since\":\"YYYY-MM-DD\",\"until\":\"YYYY-MM-DD\"}")
        since, until = _date(tr["since"], "since"), _date(tr["until"], "until")
        if since > until:
            raise bad_param("Param time_range: since must not be after until", subcode=1487534)
        return since, until
    preset = params.get("date_preset") or "last_30d"
    yesterday = today - timedelta(days=1)
    if preset == "today":
        return today, today
    if preset == "yesterday":
        return yesterday, yesterday
    if preset.startswith("last_") and preset.endswith("d") and preset[5:-1].isdigit():
        return today - timedelta(days=int(preset[5:-1])), yesterday
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    if preset == "this_year":
        return today.replace(month=1, day=1), today
    if preset in ("maximum", "data_maximum"):
        return today - timedelta(days=37 * 31), today
    raise bad_param(f"Param date_preset must be one of the documented presets, got {preset}")


def _buckets(since: date, until: date, increment: str) -> list[tuple[date, date]]:
    if increment in ("", "all_days"):
        return [(since, until)]
    if increment == "monthly":
        out, cur = [], since
        while cur <= until:
            last = min(until, cur.replace(day=calendar.monthrange(cur.year, cur.month)[1]))
            out.append((cur, last))
            cur = last + timedelta(days=1)
        return out
    if not increment.isdigit() or not 1 <= int(increment) <= 90:
        raise bad_param("Param time_increment must be an integer 1-90, monthly or all_days")
    n, out, cur = int(increment), [], since
    while cur <= until:
        out.append((cur, min(until, cur + timedelta(days=n - 1))))
        cur += timedelta(days=n)
    return out


def _row(fields: list[str], ident: dict[str, Any], totals: dict[str, float]) -> dict[str, Any]:
    imp, eng = int(totals["impressions"]), int(totals["engagements"])
    views, spend = int(totals["video_views"]), round(totals["spend"], 2)
    reach = int(imp * 0.62)
    clicks = int(eng * 0.1)
    values: dict[str, Any] = {
        **ident, "spend": str(spend), "impressions": str(imp), "reach": str(reach), "clicks": str(clicks),
        "cpm": str(round(spend / imp * 1000, 6)) if imp else "0",
        "ctr": str(round(clicks / imp * 100, 6)) if imp else "0",
        "frequency": str(round(imp / reach, 6)) if reach else "0",
        "inline_post_engagement": str(eng), "account_currency": "USD",
        "actions": [{"action_type": "post_engagement", "value": str(eng)},
                    {"action_type": "video_view", "value": str(views)}],
        "video_play_actions": [{"action_type": "video_view", "value": str(views)}],
    }
    keep = set(fields) | {"date_start", "date_stop"} | {k for k in ident if k == "publisher_platform"}
    return {k: v for k, v in values.items() if k in keep}


def _split(outcome: dict[str, float], parts: list[str]) -> list[tuple[str, dict[str, float]]]:
    """Spread one ad set-day over its publisher platforms evenly (the sandbox has no placement model)."""
    n = len(parts)
    return [(p, {k: v / n for k, v in outcome.items()}) for p in parts]


def _in_scope(adset: dict[str, Any], scope: dict[str, str]) -> bool:
    key, value = next(iter(scope.items()))
    return bool((adset["id"] if key == "adset_id" else adset[key]) == value)


def report(state: SandboxState, params: dict[str, str], scope: dict[str, str],
           today: date) -> list[dict[str, Any]]:
    """Insight rows for `scope` ({"account_id"} or {"campaign_id"} or {"adset_id"}) as the params ask."""
    data = ns(state)
    level = params.get("level") or next(iter(scope)).removesuffix("_id")
    if level not in LEVELS:
        raise MetaError(1, "An unknown error occurred", subcode=99)  # Graph's real answer to a bad level
    fields = fields_param(params.get("fields")) or DEFAULT_FIELDS
    for f in fields:
        if f not in ALLOWED:
            raise bad_param(f"{f} is not valid for fields param")
    breakdowns = json_param(params.get("breakdowns"), [])
    breakdowns = breakdowns if isinstance(breakdowns, list) else str(breakdowns).split(",")
    if any(b not in BREAKDOWNS for b in breakdowns):
        raise bad_param(f"Breakdowns {breakdowns} are not supported by the sandbox (only publisher_platform)")
    since, until = window(params, today)
    buckets = _buckets(since, min(until, today - timedelta(days=1)), str(params.get("time_increment") or ""))
    if level == "ad":  # the sandbox's ad sets deliver without ad objects
        return []
    adsets = sorted((a for a in data["adsets"].values() if _in_scope(a, scope)), key=lambda a: a["id"])
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for start, stop in buckets:
        sums: dict[tuple[Any, ...], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        idents: dict[tuple[Any, ...], dict[str, Any]] = {}
        for a in adsets:
            c = data["campaigns"][a["campaign_id"]]
            ident = {"account_id": a["account_id"], "date_start": start.isoformat(),
                     "date_stop": stop.isoformat()}
            if level in ("campaign", "adset"):
                ident |= {"campaign_id": c["id"], "campaign_name": c["name"], "objective": c["objective"]}
            if level == "adset":
                ident |= {"adset_id": a["id"], "adset_name": a["name"]}
            pubs = a["targeting"].get("publisher_platforms") or ["facebook", "instagram"]
            day = start
            while day <= stop:
                outcome = adset_day(state, a, day)
                day += timedelta(days=1)
                if outcome is None:
                    continue
                for pub, part in _split(outcome, pubs) if breakdowns else [("", outcome)]:
                    key = (*(ident[k] for k in sorted(ident)), pub)
                    idents[key] = ident | ({"publisher_platform": pub} if breakdowns else {})
                    for k, v in part.items():
                        sums[key][k] += v
        for key, totals in sums.items():
            grouped[(start, *key)] = _row(fields, idents[key], totals)
    return [grouped[k] for k in sorted(grouped, key=lambda k: (k[0], tuple(map(str, k[1:]))))]


def scope_of(state: SandboxState, object_id: str) -> dict[str, str]:
    data = ns(state)
    if object_id.startswith("act_"):
        return {"account_id": object_id.removeprefix("act_")}
    if object_id in data["campaigns"]:
        return {"campaign_id": object_id}
    return {"adset_id": object_id}


def sync_insights(state: SandboxState, call: GraphCall, object_id: str) -> JSONResponse:
    rows = report(state, call.params, scope_of(state, object_id), sim_day(state.clock.time()))
    return ok(page(call, rows, summary=False))


# async report runs ------------------------------------------------------------------------------------
def create_run(state: SandboxState, call: GraphCall, object_id: str, account: str) -> JSONResponse:
    scope = scope_of(state, object_id)
    now = state.clock.time()
    report(state, call.params, scope, sim_day(now))  # validate now: a bad request fails at POST, as on Graph
    fault = state.faults.pick("meta", "insights.async", kinds=("stuck", "failed"))
    run_id = graph_id(state, "6023", 9)
    params = {k: v for k, v in call.params.items() if k not in ("after", "limit")}
    ns(state)["runs"][run_id] = {"id": run_id, "account_id": account, "scope": scope, "created_t": now,
                                 "params": params, "fate": fault.kind if fault else "ok"}
    return ok({"report_run_id": run_id})


def run_status(state: SandboxState, run: dict[str, Any]) -> tuple[str, int]:
    elapsed = state.clock.time() - run["created_t"]
    if elapsed < RUN_START_S:
        return "Job Not Started", 0
    if run["fate"] == "stuck":
        return "Job Running", 42  # stuck jobs sit at a fixed percentage forever
    if elapsed < RUN_DONE_S:
        return "Job Running", int(100 * (elapsed - RUN_START_S) / (RUN_DONE_S - RUN_START_S))
    if run["fate"] == "failed":
        return "Job Failed", 0
    return "Job Completed", 100


RUN_FIELDS = {"id", "account_id", "async_status", "async_percent_completion", "date_start", "date_stop",
              "time_ref", "time_completed", "is_running", "error_code", "error_message", "error_subcode"}


def get_run(state: SandboxState, call: GraphCall, run_id: str) -> JSONResponse:
    run = ns(state)["runs"][run_id]
    status, pct = run_status(state, run)
    since, until = window(run["params"], sim_day(run["created_t"]))
    view: dict[str, Any] = {
        "id": run_id, "account_id": run["account_id"], "async_status": status,
        "async_percent_completion": pct,
        "date_start": since.isoformat(), "date_stop": until.isoformat(), "time_ref": int(run["created_t"]),
        "is_running": status in ("Job Not Started", "Job Running"),
    }
    if status == "Job Completed":
        view["time_completed"] = int(run["created_t"] + RUN_DONE_S)
    if status == "Job Failed":
        view |= {"error_code": -2, "error_subcode": 2490547, "error_message": "The async report job failed"}
    fields = fields_param(call.params.get("fields"))
    if any(f not in RUN_FIELDS for f in fields):
        raise bad_param("Tried accessing nonexisting field on node type (AdReportRun)")
    return ok({k: v for k, v in view.items() if not fields or k in fields or k == "id"})


def run_results(state: SandboxState, call: GraphCall, run_id: str) -> JSONResponse:
    run = ns(state)["runs"][run_id]
    status, _ = run_status(state, run)
    if status != "Job Completed":
        raise MetaError(100, f"(#100) The report run is not complete (async_status: {status})",
                        subcode=1487760)
    rows = report(state, run["params"], run["scope"], sim_day(run["created_t"]))
    return ok(page(call, rows, summary=False))
