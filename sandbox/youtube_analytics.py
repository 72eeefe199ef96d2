"""youtubeanalytics.googleapis.com v2 reports.query: a result table per channel, by day or in total.

Figures exist only for Pacific days that have ended in sim time (plus `analytics_latency_days`, 0 by
default); a day's figures are the difference of the market's cumulative counters at the ends of
consecutive days, so summing the days gives the video's cumulative counters. No data -> no "rows" key.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi.responses import JSONResponse, Response
from starlette.requests import Request

from sandbox.state import SandboxState
from sandbox.youtube_common import PACIFIC, Caller, authorize, google_error, limits, pacific_day, with_faults
from sandbox.youtube_videos import counters, live_at, videos

METRICS = ("views", "likes", "dislikes", "comments", "shares", "estimatedMinutesWatched",
           "averageViewDuration", "subscribersGained", "subscribersLost")


def _bad(message: str) -> JSONResponse:
    return google_error(400, "badRequest", message)


def _day_end(day: date) -> float:
    return datetime.combine(day + timedelta(days=1), time(0), PACIFIC).timestamp()


def _view_seconds(video_id: str) -> int:
    """How long a view of this video lasts on average (a stable property of the video)."""
    unit = int.from_bytes(hashlib.sha256(f"avd|{video_id}".encode()).digest()[:4], "big") / 2**32
    return 25 + int(150 * unit)


def _cumulative(state: SandboxState, video: dict[str, Any], at: float) -> dict[str, int]:
    c = counters(state, video, at)
    return {"views": c["views"], "likes": c["likes"], "dislikes": int(c["likes"] * 0.02),
            "comments": c["comments"], "shares": c["shares"], "subscribersGained": int(c["likes"] * 0.1),
            "subscribersLost": 0, "watch_s": c["views"] * _view_seconds(video["id"])}


def _video_day(state: SandboxState, video: dict[str, Any], day: date) -> dict[str, int] | None:
    """One video's figures for one day, or None if it was not yet watchable by the end of that day."""
    start = live_at(state, video)
    if start is None or start >= _day_end(day):
        return None
    before = _cumulative(state, video, _day_end(day - timedelta(days=1)))
    after = _cumulative(state, video, _day_end(day))
    return {k: after[k] - before[k] for k in after}


def _cell(metric: str, figures: dict[str, int]) -> int:
    if metric == "estimatedMinutesWatched":
        return round(figures["watch_s"] / 60)
    if metric == "averageViewDuration":
        return round(figures["watch_s"] / figures["views"]) if figures["views"] else 0
    return figures[metric]


def _add(into: dict[str, int], figures: dict[str, int]) -> None:
    for k, v in figures.items():
        into[k] = into.get(k, 0) + v


Query = tuple[date, date, list[str], bool, list[str]]


def _parse(q: Any, caller: Caller, state: SandboxState) -> Query | Response:
    """(start, end, metrics, by_day, video ids) from the query, or Google's 400/403."""
    for name in ("ids", "startDate", "endDate", "metrics"):
        if not q.get(name):
            return google_error(400, "required", f"Required parameter: {name}")
    if q["ids"] not in ("channel==MINE", f"channel=={caller.channel}"):
        return google_error(403, "forbidden", "Forbidden")
    try:
        start, end = date.fromisoformat(q["startDate"]), date.fromisoformat(q["endDate"])
    except ValueError:
        return _bad("Invalid date. Dates must be in YYYY-MM-DD format.")
    if start > end:
        return _bad("The query is not supported. startDate must not be after endDate.")
    metrics = [m.strip() for m in q["metrics"].split(",") if m.strip()]
    for m in metrics:
        if m not in METRICS:
            return _bad(f"Unknown identifier ({m}) given in field parameters.metrics.")
    dims = q.get("dimensions", "")
    if dims not in ("", "day"):
        return _bad("The query is not supported. The sandbox reports by day or in total.")
    owned = [v for v, rec in videos(state).items() if rec["channel"] == caller.channel]
    filters = q.get("filters", "")
    if not filters:
        return start, end, metrics, bool(dims), owned
    if not filters.startswith("video=="):
        return _bad(f"The query is not supported. Unsupported filter: {filters}")
    wanted = [v for v in filters.removeprefix("video==").split(",") if v]
    if any(v not in owned for v in wanted):
        return google_error(403, "forbidden", "Forbidden")
    return start, end, metrics, bool(dims), wanted


def reports_endpoint(state: SandboxState, static_token: str) -> Any:
    async def reports(request: Request) -> Response:
        async def call() -> Response:
            caller = authorize(request, state, static_token)
            if isinstance(caller, JSONResponse):
                return caller
            parsed = _parse(request.query_params, caller, state)
            if isinstance(parsed, Response):
                return parsed
            start, end, metrics, by_day, wanted = parsed
            latency = int(limits(state).get("analytics_latency_days", 0))
            last_complete = pacific_day(state.clock.time()) - timedelta(days=1 + latency)
            per_day: dict[date, dict[str, int]] = {}
            day = start
            while day <= min(end, last_complete):
                for vid in wanted:
                    figures = _video_day(state, videos(state)[vid], day)
                    if figures is not None:
                        _add(per_day.setdefault(day, {}), figures)
                day += timedelta(days=1)
            headers = [{"name": "day", "columnType": "DIMENSION", "dataType": "STRING"}] if by_day else []
            headers += [{"name": m, "columnType": "METRIC", "dataType": "INTEGER"} for m in metrics]
            rows: list[list[Any]] = []
            if by_day:
                order = sorted(per_day, reverse=request.query_params.get("sort", "") == "-day")
                rows = [[d.isoformat(), *(_cell(m, per_day[d]) for m in metrics)] for d in order]
            elif per_day:
                total: dict[str, int] = {}
                for figures in per_day.values():
                    _add(total, figures)
                rows = [[_cell(m, total) for m in metrics]]
            body: dict[str, Any] = {"kind": "youtubeAnalytics#resultTable", "columnHeaders": headers}
            if rows:  # Google leaves "rows" out when there is no data
                body["rows"] = rows
            return JSONResponse(body)

        return await with_faults(state, ["reports.query"], call)

    return reports

