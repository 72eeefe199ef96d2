"""Budget guardrails: the limits every split must respect, and the closest split that respects them.

A split is feasible when it
  * adds up to the daily budget, to the cent;
  * gives every platform at least its minimum and at most its cap;
  * moves no platform by more than its step limit: `max_step_fraction` of its current budget, but never
    less than `step_floor` (default: max_step_fraction x daily_budget / number of platforms). Without the
    floor a platform at $0 (or $1) could never grow, and one at $1 could only grow by 20 cents a day.

All arithmetic is done in whole cents so that "sums to the budget" is exact, not approximately true.
The check tolerates half a cent on the per-platform limits because those limits (20% of $33.33...) are
not themselves whole cents.

When the limits cannot all hold (the daily budget changed, a cap was lowered below the current spend, a
platform was added), the sum, minimum and cap stay hard and only the step limit gives way, in two
deterministic stages: a platform whose current spend is outside its own [min, cap] is first moved inside
(and its step measured from there); if the budget still cannot be met, every platform's step limit is
scaled by the same smallest factor that makes a split possible. The result says what was relaxed. If
even sum/minimum/cap contradict each other (minimums add up to more than the budget) that is a
configuration error and `InfeasibleBounds` is raised: no split could be correct.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_TOLERANCE = 0.005 + 1e-6  # half a cent, plus float noise
_EPS = 1e-6


class InfeasibleBounds(ValueError):
    """The minimums, caps and daily budget contradict each other; no split can satisfy them."""


@dataclass(frozen=True)
class Bounds:
    daily_budget: float
    min_spend: float | Mapping[str, float] = 1.0  # a number applies to all; in a mapping a missing key = 0
    cap: float | Mapping[str, float] | None = None  # per platform; None (or a missing key) = daily budget
    max_step_fraction: float = 0.2
    step_floor: float | None = None  # smallest step limit in currency; None = fraction x budget / n

    def __post_init__(self) -> None:
        if not self.daily_budget > 0:
            raise ValueError(f"daily_budget must be > 0, got {self.daily_budget}")
        if not self.max_step_fraction > 0:
            raise ValueError(f"max_step_fraction must be > 0, got {self.max_step_fraction}")
        mins = self.min_spend.values() if isinstance(self.min_spend, Mapping) else [self.min_spend]
        if any(m < 0 for m in mins):
            raise ValueError("min_spend must be >= 0")
        if self.step_floor is not None and not self.step_floor > 0:
            raise ValueError("step_floor must be > 0")

    def min_for(self, platform: str) -> float:
        if isinstance(self.min_spend, Mapping):
            return float(self.min_spend.get(platform, 0.0))
        return float(self.min_spend)

    def cap_for(self, platform: str) -> float:
        if self.cap is None:
            return self.daily_budget
        if isinstance(self.cap, Mapping):
            return float(self.cap.get(platform, self.daily_budget))
        return float(self.cap)

    def step_limit(self, current: float, n_platforms: int) -> float:
        """How far (in currency) a platform now at `current` may move in one step."""
        floor = self.step_floor
        if floor is None:
            floor = self.max_step_fraction * self.daily_budget / max(1, n_platforms)
        return max(self.max_step_fraction * max(current, 0.0), floor)

    def to_dict(self) -> dict[str, Any]:
        def plain(v: float | Mapping[str, float] | None) -> Any:
            return dict(v) if isinstance(v, Mapping) else v

        return {"daily_budget": self.daily_budget, "min_spend": plain(self.min_spend), "cap": plain(self.cap),
                "max_step_fraction": self.max_step_fraction, "step_floor": self.step_floor}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bounds:
        return cls(**dict(data))


@dataclass
class GuardrailResult:
    """The feasible split, and what the guardrails had to do to get there (empty notes = nothing)."""

    split: dict[str, float]
    notes: list[str] = field(default_factory=list)  # what the guardrails changed, for the audit log
    relaxed: list[str] = field(default_factory=list)  # constraints that had to give way (only "step")
    step_scale: float = 1.0  # factor applied to every step limit (1.0 = not relaxed)


def platforms_of(current: Mapping[str, float], proposed: Mapping[str, float] | None = None) -> list[str]:
    """Every platform either split mentions, current's order first."""
    names = list(current)
    names += [p for p in (proposed or {}) if p not in current]
    return names


