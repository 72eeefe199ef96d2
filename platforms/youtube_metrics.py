"""Turning YouTube's answers into PostMetrics: Analytics day rows for days that are over, the video's
lifetime statistics for the day still running, and None wherever YouTube has nothing yet (never 0).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from models import PostMetrics
from platforms.youtube_errors import PACIFIC

REPORT_METRICS = ("views", "likes", "comments", "shares", "estimatedMinutesWatched")


def report_request(item: dict[str, Any], day: date) -> dict[str, str] | None:
    """reports.query arguments for the video's days from its publication to `day` (None: not out by then)."""
    published = datetime.fromisoformat(item["snippet"]["publishedAt"]).astimezone(PACIFIC).date()
    if day < published:
        return None
    return {"ids": "channel==MINE", "startDate": published.isoformat(), "endDate": day.isoformat(),
            "metrics": ",".join(REPORT_METRICS), "dimensions": "day", "filters": f"video=={item['id']}",
            "sort": "day"}


def metrics_from_report(base: PostMetrics, report: dict[str, Any] | None) -> PostMetrics:
    """Sum the day rows up to base.day; None unless the day itself has a row (Analytics lags by days)."""
    if not report:
        return base
    names = [h.get("name") for h in report.get("columnHeaders", [])]
    rows = report.get("rows") or []  # Google leaves "rows" out when there is no data
    if "day" not in names or not all(m in names for m in REPORT_METRICS):
        return base
    at = {name: i for i, name in enumerate(names)}
    wanted = base.day.isoformat()
    upto = [r for r in rows if str(r[at["day"]]) <= wanted]
    if not any(str(r[at["day"]]) == wanted for r in upto):
        return base
    total = {m: sum(int(r[at[m]]) for r in upto) for m in REPORT_METRICS}
    return PostMetrics.model_validate({
        **base.model_dump(), "views": total["views"], "likes": total["likes"], "comments": total["comments"],
        "shares": total["shares"], "watch_time_s": float(total["estimatedMinutesWatched"] * 60)})


def metrics_from_statistics(base: PostMetrics, item: dict[str, Any]) -> PostMetrics:
    """The lifetime counters so far, once the video can be watched (processed and not private)."""
    status, stats = item.get("status", {}), item.get("statistics")
    if not stats or status.get("uploadStatus") != "processed" or status.get("privacyStatus") == "private":
        return base

    def count(key: str) -> int | None:  # the owner can hide likes; absent means unknown, not zero
        return int(stats[key]) if key in stats else None

    return PostMetrics.model_validate({**base.model_dump(), "views": count("viewCount"),
                                       "likes": count("likeCount"), "comments": count("commentCount")})
