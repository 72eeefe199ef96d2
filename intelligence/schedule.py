"""When to post: the best upcoming hour of the week in the audience's time zone, per platform.

An hour-of-week profile is 168 relative engagement values (Monday 00:00 local = index 0). Learned
profiles come from past posts (`learn_hour_of_week`); without any, a prior with the evening peaks the
platforms' own creator guides describe is used.

Two constraints, both per platform (they protect one account, not the launch as a whole; a release
going out on every platform at the same moment is the point of a launch):
- `min_spacing` between any two posts on the same platform (this call's and `already_scheduled`);
- `daily_quota`: at most that many posts on the platform per UTC calendar day.
A platform with no slot that meets them within the horizon is left out of the result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from intelligence.features import local_time
from models.analysis import ScheduledPost
from models.platform import ALL_PLATFORMS, Platform

HOURS_PER_WEEK = 168
DEFAULT_HORIZON = timedelta(days=7)
DEFAULT_SPACING = timedelta(minutes=30)
# A release's buzz fades: an hour's value halves for every 2 days of waiting, so tonight's peak beats
# Saturday's slightly higher one, but a 9 am slot does not beat tonight's peak.
DEFAULT_HALF_LIFE = timedelta(days=2)

# (local hour of the peak, width in hours, weight) per platform, and how much weekends lift it.
_PEAKS: dict[Platform, tuple[tuple[float, float, float], ...]] = {
    Platform.YOUTUBE: ((18.0, 2.5, 1.0), (13.0, 2.0, 0.4)),
    Platform.TIKTOK: ((20.5, 2.0, 1.0), (12.5, 1.5, 0.5)),
    Platform.INSTAGRAM: ((19.5, 2.0, 1.0), (12.0, 1.5, 0.7)),
    Platform.X: ((12.5, 1.5, 0.9), (17.5, 1.5, 0.8), (9.0, 1.5, 0.6)),
}
_WEEKEND_LIFT = {Platform.YOUTUBE: 1.15, Platform.TIKTOK: 1.1, Platform.INSTAGRAM: 1.05, Platform.X: 0.85}


def default_hour_of_week(platform: Platform) -> list[float]:
    """The prior: a low base plus the platform's daily peaks, lifted (or lowered) on weekends; mean 1."""
    values = []
    for index in range(HOURS_PER_WEEK):
        day, hour = divmod(index, 24)
        level = 0.15 + sum(weight * math.exp(-0.5 * (_circular(hour + 0.5 - centre) / width) ** 2)
                           for centre, width, weight in _PEAKS[platform])
        values.append(level * (_WEEKEND_LIFT[platform] if day >= 5 else 1.0))
    return _normalised(values)


def _circular(hours: float) -> float:
    return (hours + 12) % 24 - 12


def _normalised(values: Sequence[float]) -> list[float]:
    mean = sum(values) / len(values)
    return [v / mean for v in values] if mean > 0 else [1.0] * len(values)


def hour_of_week_index(moment: datetime, timezone: str) -> int:
    local = local_time(moment, timezone)
    return local.weekday() * 24 + local.hour


def learn_hour_of_week(
    observations: Iterable[tuple[Platform, datetime, float]],
    timezone: str = "UTC",
    *,
    prior_weight: float = 2.0,
) -> dict[Platform, list[float]]:
    """Profiles from (platform, posted at, engagement) observations, for every platform.

    Each hour is the mean relative engagement of its posts, shrunk towards the prior as if the prior
    were `prior_weight` extra posts, so a single lucky post does not own an hour; then smoothed over
    neighbouring hours. Platforms without observations get the prior.
    """
    sums: dict[Platform, list[float]] = {}
    counts: dict[Platform, list[int]] = {}
    for platform, posted_at, engagement in observations:
        if not math.isfinite(engagement) or engagement < 0:
            continue
        index = hour_of_week_index(posted_at, timezone)
        sums.setdefault(platform, [0.0] * HOURS_PER_WEEK)[index] += engagement
        counts.setdefault(platform, [0] * HOURS_PER_WEEK)[index] += 1
    profiles: dict[Platform, list[float]] = {}
    for platform in ALL_PLATFORMS:
        prior = default_hour_of_week(platform)
        total, n = sum(sums.get(platform, [])), sum(counts.get(platform, []))
        if n == 0 or total <= 0:
            profiles[platform] = prior
            continue
        mean = total / n
        shrunk = [(s / mean + prior_weight * p) / (c + prior_weight)
                  for s, c, p in zip(sums[platform], counts[platform], prior, strict=True)]
        smooth = [0.25 * shrunk[i - 1] + 0.5 * shrunk[i] + 0.25 * shrunk[(i + 1) % HOURS_PER_WEEK]
                  for i in range(HOURS_PER_WEEK)]
        profiles[platform] = _normalised(smooth)
    return profiles


