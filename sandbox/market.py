"""The simulated market: hidden ground truth for how posts and ad spend turn into views and engagement.

Every (campaign, platform) has a saturating response curve to daily spend (a Hill curve, as in Meta's
Robyn): engagement(spend) = peak * spend^shape / (spend^shape + half^shape). Its parameters depend on the
campaign's features (what the virality model can learn) plus a hidden per-campaign effect (what it
cannot). Observations add multiplicative log-normal noise. All randomness is a pure function of
(seed, key, platform, day), so re-reading a day gives the same numbers and a restart changes nothing.

Product code never reads `truth()`; benchmarks use it to compute the oracle allocation.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PLATFORMS = ("youtube", "tiktok", "instagram", "x")
GENRES = ("pop", "hiphop", "rock", "electronic", "latin", "country", "indie", "rnb")

# How each platform responds to music in general (engagements per day at saturation, per genre lean).
_PLATFORM_PEAK = {"youtube": 900.0, "tiktok": 1500.0, "instagram": 1100.0, "x": 450.0}
# Spend giving half the ceiling, and the Hill exponent, are drawn per (campaign, platform) from these
# ranges. Calibrated so that on a $100/day campaign split evenly over 4 platforms the uniform split earns
# about 78% of the best split's engagement (the figure the allocation references assume): with halves of
# $8-48 (the first version) $25 a platform was near saturation everywhere and uniform earned ~88%.
HALF_RANGE = (15.0, 70.0)
SHAPE_RANGE = (1.0, 2.2)
HIDDEN_EFFECT_SIGMA = 0.35  # spread of what no campaign feature explains (log scale)
_GENRE_LEAN = {
    "tiktok": {"hiphop": 1.35, "electronic": 1.2, "pop": 1.15, "latin": 1.25, "country": 0.7, "rock": 0.75},
    "youtube": {"rock": 1.3, "indie": 1.2, "country": 1.2, "pop": 1.0, "electronic": 0.9},
    "instagram": {"pop": 1.25, "rnb": 1.3, "latin": 1.15, "rock": 0.85},
    "x": {"indie": 1.3, "rock": 1.2, "hiphop": 1.1, "pop": 0.9},
}


@dataclass(frozen=True)
class Curve:
    peak: float  # engagements/day at saturation
    half: float  # spend (currency/day) giving half of peak
    shape: float  # Hill exponent

    def expected(self, spend: float) -> float:
        if spend <= 0:
            return 0.0
        s = float(spend**self.shape)
        return self.peak * s / (s + float(self.half**self.shape))


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _normal(*parts: object) -> float:
    """A deterministic standard normal draw (Box-Muller over two hashed uniforms)."""
    u1 = max(_unit("n1", *parts), 1e-12)
    u2 = _unit("n2", *parts)
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


class Market:
    def __init__(self, seed: int = 0, noise_sigma: float = 0.25, drift_day: int | None = None,
                 drift_factor: float = 0.4) -> None:
        self.seed = seed
        self.noise_sigma = noise_sigma
        self.drift_day = drift_day
        self.drift_factor = drift_factor
        self.campaigns: dict[str, dict[str, Any]] = {}  # campaign key -> features

    # persistence -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "noise_sigma": self.noise_sigma, "drift_day": self.drift_day,
                "drift_factor": self.drift_factor, "campaigns": self.campaigns}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Market:
        m = cls(seed=data.get("seed", 0), noise_sigma=data.get("noise_sigma", 0.25),
                drift_day=data.get("drift_day"), drift_factor=data.get("drift_factor", 0.4))
        m.campaigns = dict(data.get("campaigns", {}))
        return m

    def register(self, campaign_key: str, features: dict[str, Any]) -> None:
        self.campaigns[campaign_key] = dict(features)

    # ground truth ----------------------------------------------------------------------------------
    def curve(self, campaign_key: str, platform: str, day: int = 0) -> Curve:
        f = self.campaigns.get(campaign_key, {})
        genre = str(f.get("genre", "pop"))
        followers = float(f.get(f"followers_{platform}", f.get("followers", 10_000)))
        audience = float(f.get("audience_size", 1_000_000))
        lean = _GENRE_LEAN.get(platform, {}).get(genre, 1.0)
        # Bigger following and audience raise the ceiling, with diminishing returns.
        reach = (1 + math.log10(1 + followers) / 6) * (0.8 + 0.4 * min(1.0, math.log10(1 + audience) / 7))
        hidden = math.exp(HIDDEN_EFFECT_SIGMA * _normal(self.seed, "effect", campaign_key, platform))
        peak = _PLATFORM_PEAK[platform] * lean * reach * hidden
        half = HALF_RANGE[0] + (HALF_RANGE[1] - HALF_RANGE[0]) * _unit(self.seed, "half", campaign_key, platform)
        shape = SHAPE_RANGE[0] + (SHAPE_RANGE[1] - SHAPE_RANGE[0]) * _unit(self.seed, "shape", campaign_key, platform)
        if self.drift_day is not None and day >= self.drift_day and platform == self.best_platform(campaign_key):
            peak *= self.drift_factor
        return Curve(peak=peak, half=half, shape=shape)

    def best_platform(self, campaign_key: str) -> str:
        """The platform earning most at $50/day before any drift (the one that collapses under drift)."""
        saved, self.drift_day = self.drift_day, None
        try:
            return max(PLATFORMS, key=lambda p: self.curve(campaign_key, p).expected(50.0))
        finally:
            self.drift_day = saved

    def truth(self, campaign_key: str, day: int = 0) -> dict[str, dict[str, float]]:
        return {p: asdict(self.curve(campaign_key, p, day)) for p in PLATFORMS}

    def expected_engagement(self, campaign_key: str, platform: str, day: int, spend: float) -> float:
        return self.curve(campaign_key, platform, day).expected(spend)

    # observations ----------------------------------------------------------------------------------
    def ad_outcome(self, campaign_key: str, platform: str, day: int, spend: float) -> dict[str, float]:
        """One day of paid delivery: spend, impressions, video views and engagements (noisy)."""
        mean = self.expected_engagement(campaign_key, platform, day, spend)
        noise = math.exp(self.noise_sigma * _normal(self.seed, "obs", campaign_key, platform, day)
                         - self.noise_sigma**2 / 2)
        engagements = mean * noise
        views = engagements * (6 + 4 * _unit(self.seed, "vr", campaign_key, platform))
        impressions = views * 3 + spend * 40
        return {"spend": round(spend, 2), "impressions": int(impressions), "video_views": int(views),
                "engagements": round(engagements)}

    def organic_post(self, platform: str, post_key: str, age_days: float) -> dict[str, int]:
        """Cumulative organic counters of a post `age_days` after it went out."""
        if age_days <= 0:
            return {"views": 0, "likes": 0, "comments": 0, "shares": 0, "saves": 0}
        quality = math.exp(0.6 * _normal(self.seed, "post", platform, post_key))
        daily = _PLATFORM_PEAK[platform] * 4 * quality
        # Most views come in the first days: 1 - exp(-age/2) of the post's lifetime total.
        views = daily * 6 * (1 - math.exp(-age_days / 2))
        rate = 0.04 + 0.06 * _unit(self.seed, "er", platform, post_key)
        likes = views * rate
        return {"views": int(views), "likes": int(likes), "comments": int(likes * 0.08),
                "shares": int(likes * 0.12), "saves": int(likes * 0.05)}

    def sample_campaign_features(self, rng: np.random.Generator) -> dict[str, Any]:
        """A plausible random campaign (for cold-start training and benchmarks)."""
        return {
            "genre": str(rng.choice(GENRES)),
            "daily_budget": float(rng.choice([20, 50, 100, 200, 500])),
            "audience_size": int(10 ** rng.uniform(4.5, 7.5)),
            **{f"followers_{p}": int(10 ** rng.uniform(2, 6.5)) for p in PLATFORMS},
        }
