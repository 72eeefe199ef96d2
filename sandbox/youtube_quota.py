"""YouTube Data API quota: per-project daily counters (reset at Pacific midnight) and the channel upload cap.

The 2026 model gives videos.insert its own bucket of calls; every other method draws units from one
shared bucket. Setting `insert_calls_per_day` to None switches to the older model, where an insert
costs `costs["videos.insert"]` units of the shared bucket.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from sandbox.state import SandboxState
from sandbox.youtube_common import NS, Caller, google_error, limits, pacific_day, quota_exceeded


def _usage(state: SandboxState, project: str) -> dict[str, Any]:
    day = pacific_day(state.clock.time()).isoformat()
    projects = state.ns(NS).setdefault("quota", {})
    usage: dict[str, Any] | None = projects.get(project)
    if usage is None or usage["day"] != day:  # a new Pacific day: the counters start again
        usage = projects[project] = {"day": day, "units": 0, "inserts": 0}
    return usage


def charge(state: SandboxState, caller: Caller, method: str) -> JSONResponse | None:
    """Count one call of `method` against the caller's project; Google's 403 if the day's quota is spent."""
    lim = limits(state)
    usage = _usage(state, caller.project)
    if method == "videos.insert" and lim["insert_calls_per_day"] is not None:
        if usage["inserts"] >= lim["insert_calls_per_day"]:
            return quota_exceeded()
        usage["inserts"] += 1
    else:
        cost = int(lim["costs"].get(method, 1))
        if usage["units"] + cost > lim["units_per_day"]:
            return quota_exceeded()
        usage["units"] += cost
    state.save()
    return None


def count_upload(state: SandboxState, caller: Caller) -> JSONResponse | None:
    """The channel's daily upload cap, separate from the project's quota (400 uploadLimitExceeded)."""
    day = pacific_day(state.clock.time()).isoformat()
    channels = state.ns(NS).setdefault("channel_uploads", {})
    seen = channels.get(caller.channel)
    if seen is None or seen["day"] != day:
        seen = channels[caller.channel] = {"day": day, "count": 0}
    if seen["count"] >= limits(state)["channel_uploads_per_day"]:
        return google_error(400, "uploadLimitExceeded", "The user has exceeded the number of videos they may "
                            "upload.", domain="youtube.video")
    seen["count"] += 1
    state.save()
    return None


def usage_report(state: SandboxState) -> dict[str, Any]:
    ns = state.ns(NS)
    return {"limits": limits(state), "quota": ns.get("quota", {}),
            "channel_uploads": ns.get("channel_uploads", {})}


def reset_usage(state: SandboxState) -> None:
    ns = state.ns(NS)
    ns["quota"] = {}
    ns["channel_uploads"] = {}
    state.save()