def schedule(
    platforms: Sequence[Platform],
    now: datetime,
    timezone: str,
    hour_of_week: Mapping[Platform, Sequence[float]] | None = None,
    *,
    min_spacing: timedelta = DEFAULT_SPACING,
    daily_quota: Mapping[Platform, int] | None = None,
    already_scheduled: Sequence[ScheduledPost] = (),
    horizon: timedelta = DEFAULT_HORIZON,
    half_life: timedelta | None = DEFAULT_HALF_LIFE,
    immediate: bool = False,
) -> list[ScheduledPost]:
    """One post time per platform (in the order given): the best-scoring moment in [now, now + horizon).

    A moment scores its hour's profile value, halved for every `half_life` of waiting (None: no
    discount). Candidates are `now`, every local hour boundary after it, and the first moment
    `min_spacing` after each existing post; ties go to the earliest. `immediate=True` returns `now`
    for every platform.
    """
    if now.tzinfo is None:
        raise ValueError("now: give a time zone-aware datetime")
    unique = list(dict.fromkeys(platforms))
    if immediate:
        return [_post(p, now, now) for p in unique]
    boundaries = _hour_boundaries(now, timezone, horizon)
    taken = list(already_scheduled)
    result = []
    for platform in unique:
        profile = list(hour_of_week.get(platform) or []) if hour_of_week else []
        if not profile:
            profile = default_hour_of_week(platform)
        if len(profile) != HOURS_PER_WEEK:
            raise ValueError(f"hour_of_week[{platform.value}]: {len(profile)} values, need {HOURS_PER_WEEK}")
        mine = [s.at for s in taken if s.platform is platform]
        quota = (daily_quota or {}).get(platform)
        candidates = sorted({now, *boundaries, *(t + min_spacing for t in mine if now <= t + min_spacing)})
        best: datetime | None = None
        best_value = -math.inf
        for moment in candidates:
            if moment >= now + horizon or not _fits(moment, mine, min_spacing, quota):
                continue
            value = profile[hour_of_week_index(moment, timezone)]
            if half_life:
                value *= 0.5 ** ((moment - now) / half_life)
            if value > best_value:
                best, best_value = moment, value
        if best is not None:
            post = _post(platform, best, now)
            taken.append(post)
            result.append(post)
    return result


def _hour_boundaries(now: datetime, timezone: str, horizon: timedelta) -> list[datetime]:
    """Every local hour boundary in (now, now + horizon), as UTC datetimes (arithmetic in UTC: DST-safe)."""
    local = local_time(now, timezone)
    start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC) + timedelta(hours=1)
    return [start + timedelta(hours=h) for h in range(int(horizon / timedelta(hours=1)) + 1)]


def _fits(moment: datetime, existing: Sequence[datetime], spacing: timedelta, quota: int | None) -> bool:
    if any(abs(moment - t) < spacing for t in existing):
        return False
    if quota is None:
        return True
    day = moment.astimezone(UTC).date()
    return sum(t.astimezone(UTC).date() == day for t in existing) < quota


def _post(platform: Platform, at: datetime, now: datetime) -> ScheduledPost:
    # Validated against the caller's clock (which may be simulated), not the wall clock.
    return ScheduledPost.model_validate({"platform": platform, "at": at.astimezone(UTC)},
                                        context={"now": now})
