"""Which of the platforms a campaign wants to launch on, and why the others are not chosen."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from models.platform import Platform

# A platform predicted to earn under 5 % of the best platform's engagement is not worth a share of the
# budget or a post: the floor each chosen platform gets in the split would mostly be wasted.
NEGLIGIBLE_FRACTION = 0.05


def recommend(
    wanted: Sequence[Platform],
    predicted: Mapping[Platform, float],
    unavailable: Mapping[Platform, str],
    *,
    negligible_fraction: float = NEGLIGIBLE_FRACTION,
) -> tuple[list[Platform], dict[Platform, str]]:
    """(chosen platforms, best predicted first; {skipped platform: reason}).

    Only wanted platforms are ever chosen. Unavailable ones are skipped with the caller's reason. Of the
    rest, one predicted to earn under `negligible_fraction` of the best is dropped, but at least one
    available platform is always kept. A platform without a prediction is kept: no evidence against it.
    When nothing is available the list is empty and every wanted platform has a reason.
    """
    unique = list(dict.fromkeys(wanted))
    skipped = {p: unavailable[p] or "unavailable" for p in unique if p in unavailable}
    available = [p for p in unique if p not in skipped]
    if not available:
        return [], skipped

    def expected(platform: Platform) -> float:
        return max(0.0, predicted.get(platform, 0.0))

    # Stable sort: ties keep the campaign's own order; unpredicted platforms go last.
    ranked = sorted(available, key=lambda p: (p not in predicted, -expected(p)))
    best = ranked[0]
    threshold = negligible_fraction * expected(best)
    chosen = [best]
    for platform in ranked[1:]:
        if platform in predicted and expected(platform) < threshold:
            skipped[platform] = (f"predicted engagement {expected(platform):.0f}/day is under "
                                 f"{negligible_fraction:.0%} of {best.value}'s {expected(best):.0f}/day")
        else:
            chosen.append(platform)
    return chosen, skipped
