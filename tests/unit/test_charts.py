"""Server-side SVG charts: one line per series, escaped text, a clear empty state, and the dashboard's chart data."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from deployments.charts import PLATFORM_COLORS, Point, Series, color_for, compact_number, line_chart, nice_ticks
from deployments.dashboard import budget_chart_data, engagement_chart_data, short_label
from intelligence.aggregate import aggregate
from models import BudgetDecision, DecisionOutcome, Platform

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves the SVG is well-formed XML


def lines(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if p.get("class") == "line"]


def series(name: str, ys: list[float]) -> Series:
    return Series(name, [Point(i, y) for i, y in enumerate(ys)])


def test_one_non_empty_path_per_series_in_its_platform_colour() -> None:
    chart = [series("youtube", [1, 2, 3]), series("tiktok", [3, 2, 1]), series("x", [0, 5, 9])]
    root = parse(line_chart(chart, ["a", "b", "c"], title="engagement"))
    paths = lines(root)
    assert len(paths) == 3
    assert all(p.get("d", "").startswith("M") and p.get("d", "").count("L") == 2 for p in paths)
    groups = {g.get("data-series"): g.get("stroke") for g in root.iter(f"{SVG}g") if g.get("class") == "series"}
    assert groups == {"youtube": PLATFORM_COLORS["youtube"], "tiktok": PLATFORM_COLORS["tiktok"],
                      "x": PLATFORM_COLORS["x"]}
    legend = [t.text for g in root.iter(f"{SVG}g") if g.get("class") == "legend" for t in g.iter(f"{SVG}text")]
    assert legend == ["youtube", "tiktok", "x"]


def test_series_without_points_draws_nothing_and_a_single_point_still_shows() -> None:
    root = parse(line_chart([series("youtube", []), series("x", [4.0])], ["only day"], title="t"))
    assert [g.get("data-series") for g in root.iter(f"{SVG}g") if g.get("class") == "series"] == ["x"]
    assert len(lines(root)) == 1
    assert len([c for c in root.iter(f"{SVG}circle") if c.get("class") == "dot"]) == 1  # visible without a segment


def test_user_text_is_escaped_everywhere() -> None:
    evil = '<script>alert("x")</script>&'
    svg = line_chart([Series(evil, [Point(0, 1, note=evil), Point(1, 2)])], [evil, "b"], title=evil)
    assert "<script>" not in svg
    root = parse(svg)
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}title").text == evil  # type: ignore[union-attr]
    assert any(t.text == evil for t in root.iter(f"{SVG}text"))  # legend and x label keep the text, escaped


def test_empty_data_says_no_data_yet() -> None:
    for svg in (line_chart([], [], title="t"), line_chart([series("youtube", [])], ["a"], title="t"),
                line_chart([series("youtube", [1.0])], [], title="t")):
        root = parse(svg)
        assert "empty" in (root.get("class") or "")
        assert [t.text for t in root.iter(f"{SVG}text")] == ["no data yet"]
        assert not lines(root)
    assert "nothing here" in line_chart([], [], title="t", empty_text="nothing here")


def test_y_axis_starts_at_zero_and_covers_the_data() -> None:
    assert nice_ticks(87) == [0, 25, 50, 75, 100]
    assert nice_ticks(130) == [0, 50, 100, 150]
    assert nice_ticks(0) == [0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(4300)[-1] >= 4300
    assert [compact_number(v) for v in (3.0, 12.5, 1234, 2_500_000)] == ["3", "12.5", "1.2k", "2.5M"]
    assert color_for("youtube") == PLATFORM_COLORS["youtube"]
    assert color_for("unknown", 0) != color_for("unknown", 1)


def decision(window: str, minutes: int, before: dict[str, float], after: dict[str, float],
             outcome: DecisionOutcome) -> BudgetDecision:
    return BudgetDecision(campaign_id="c1", window=window,
                          decided_at=datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=minutes),
                          daily_budget=100, before=before, after=after, reason="r", outcome=outcome)  # type: ignore[arg-type]


def test_budget_chart_follows_what_was_in_force_and_rings_proposals_not_applied() -> None:
    decisions = [
        decision("launch:tiktok,youtube", 0, {}, {"youtube": 60, "tiktok": 40}, DecisionOutcome.APPLIED),
        decision("2026-12-01", 1, {"youtube": 60, "tiktok": 40}, {"youtube": 50, "tiktok": 50},
                 DecisionOutcome.DRY_RUN),
        decision("2026-12-02", 2, {"youtube": 60, "tiktok": 40}, {"youtube": 55, "tiktok": 45},
                 DecisionOutcome.APPLIED),
    ]
    chart, labels = budget_chart_data(decisions)
    assert labels == ["launch", "Dec 01", "Dec 02"]
    youtube = {s.name: s for s in chart}["youtube"]
    assert [p.y for p in youtube.points] == [60, 60, 55]  # the dry run changed nothing
    assert [p.mark for p in youtube.points] == ["dot", "none", "dot"]
    assert [(p.x, p.y, p.mark) for p in youtube.extra] == [(1, 50, "ring")]
    root = parse(line_chart(chart, labels, title="budget"))
    assert len(lines(root)) == 2
    assert len([c for c in root.iter(f"{SVG}circle") if c.get("class") == "ring"]) == 2
    assert budget_chart_data([]) == ([], [])


def test_engagement_chart_from_the_aggregated_table() -> None:
    ads = [{"campaign_id": "c1", "platform": p, "day": d, "spend": 10.0, "video_views": 100, "engagements": e}
           for p, e0 in (("youtube", 5), ("tiktok", 9)) for d, e in (("2026-12-01", e0), ("2026-12-02", e0 * 2))]
    posts = [{"campaign_id": "c1", "platform": "tiktok", "day": "2026-12-02", "views": 50, "likes": 3}]
    chart, labels = engagement_chart_data(aggregate(ads, posts))
    assert labels == ["Dec 01", "Dec 02"]
    by_name = {s.name: [(p.x, p.y) for p in s.points] for s in chart}
    assert list(by_name) == [Platform.YOUTUBE.value, Platform.TIKTOK.value]  # platform order, not alphabetical
    assert by_name["tiktok"] == [(0, 9.0), (1, 21.0)]  # paid 18 + organic 3
    assert engagement_chart_data(aggregate([], [])) == ([], [])
    assert short_label("not-a-date") == "not-a-date"
