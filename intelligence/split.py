"""Small pure helpers on budget splits (dicts of platform -> amount)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def round_split(raw: Mapping[str, float], total: float) -> dict[str, float]:
    """Round to cents so the amounts add up to `total` exactly (the remainder goes to the largest)."""
    if not raw:
        return {}
    split = {k: round(max(v, 0.0), 2) for k, v in raw.items()}
    largest = max(split, key=lambda k: split[k])
    split[largest] = round(split[largest] + round(total, 2) - round(sum(split.values()), 2), 2)
    return split


def restrict_split(split: Mapping[str, float], keep: Iterable[str], total: float) -> dict[str, float]:
    """The split over `keep` only, scaled back up to `total` in the same proportions.

    Used when a platform could not publish: it gets no budget, and the others share its part.
    """
    kept = {k: split.get(k, 0.0) for k in keep}
    if not kept:
        return {}
    weight = sum(kept.values())
    if weight <= 0:
        return round_split({k: total / len(kept) for k in kept}, total)
    return round_split({k: v * total / weight for k, v in kept.items()}, total)
