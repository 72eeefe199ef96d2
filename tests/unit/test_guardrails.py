"""Guardrails: every split they return is within the limits, whatever they are given."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intelligence.guardrails import Bounds, InfeasibleBounds, apply_guardrails, check, is_feasible, step_box

NAMES = ["youtube", "tiktok", "instagram", "x", "snap", "reddit"]
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fill(data: st.DataObject, lo: list[int], hi: list[int], total: int) -> list[int]:
    """A random vector of cents with lo <= x <= hi adding up to total (sum(lo) <= total <= sum(hi))."""
    x = list(lo)
    left = total - sum(lo)
    for i in range(len(x)):
        extra = data.draw(st.integers(0, min(hi[i] - lo[i], left)))
        x[i] += extra
        left -= extra
    for i in range(len(x)):  # whatever the random pass left over, in order
        extra = min(hi[i] - x[i], left)
        x[i] += extra
        left -= extra
    assert left == 0
    return x


@st.composite
def feasible_case(draw: st.DrawFn) -> tuple[dict[str, float], Bounds, st.DataObject]:
    """Bounds whose min/cap/sum are consistent, and a current split that meets them."""
    names = NAMES[: draw(st.integers(1, 6))]
    budget = draw(st.integers(100, 1_000_000))  # cents
    n = len(names)
    per_platform_min = draw(st.booleans())
    if per_platform_min:
        mins = [draw(st.integers(0, budget // n)) for _ in names]
        min_spend: float | dict[str, float] = {p: m / 100 for p, m in zip(names, mins, strict=True)}
    else:
        m = draw(st.integers(0, min(500, budget // n)))
        mins, min_spend = [m] * n, m / 100
    if draw(st.booleans()):
        caps = [draw(st.integers(lo, budget)) for lo in mins]
        caps[-1] += max(0, budget - sum(caps))  # lift the last cap just enough to hold the budget
        cap: dict[str, float] | None = {p: c / 100 for p, c in zip(names, caps, strict=True)}
    else:
        caps, cap = [budget] * n, None
    bounds = Bounds(daily_budget=budget / 100, min_spend=min_spend, cap=cap,
                    max_step_fraction=draw(st.floats(0.01, 1.0)),
                    step_floor=draw(st.one_of(st.none(), st.floats(0.01, 50.0))))
    data = draw(st.data())
    current = dict(zip(names, (c / 100 for c in _fill(data, mins, caps, budget)), strict=True))
    return current, bounds, data


proposals = st.dictionaries(st.sampled_from(NAMES), st.floats(0, 20_000, allow_nan=False), max_size=6)


@PROPERTY
@given(feasible_case(), proposals)
def test_any_proposal_from_a_feasible_start_gives_a_split_with_no_violations(case, proposed):
    current, bounds, _ = case
    assert is_feasible(current, bounds)
    proposed = {p: v for p, v in proposed.items() if p in current}  # a proposal about these platforms
    result = apply_guardrails(current, proposed, bounds)
    assert check(current, result.split, bounds) == []
    assert result.relaxed == []
    assert set(result.split) == set(current)
    assert round(sum(result.split.values()) * 100) == round(bounds.daily_budget * 100)


@PROPERTY
@given(feasible_case(), proposals)
def test_projection_is_idempotent(case, proposed):
    current, bounds, _ = case
    proposed = {p: v for p, v in proposed.items() if p in current}
    once = apply_guardrails(current, proposed, bounds).split
    twice = apply_guardrails(current, once, bounds)
    assert twice.split == once
    assert twice.notes == []


@PROPERTY
@given(feasible_case())
def test_a_feasible_proposal_comes_back_unchanged_to_the_cent(case):
    current, bounds, data = case
    allowed, scale = step_box(current, bounds)
    assert scale == 1.0
    names = list(allowed)
    lo = [round(allowed[p][0] * 100) for p in names]
    hi = [round(allowed[p][1] * 100) for p in names]
    proposal = dict(zip(names, (c / 100 for c in _fill(data, lo, hi, round(bounds.daily_budget * 100))), strict=True))
    assert check(current, proposal, bounds) == []
    assert apply_guardrails(current, proposal, bounds).split == proposal


@PROPERTY
@given(feasible_case(), st.dictionaries(st.sampled_from(NAMES), st.floats(0, 5_000, allow_nan=False), min_size=1),
       proposals)
def test_from_any_start_sum_min_and_cap_always_hold_and_the_result_says_what_gave_way(case, current, proposed):
    _, bounds, _ = case
    names = set(case[0])
    current = {p: v for p, v in current.items() if p in names} or dict(case[0])
    proposed = {p: v for p, v in proposed.items() if p in names}
    try:
        result = apply_guardrails(current, proposed, bounds)
    except InfeasibleBounds:  # these few platforms' caps cannot hold the budget: no split exists
        return
    problems = check(current, result.split, bounds)
    assert [p for p in problems if "step limit" not in p] == []  # sum, minimum and cap are never broken
    if problems:
        assert result.relaxed == ["step"]
    assert apply_guardrails(current, proposed, bounds).split == result.split  # deterministic


def test_step_limit_is_twenty_percent_of_current_by_default():
    current = {"youtube": 25.0, "tiktok": 25.0, "instagram": 25.0, "x": 25.0}
    result = apply_guardrails(current, {"tiktok": 100.0}, Bounds(daily_budget=100.0))
    assert result.split["tiktok"] == 30.0
    assert sum(result.split.values()) == pytest.approx(100.0, abs=1e-9)
    assert check(current, result.split, Bounds(daily_budget=100.0)) == []
    assert any("tiktok" in note and "step limit" in note for note in result.notes)


def test_a_platform_at_zero_can_still_grow_by_the_step_floor():
    bounds = Bounds(daily_budget=100.0, min_spend=0.0)
    current = {"youtube": 50.0, "tiktok": 50.0, "x": 0.0}
    result = apply_guardrails(current, {"x": 100.0}, bounds)
    assert result.split["x"] == pytest.approx(0.2 * 100 / 3, abs=0.01)  # fraction x budget / n
    assert check(current, result.split, bounds) == []


def test_a_new_platform_below_its_minimum_is_brought_up_and_reported():
    current = {"youtube": 50.0, "tiktok": 50.0}
    result = apply_guardrails(current, {"youtube": 50.0, "tiktok": 50.0, "x": 0.0}, Bounds(daily_budget=100.0))
    assert result.split["x"] >= 1.0
    assert result.relaxed == ["step"]
    assert any("x: current 0.00" in note for note in result.notes)


def test_a_doubled_budget_relaxes_only_the_step_limit_by_the_smallest_common_factor():
    current = {"youtube": 25.0, "tiktok": 25.0, "instagram": 25.0, "x": 25.0}
    bounds = Bounds(daily_budget=200.0)
    result = apply_guardrails(current, current, bounds)
    assert result.split == {"youtube": 50.0, "tiktok": 50.0, "instagram": 50.0, "x": 50.0}
    assert result.relaxed == ["step"]
    assert result.step_scale == pytest.approx(2.5, rel=1e-3)  # floor 0.2 x 200 / 4 = $10 -> $25 moves
    assert all("step limit" in p for p in check(current, result.split, bounds))


def test_a_cap_lowered_below_current_spend_moves_that_platform_and_spreads_the_rest():
    current = {"youtube": 25.0, "tiktok": 25.0, "instagram": 25.0, "x": 25.0}
    bounds = Bounds(daily_budget=100.0, cap={"x": 5.0})
    result = apply_guardrails(current, current, bounds)
    assert result.split["x"] == 5.0
    assert sum(result.split.values()) == pytest.approx(100.0, abs=1e-9)
    others = [v for p, v in result.split.items() if p != "x"]
    assert max(others) - min(others) == pytest.approx(0.01, abs=0.001)  # 95 split three ways, to the cent


def test_minimums_above_the_budget_are_a_configuration_error():
    with pytest.raises(InfeasibleBounds):
        apply_guardrails({"a": 5.0, "b": 5.0}, {"a": 5.0, "b": 5.0}, Bounds(daily_budget=10.0, min_spend=6.0))


def test_check_names_every_broken_limit():
    bounds = Bounds(daily_budget=100.0, min_spend=2.0, cap={"x": 10.0})
    current = {"youtube": 50.0, "x": 10.0, "tiktok": 40.0}
    problems = check(current, {"youtube": 80.0, "x": 11.0, "tiktok": 1.0}, bounds)
    assert any(p.startswith("sum") for p in problems)
    assert any("tiktok" in p and "minimum" in p for p in problems)
    assert any("x" in p and "cap" in p for p in problems)
    assert any("youtube" in p and "step limit" in p for p in problems)


def test_bounds_round_trip_through_a_dict():
    bounds = Bounds(daily_budget=120.0, min_spend={"x": 2.0}, cap={"tiktok": 60.0}, max_step_fraction=0.3)
    assert Bounds.from_dict(bounds.to_dict()) == bounds


def test_a_current_split_in_fractions_of_a_cent_still_gives_a_clean_split():
    current = {"a": 100 / 3, "b": 100 / 3, "c": 100 / 3}
    bounds = Bounds(daily_budget=100.0)
    result = apply_guardrails(current, {"a": 90.0, "b": 5.0, "c": 5.0}, bounds)
    assert check(current, result.split, bounds) == []
    assert all(abs(v * 100 - round(v * 100)) < 1e-6 for v in result.split.values())
    assert round(sum(result.split.values()), 2) == 100.0
