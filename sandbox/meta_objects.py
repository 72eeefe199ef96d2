"""Ad accounts, campaigns and ad sets of the Meta fake: create, read, list, update.

Each object keeps a history of (sim time, daily_budget, status) so insights can tell what budget was
in effect on any past day. A new campaign sits in effective_status IN_PROCESS for a few sim seconds
(Meta's post-processing) and then shows its configured status; the webhook ticker announces the exit.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from sandbox.graph import GraphCall
from sandbox.meta_common import (
    MetaError,
    apply_filtering,
    bad_param,
    fmt_time,
    graph_id,
    minor_units,
    money,
    ns,
    ok,
    page,
    requested_fields,
    select,
)
from sandbox.state import SandboxState
from sandbox.wire import json_param

OBJECTIVES = {"OUTCOME_AWARENESS", "OUTCOME_TRAFFIC", "OUTCOME_ENGAGEMENT", "OUTCOME_LEADS", "OUTCOME_SALES",
              "OUTCOME_APP_PROMOTION"}
SPECIAL_AD_CATEGORIES = {"NONE", "EMPLOYMENT", "HOUSING", "CREDIT", "FINANCIAL_PRODUCTS_SERVICES",
                         "ISSUES_ELECTIONS_POLITICS", "ONLINE_GAMBLING_AND_GAMING"}
STATUSES = {"ACTIVE", "PAUSED", "DELETED", "ARCHIVED"}
BILLING_EVENTS = {"IMPRESSIONS", "THRUPLAY", "LINK_CLICKS", "POST_ENGAGEMENT", "PAGE_LIKES", "APP_INSTALLS"}
OPTIMIZATION_GOALS = {"REACH", "IMPRESSIONS", "THRUPLAY", "LINK_CLICKS", "LANDING_PAGE_VIEWS",
                      "POST_ENGAGEMENT", "AD_RECALL_LIFT", "VALUE", "OFFSITE_CONVERSIONS",
                      "TWO_SECOND_CONTINUOUS_VIDEO_VIEWS"}

CAMPAIGN_FIELDS = {"id", "name", "account_id", "objective", "status", "configured_status", "effective_status",
                   "daily_budget", "lifetime_budget", "budget_remaining", "special_ad_categories",
                   "created_time", "updated_time", "start_time", "bid_strategy", "buying_type", "adlabels",
                   "issues_info"}
ADSET_FIELDS = {"id", "name", "account_id", "campaign_id", "status", "configured_status", "effective_status",
                "daily_budget", "lifetime_budget", "budget_remaining", "targeting", "billing_event",
                "optimization_goal", "created_time", "updated_time", "start_time", "bid_strategy"}
ACCOUNT_FIELDS = {"id", "account_id", "name", "currency", "timezone_name", "account_status"}
CAMPAIGN_FILTERS = {"name": "name", "id": "id", "campaign.id": "id", "status": "status",
                    "configured_status": "status", "effective_status": "effective_status",
                    "objective": "objective"}
ADSET_FILTERS = {**CAMPAIGN_FILTERS, "campaign.id": "campaign_id", "campaign_id": "campaign_id",
                 "adset.id": "id"}


def account_id(part: str) -> str:
    digits = part.removeprefix("act_")
    if not digits.isdigit():
        raise MetaError(100, f"(#100) Invalid ad account id: {part}", subcode=33,
                        type_="GraphMethodException")
    return digits


def _status(value: str | None, default: str) -> str:
    status = (value or default).upper()
    if status not in STATUSES:
        raise bad_param(f"Param status must be one of {{{', '.join(sorted(STATUSES))}}}")
    return status


def _required(call: GraphCall, name: str) -> str:
    value = call.params.get(name)
    if not value:
        raise bad_param(f"The parameter {name} is required")
    return value


def _latest(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["history"][-1])


def _push(state: SandboxState, obj: dict[str, Any], **change: Any) -> None:
    entry = {**_latest(obj), **change, "t": state.clock.time()}
    obj["history"].append(entry)
    obj["updated_t"] = entry["t"]


# ad account -----------------------------------------------------------------------------------------
def get_account(call: GraphCall, account: str) -> JSONResponse:
    view = {"id": f"act_{account}", "account_id": account, "name": f"Sandbox ad account {account}",
            "currency": "USD", "timezone_name": "Etc/UTC", "account_status": 1}
    return ok(select(view, requested_fields(call, ACCOUNT_FIELDS, ["account_id", "name"], "AdAccount")))


# campaigns ------------------------------------------------------------------------------------------
def campaign_view(state: SandboxState, c: dict[str, Any]) -> dict[str, Any]:
    cur = _latest(c)
    in_process = state.clock.time() < c["in_process_until"] and cur["status"] not in ("DELETED", "ARCHIVED")
    return {
        "id": c["id"], "name": c["name"], "account_id": c["account_id"], "objective": c["objective"],
        "status": cur["status"], "configured_status": cur["status"],
        "effective_status": "IN_PROCESS" if in_process else cur["status"],
        "daily_budget": money(cur["daily_budget"]) if cur["daily_budget"] else None,
        "lifetime_budget": money(c.get("lifetime_budget")),
        "budget_remaining": money(cur["daily_budget"] or c.get("lifetime_budget")),
        "special_ad_categories": c["special_ad_categories"], "created_time": fmt_time(c["created_t"]),
        "updated_time": fmt_time(c["updated_t"]), "start_time": fmt_time(c["created_t"]),
        "bid_strategy": c["bid_strategy"], "buying_type": "AUCTION", "adlabels": c["adlabels"] or None,
        "issues_info": [],
    }


def create_campaign(state: SandboxState, call: GraphCall, account: str, in_process_s: float) -> JSONResponse:
    name = _required(call, "name")
    objective = _required(call, "objective").upper()
    if objective not in OBJECTIVES:
        raise MetaError(100, f"(#100) Objective {objective} is invalid. Use one of: "
                        f"{', '.join(sorted(OBJECTIVES))}", subcode=2490408,
                        user_title="Objective is no longer supported")
    categories = json_param(call.params.get("special_ad_categories"))
    if not isinstance(categories, list):
        raise bad_param("The parameter special_ad_categories is required (a JSON array, [] or [\"NONE\"])")
    if any(c not in SPECIAL_AD_CATEGORIES for c in categories):
        raise bad_param("Param special_ad_categories has an invalid value")
    daily = minor_units(call.params.get("daily_budget"), "daily_budget")
    lifetime = minor_units(call.params.get("lifetime_budget"), "lifetime_budget")
    if daily and lifetime:
        raise bad_param("Only one of daily_budget and lifetime_budget can be set")
    labels = json_param(call.params.get("adlabels"), [])
    if not isinstance(labels, list) or not all(isinstance(x, dict) and x.get("name") for x in labels):
        raise bad_param("Param adlabels must be an array of {\"name\": ...}")
    status = _status(call.params.get("status"), "ACTIVE")
    if "validate_only" in (json_param(call.params.get("execution_options"), []) or []):
        return ok({"success": True})
    now = state.clock.time()
    cid = graph_id(state, "1202", 14)
    campaign = {
        "id": cid, "account_id": account, "name": name, "objective": objective,
        "special_ad_categories": categories, "lifetime_budget": lifetime,
        "bid_strategy": call.params.get("bid_strategy") or "LOWEST_COST_WITHOUT_CAP",
        "adlabels": [{"id": graph_id(state, "1203", 14), "name": str(x["name"])} for x in labels],
        "created_t": now, "updated_t": now, "in_process_until": now + in_process_s,
        "history": [{"t": now, "daily_budget": daily, "status": status}],
    }
    data = ns(state)
    data["campaigns"][cid] = campaign
    data["in_process"].append(cid)
    register_market(state, campaign)
    return ok({"id": cid})


def list_campaigns(state: SandboxState, call: GraphCall, account: str) -> JSONResponse:
    fields = requested_fields(call, CAMPAIGN_FIELDS, [], "Campaign")
    views = [campaign_view(state, c) for c in ns(state)["campaigns"].values() if c["account_id"] == account]
    views = apply_filtering(call, views, CAMPAIGN_FILTERS)
    views.sort(key=lambda v: v["created_time"] + v["id"], reverse=True)  # newest first, as Graph lists
    return ok(page(call, [select(v, fields) for v in views]))


def get_campaign(state: SandboxState, call: GraphCall, cid: str) -> JSONResponse:
    fields = requested_fields(call, CAMPAIGN_FIELDS, [], "Campaign")
    return ok(select(campaign_view(state, ns(state)["campaigns"][cid]), fields))


def update_campaign(state: SandboxState, call: GraphCall, cid: str) -> JSONResponse:
    c = ns(state)["campaigns"][cid]
    change: dict[str, Any] = {}
    if "daily_budget" in call.params:
        if not _latest(c)["daily_budget"]:
            raise bad_param("Cannot set daily_budget on a campaign without a campaign budget",
                            subcode=1885621)
        change["daily_budget"] = minor_units(call.params["daily_budget"], "daily_budget")
    if "status" in call.params:
        change["status"] = _status(call.params["status"], "ACTIVE")
    if call.params.get("name"):
        c["name"] = call.params["name"]
    _push(state, c, **change)
    register_market(state, c)
    return ok({"success": True})


def delete_object(state: SandboxState, obj: dict[str, Any]) -> JSONResponse:
    _push(state, obj, status="DELETED")
    return ok({"success": True})


# ad sets --------------------------------------------------------------------------------------------
def adset_view(state: SandboxState, a: dict[str, Any]) -> dict[str, Any]:
    cur = _latest(a)
    parent = _latest(ns(state)["campaigns"][a["campaign_id"]])["status"]
    effective = "CAMPAIGN_PAUSED" if parent == "PAUSED" and cur["status"] == "ACTIVE" else cur["status"]
    return {
        "id": a["id"], "name": a["name"], "account_id": a["account_id"], "campaign_id": a["campaign_id"],
        "status": cur["status"], "configured_status": cur["status"], "effective_status": effective,
        "daily_budget": money(cur["daily_budget"]) if cur["daily_budget"] else None,
        "lifetime_budget": money(a.get("lifetime_budget")), "budget_remaining": money(cur["daily_budget"]),
        "targeting": a["targeting"], "billing_event": a["billing_event"],
        "optimization_goal": a["optimization_goal"], "created_time": fmt_time(a["created_t"]),
        "updated_time": fmt_time(a["updated_t"]), "start_time": fmt_time(a["created_t"]),
        "bid_strategy": a["bid_strategy"],
    }


def create_adset(state: SandboxState, call: GraphCall, account: str) -> JSONResponse:
    name = _required(call, "name")
    cid = _required(call, "campaign_id")
    campaign = ns(state)["campaigns"].get(cid)
    if campaign is None or campaign["account_id"] != account:
        raise bad_param(f"Param campaign_id: campaign {cid} does not exist in act_{account}", subcode=1487013)
    billing = _required(call, "billing_event").upper()
    if billing not in BILLING_EVENTS:
        raise bad_param("Param billing_event has an invalid value")
    goal = (call.params.get("optimization_goal") or "POST_ENGAGEMENT").upper()
    if goal not in OPTIMIZATION_GOALS:
        raise bad_param("Param optimization_goal has an invalid value")
    targeting = json_param(call.params.get("targeting"))
    if not isinstance(targeting, dict) or not isinstance(targeting.get("geo_locations"), dict):
        raise MetaError(100, "(#100) Targeting spec must have geo_locations", subcode=1487079,
                        user_title="Your audience is missing a location")
    daily = minor_units(call.params.get("daily_budget"), "daily_budget")
    lifetime = minor_units(call.params.get("lifetime_budget"), "lifetime_budget")
    campaign_budget = _latest(campaign)["daily_budget"] or campaign.get("lifetime_budget")
    if not (daily or lifetime or campaign_budget):
        raise MetaError(100, "(#100) An ad set needs a daily_budget or lifetime_budget when its campaign "
                        "has none", subcode=1885272, user_title="Budget required")
    now = state.clock.time()
    aid = graph_id(state, "1202", 14)
    ns(state)["adsets"][aid] = {
        "id": aid, "account_id": account, "campaign_id": cid, "name": name, "targeting": targeting,
        "billing_event": billing, "optimization_goal": goal, "lifetime_budget": lifetime,
        "bid_strategy": call.params.get("bid_strategy") or "LOWEST_COST_WITHOUT_CAP",
        "created_t": now, "updated_t": now,
        "history": [{"t": now, "daily_budget": daily,
                     "status": _status(call.params.get("status"), "ACTIVE")}],
    }
    register_market(state, campaign)
    return ok({"id": aid})


def list_adsets(state: SandboxState, call: GraphCall, *, account: str | None = None,
                campaign_id: str | None = None) -> JSONResponse:
    fields = requested_fields(call, ADSET_FIELDS, [], "AdSet")
    views = [adset_view(state, a) for a in ns(state)["adsets"].values()
             if (account is None or a["account_id"] == account)
             and (campaign_id is None or a["campaign_id"] == campaign_id)]
    views = apply_filtering(call, views, ADSET_FILTERS)
    views.sort(key=lambda v: v["created_time"] + v["id"], reverse=True)
    return ok(page(call, [select(v, fields) for v in views]))


def get_adset(state: SandboxState, call: GraphCall, aid: str) -> JSONResponse:
    fields = requested_fields(call, ADSET_FIELDS, [], "AdSet")
    return ok(select(adset_view(state, ns(state)["adsets"][aid]), fields))


def update_adset(state: SandboxState, call: GraphCall, aid: str) -> JSONResponse:
    a = ns(state)["adsets"][aid]
    change: dict[str, Any] = {}
    if "daily_budget" in call.params:
        change["daily_budget"] = minor_units(call.params["daily_budget"], "daily_budget")
    if "status" in call.params:
        change["status"] = _status(call.params["status"], "ACTIVE")
    if call.params.get("name"):
        a["name"] = call.params["name"]
    if "targeting" in call.params:
        targeting = json_param(call.params["targeting"])
        if not isinstance(targeting, dict) or not isinstance(targeting.get("geo_locations"), dict):
            raise MetaError(100, "(#100) Targeting spec must have geo_locations", subcode=1487079)
        a["targeting"] = targeting
    _push(state, a, **change)
    register_market(state, ns(state)["campaigns"][a["campaign_id"]])
    return ok({"success": True})


# the market's view of a campaign ---------------------------------------------------------------------
def register_market(state: SandboxState, campaign: dict[str, Any]) -> None:
    """Tell the market what Meta knows about the campaign: budget, audience reach, genre label."""
    genre = "pop"
    for label in campaign["adlabels"]:
        if label["name"].startswith("genre:"):
            genre = label["name"].split(":", 1)[1].strip().lower() or genre
    countries: set[str] = set()
    for a in ns(state)["adsets"].values():
        if a["campaign_id"] == campaign["id"]:
            countries.update(a["targeting"].get("geo_locations", {}).get("countries", []))
    budget = _latest(campaign)["daily_budget"] or 0
    state.market.register(campaign["id"], {
        "genre": genre, "daily_budget": budget / 100,
        # A rough potential reach: a couple of million reachable listeners per targeted country.
        "audience_size": 2_000_000 * len(countries) if countries else 1_000_000,
    })