def _cents(x: float) -> int:
    return round(x * 100)


@dataclass(frozen=True)
class _Box:
    """Per-platform [lo, hi] in cents for one step, and the budget in cents."""

    names: list[str]
    lo: list[int]
    hi: list[int]
    budget: int

    def feasible(self) -> bool:
        return all(a <= b for a, b in zip(self.lo, self.hi, strict=True)) and \
            sum(self.lo) <= self.budget <= sum(self.hi)

    def contains(self, x: list[int]) -> bool:
        return sum(x) == self.budget and all(a <= v <= b for a, v, b in zip(self.lo, x, self.hi, strict=True))


def _box(names: list[str], current: Mapping[str, float], bounds: Bounds, step_scale: float) -> _Box:
    n = len(names)
    lo, hi = [], []
    for p in names:
        # A current spend outside the platform's own [min, cap] is first brought inside (a forced move):
        # steps are measured from there, so a lowered cap does not widen every other platform's step.
        cur = min(max(float(current.get(p, 0.0)), bounds.min_for(p)), bounds.cap_for(p))
        step = math.floor(bounds.step_limit(cur, n) * step_scale * 100 + _EPS)
        lo.append(max(math.ceil(bounds.min_for(p) * 100 - _EPS), _cents(cur) - step))
        hi.append(min(math.floor(bounds.cap_for(p) * 100 + _EPS), _cents(cur) + step))
    return _Box(names, lo, hi, _cents(bounds.daily_budget))


def _hard_box(names: list[str], bounds: Bounds) -> _Box:
    """The box with no step limit: sum, minimum and cap only."""
    lo = [math.ceil(bounds.min_for(p) * 100 - _EPS) for p in names]
    hi = [math.floor(bounds.cap_for(p) * 100 + _EPS) for p in names]
    return _Box(names, lo, hi, _cents(bounds.daily_budget))


def step_box(current: Mapping[str, float], bounds: Bounds,
             names: list[str] | None = None) -> tuple[dict[str, tuple[float, float]], float]:
    """Each platform's allowed [low, high] for this step, and the step scale used (> 1 if relaxed)."""
    names = names or platforms_of(current)
    hard = _hard_box(names, bounds)
    if not hard.feasible():
        raise InfeasibleBounds(
            f"minimums add up to {sum(hard.lo) / 100:.2f} and caps to {sum(hard.hi) / 100:.2f}; "
            f"the daily budget {bounds.daily_budget:.2f} must lie between them (and each min <= its cap)")
    box = _box(names, current, bounds, 1.0)
    scale = 1.0
    if not box.feasible():
        # Feasibility only grows with the scale; at `top` every step reaches across the whole box.
        top = 2.0 + (max([bounds.daily_budget, *current.values()]) * 2 / bounds.step_limit(0.0, len(names)))
        low = 1.0
        for _ in range(60):
            mid = (low + top) / 2
            low, top = (low, mid) if _box(names, current, bounds, mid).feasible() else (mid, top)
        scale, box = top, _box(names, current, bounds, top)
    return {p: (a / 100, b / 100) for p, a, b in zip(names, box.lo, box.hi, strict=True)}, scale


def _project(box: _Box, target: list[float]) -> list[int]:
    """The split in cents nearest (Euclidean) to target inside the box: clip(target - t) for the right t."""
    def total(t: float) -> float:
        return sum(min(max(v - t, a), b) for v, a, b in zip(target, box.lo, box.hi, strict=True))

    low = min(v - b for v, b in zip(target, box.hi, strict=True)) - 1
    high = max(v - a for v, a in zip(target, box.lo, strict=True)) + 1
    for _ in range(200):  # total() falls as t rises; bisect to well below a cent
        mid = (low + high) / 2
        low, high = (mid, high) if total(mid) > box.budget else (low, mid)
    x = [min(max(v - high, a), b) for v, a, b in zip(target, box.lo, box.hi, strict=True)]
    cents = [min(max(math.floor(v + _EPS), a), b) for v, a, b in zip(x, box.lo, box.hi, strict=True)]
    # Hand out (or take back) the last few cents by largest (smallest) remainder; ties go by name.
    order = sorted(range(len(x)), key=lambda i: (-(x[i] - cents[i]), box.names[i]))
    left = box.budget - sum(cents)
    while left != 0:
        moved = False
        for i in order if left > 0 else reversed(order):
            if left > 0 and cents[i] < box.hi[i]:
                cents[i], left, moved = cents[i] + 1, left - 1, True
            elif left < 0 and cents[i] > box.lo[i]:
                cents[i], left, moved = cents[i] - 1, left + 1, True
            if left == 0:
                break
        if not moved:  # cannot happen for a feasible box; guard against an endless loop
            raise AssertionError("projection lost feasibility")
    return cents


def apply_guardrails(current: Mapping[str, float], proposed: Mapping[str, float],
                     bounds: Bounds) -> GuardrailResult:
    """The feasible split closest to `proposed`, given today's `current` split and the bounds."""
    names = platforms_of(current, proposed)
    ranges, scale = step_box(current, bounds, names)
    box = _box(names, current, bounds, scale)
    wanted = [_cents(float(proposed.get(p, 0.0))) for p in names]
    target = [float(proposed.get(p, 0.0)) * 100 for p in names]
    cents = wanted if box.contains(wanted) else _project(box, target)
    split = {p: c / 100 for p, c in zip(names, cents, strict=True)}
    result = GuardrailResult(split=split, step_scale=scale)
    if scale > 1.0:
        result.relaxed.append("step")
        result.notes.append(
            f"step limit relaxed x{scale:.2f} (to {bounds.max_step_fraction * scale:.0%} of current): "
            f"the daily budget, minimums and caps could not be met otherwise")
    for p in names:
        cur = float(current.get(p, 0.0))
        if not bounds.min_for(p) - _TOLERANCE <= cur <= bounds.cap_for(p) + _TOLERANCE:
            result.relaxed.append("step")
            result.notes.append(f"{p}: current {cur:.2f} is outside its limits "
                                f"[{bounds.min_for(p):.2f}, {bounds.cap_for(p):.2f}]; moved inside first")
    result.relaxed = sorted(set(result.relaxed))
    for p, c, w in zip(names, cents, wanted, strict=True):
        if c == w:
            continue
        why = _why(c / 100, ranges[p], bounds.min_for(p), bounds.cap_for(p))
        result.notes.append(f"{p}: {c / 100:.2f} instead of {w / 100:.2f} ({why})")
    return result


def _why(value: float, allowed: tuple[float, float], minimum: float, cap: float) -> str:
    low, high = allowed
    if value >= high:
        return "at its cap" if value >= cap - 0.005 else "at the step limit"
    if value <= low:
        return "at its minimum" if value <= minimum + 0.005 else "at the step limit"
    return "rescaled so the split adds up to the budget"


def is_feasible(current: Mapping[str, float], bounds: Bounds) -> bool:
    """True when some split meets every limit (sum, min, cap and step) without relaxing anything."""
    names = platforms_of(current)
    inside = all(bounds.min_for(p) - _TOLERANCE <= float(current[p]) <= bounds.cap_for(p) + _TOLERANCE
                 for p in names)
    return inside and _hard_box(names, bounds).feasible() and _box(names, current, bounds, 1.0).feasible()


def check(current: Mapping[str, float], split: Mapping[str, float], bounds: Bounds) -> list[str]:
    """Every limit `split` breaks, in words; an empty list means the split is within the guardrails."""
    names = platforms_of(current, split)
    problems = []
    total = sum(split.values())
    if abs(total - bounds.daily_budget) > _TOLERANCE:
        problems.append(f"sum: {total:.2f}, daily budget is {bounds.daily_budget:.2f}")
    for p in names:
        cur, new = float(current.get(p, 0.0)), float(split.get(p, 0.0))
        if new < bounds.min_for(p) - _TOLERANCE:
            problems.append(f"{p}: {new:.2f} is below its minimum {bounds.min_for(p):.2f}")
        if new > bounds.cap_for(p) + _TOLERANCE:
            problems.append(f"{p}: {new:.2f} is above its cap {bounds.cap_for(p):.2f}")
        limit = bounds.step_limit(cur, len(names))
        if abs(new - cur) > limit + _TOLERANCE:
            problems.append(f"{p}: moved {new - cur:+.2f} from {cur:.2f}, step limit is {limit:.2f}")
    return problems
