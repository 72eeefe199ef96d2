"""Budget allocation that learns each platform's response to spend and explores by Thompson sampling.

Model, per platform: engagement(spend) = peak * hill(spend; half, shape) with multiplicative log-normal
noise, the saturating curve Meta's Robyn uses. Taking logs makes log(peak) a Gaussian mean, so at every
point of a fixed grid over (half, shape) the posterior of (log peak, noise variance) is Normal-Inverse-
Gamma in closed form, and so is the point's evidence: no fitting loop, a few array operations.

Adapting to drift, two ways:
  * forgetting: an observation k days older than the newest counts discount**k times (gradual drift);
  * change points: the posterior also averages over "the platform's level shifted on day c" for every
    past day c, weighted by the evidence. After an abrupt collapse the shifted hypothesis wins within a
    day or two, while the old days still teach the curve's shape; on a stable market it stays unused.

Decision: draw curves from the posterior (Thompson sampling: a platform is tried in proportion to its
chance of being best). `draws` > 1 averages several draws, which shrinks the exploration noise (like
tempering the posterior) without switching exploration off. The split maximising the drawn total among
those today's guardrails allow is found by an exact dynamic programme over small increments (S-shaped
curves included), then snapped to cents by `apply_guardrails`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaln

from intelligence.guardrails import Bounds, apply_guardrails, platforms_of, step_box

Array = NDArray[np.float64]

# The grid over curve shapes, as Robyn bounds its Hill hyperparameters: the exponent in [0.5, 3] and the
# half-saturation spend within the range a platform can be given (here 5%-100% of the daily budget).
# A wider range lets the prior claim that a platform only starts paying off beyond the whole budget, and
# Thompson sampling then wastes days testing that claim.
_HALF_FRACTIONS = np.geomspace(0.05, 1.0, 25)
_SHAPES = np.linspace(0.5, 3.0, 11)
_GRID_HALF_FRACTION, _GRID_SHAPE = (g.ravel() for g in np.meshgrid(_HALF_FRACTIONS, _SHAPES, indexing="ij"))
# Prior on the log-peak mean (weak: worth half an observation) and on the noise variance (mean 0.09,
# i.e. about 30% day-to-day noise, worth a few observations).
_KAPPA0, _A0, _B0 = 0.5, 2.0, 0.09
# A level shift (a platform's audience tiring, a competitor arriving) is a priori rare, and sizeable when it
# happens: prior sd of the shift ~ 1.6 noise sd, i.e. about a halving or doubling.
_CHANGE_RATE, _KAPPA_SHIFT, _MIN_DAYS_BEFORE_CHANGE = 0.02, 0.4, 3
_UNITS = 400  # the budget is split in 1/400ths when optimising (25 cents on $100)


@dataclass(frozen=True)
class Observation:
    platform: str
    day: int
    spend: float
    engagement: float


@dataclass
class AllocatorState:
    """Everything the allocator knows: recent observations per platform (the posterior is rebuilt)."""

    observations: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)  # (day, spend, eng)
    discount: float = 0.95  # weight of an observation one day older than the newest; 1.0 = never forget
    draws: int = 12  # posterior draws averaged into the curve optimised; 1 = classic Thompson sampling
    detect_changes: bool = True  # also weigh "the level shifted on day c" for every past day c
    max_days: int = 60  # days kept

    def to_dict(self) -> dict[str, Any]:
        return {"observations": {p: [list(o) for o in obs] for p, obs in self.observations.items()},
                "discount": self.discount, "draws": self.draws, "detect_changes": self.detect_changes,
                "max_days": self.max_days}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AllocatorState:
        obs = {p: [(int(d), float(s), float(e)) for d, s, e in rows]
               for p, rows in dict(data.get("observations", {})).items()}
        defaults = cls()
        return cls(observations=obs, discount=float(data.get("discount", defaults.discount)),
                   draws=int(data.get("draws", defaults.draws)),
                   detect_changes=bool(data.get("detect_changes", defaults.detect_changes)),
                   max_days=int(data.get("max_days", defaults.max_days)))

    @property
    def newest_day(self) -> int | None:
        days = [d for obs in self.observations.values() for d, _, _ in obs]
        return max(days) if days else None


@dataclass
class Proposal:
    split: dict[str, float]
    reason: str
    expected: dict[str, float]  # posterior-mean engagements/day per platform at the new split
    marginal: dict[str, float] = field(default_factory=dict)  # engagements per extra $ at the current split
    guardrail_notes: list[str] = field(default_factory=list)


def uniform_split(platforms: Sequence[str], budget: float) -> dict[str, float]:
    """Equal shares, in cents, adding up to the budget exactly (leftover cents go to the first platforms)."""
    total = round(budget * 100)
    base, extra = divmod(total, len(platforms))
    return {p: (base + (1 if i < extra else 0)) / 100 for i, p in enumerate(platforms)}


def update(state: AllocatorState, observations: Iterable[Observation]) -> AllocatorState:
    """A new state with these observations; a (platform, day) seen again replaces the old figure."""
    merged = {p: {d: (d, s, e) for d, s, e in obs} for p, obs in state.observations.items()}
    for o in observations:
        if o.spend < 0 or o.engagement < 0 or not (math.isfinite(o.spend) and math.isfinite(o.engagement)):
            continue  # a corrupt row must not poison the posterior
        merged.setdefault(o.platform, {})[o.day] = (o.day, float(o.spend), float(o.engagement))
    days = [d for obs in merged.values() for d in obs]
    oldest = (max(days) - state.max_days) if days else 0
    kept = {p: [obs[d] for d in sorted(obs) if d > oldest] for p, obs in merged.items()}
    return dataclasses.replace(state, observations=kept)


def _hill(spend: Array | float, half: Array, shape: Array) -> Array:
    s = np.maximum(np.asarray(spend, dtype=float), 1e-9)
    return np.asarray(1.0 / (1.0 + (half / s) ** shape))


@dataclass(frozen=True)
class _Posterior:
    """Normal-Inverse-Gamma posterior of (today's log peak, noise variance) at every grid point.

    A grid point is a (half, shape) pair under one hypothesis about when the platform last changed.
    """

    half: Array
    shape: Array
    log_weight: Array
    mu: Array  # posterior mean of today's log peak
    kappa: Array  # its precision, in units of the noise precision
    a: Array
    b: Array

    @property
    def weights(self) -> Array:
        w = np.exp(self.log_weight - self.log_weight.max())
        return np.asarray(w / w.sum())

    def curve_mean(self, spend: Array) -> Array:
        """Posterior-mean engagements at each spend (averaged over the grid and the noise)."""
        var = self.b / (self.a - 1.0)
        level = np.exp(self.mu + 0.5 * var * (1.0 + 1.0 / self.kappa))
        hills = _hill(spend[:, None], self.half[None, :], self.shape[None, :])
        return np.asarray(hills @ (self.weights * level))

    def sample(self, rng: np.random.Generator, n: int) -> tuple[Array, Array, Array]:
        """(peak, half, shape) of `n` curves drawn from the posterior (peak includes the noise mean)."""
        g = rng.choice(len(self.mu), size=n, p=self.weights)
        var = self.b[g] / rng.gamma(self.a[g])
        mu = rng.normal(self.mu[g], np.sqrt(var / self.kappa[g]))
        return np.exp(mu + var / 2), self.half[g], self.shape[g]


def _regression(resid: Array, weight: Array, design: Array,
                mu0: Array) -> tuple[Array, Array, float, float, Array]:
    """Conjugate Bayesian regression of every grid point's residuals on `design` (shared by all points).

    Column 0 is the level (prior N(mu0, var/KAPPA0)); any further column is a level shift from a change
    day on (prior N(0, var/KAPPA_SHIFT)); var ~ InvGamma(A0, B0). Returns the evidence of each grid point
    and the posterior of today's level (every column switched on): mean, precision factor, a, b.
    """
    d = design.shape[1]
    prior_prec = np.diag([_KAPPA0] + [_KAPPA_SHIFT] * (d - 1))
    beta0 = np.zeros((len(mu0), d))
    beta0[:, 0] = mu0
    xtw = design.T * weight
    prec = prior_prec + xtw @ design
    cov = np.linalg.inv(prec)
    beta = (beta0 @ prior_prec + resid @ xtw.T) @ cov
    n = float(weight.sum())
    a = _A0 + n / 2
    quad = (resid**2) @ weight + np.einsum("gi,ij,gj->g", beta0, prior_prec, beta0) \
        - np.einsum("gi,ij,gj->g", beta, prec, beta)
    b = np.maximum(_B0 + quad / 2, _B0)  # the form is >= 0 in exact arithmetic
    evidence = gammaln(a) - gammaln(_A0) + _A0 * math.log(_B0) - a * np.log(b) - n / 2 * math.log(2 * math.pi) \
        + 0.5 * (np.linalg.slogdet(prior_prec)[1] - np.linalg.slogdet(prec)[1])
    today = np.ones(d)
    return evidence, beta @ today, 1.0 / float(today @ cov @ today), a, b


def _platform_posterior(rows: list[tuple[int, float, float]], newest: int, state: AllocatorState,
                        mu0: Array, half: Array, shape: Array) -> _Posterior:
    """Averaged over "nothing changed" and "the level changed on day c" for every plausible c."""
    usable = [(d, s, e) for d, s, e in rows if s > 0.01]  # no spend says nothing about the curve
    day, spend, eng = (np.array(c, dtype=float).reshape(-1) for c in zip(*usable, strict=True)) if usable \
        else (np.zeros(0), np.zeros(0), np.zeros(0))
    weight = state.discount ** (newest - day)
    # +0.5: a day with zero engagements is still evidence, not log(0)
    resid = np.log(eng + 0.5)[None, :] - np.log(_hill(spend[None, :], half[:, None], shape[:, None]))
    ones = np.ones((len(day), 1))
    models = [(0.0, ones)]
    if state.detect_changes:
        prior_odds = math.log(_CHANGE_RATE / (1 - _CHANGE_RATE))
        models += [(prior_odds, np.hstack([ones, (day >= c)[:, None].astype(float)]))
                   for c in sorted(set(day))[_MIN_DAYS_BEFORE_CHANGE:]]
    parts = []
    for log_prior, design in models:
        evidence, level, precision, a_n, b_n = _regression(resid, weight, design, mu0)
        parts.append((log_prior + evidence, level, np.full_like(level, precision), np.full_like(level, a_n), b_n))
    log_weight, mu, kappa, a, b = (np.concatenate(c) for c in zip(*parts, strict=True))
    keep = log_weight > log_weight.max() - 16  # points weighing < 1e-7 of the best change nothing
    reps = len(models)
    return _Posterior(np.tile(half, reps)[keep], np.tile(shape, reps)[keep], log_weight[keep], mu[keep],
                      kappa[keep], a[keep], b[keep])


def _posteriors(state: AllocatorState, platforms: Sequence[str], budget: float) -> dict[str, _Posterior]:
    """Each platform's posterior over its response curve, on a grid scaled to the daily budget."""
    half, shape = _GRID_HALF_FRACTION * budget, _GRID_SHAPE
    newest = state.newest_day or 0
    # Platforms are alike a priori: the prior log-peak is the pooled mean of everyone's residuals, so a
    # platform with no data yet is assumed to be as good as the average one (not as good as zero).
    pooled, total = np.zeros(len(half)), 0.0
    for p in platforms:
        for d, s, e in state.observations.get(p, []):
            if s > 0.01:
                w = state.discount ** (newest - d)
                pooled += w * (math.log(e + 0.5) - np.log(_hill(s, half, shape)))
                total += w
    mu0 = pooled / total if total > 0 else pooled
    return {p: _platform_posterior(state.observations.get(p, []), newest, state, mu0, half, shape)
            for p in platforms}


def best_split(curves: Mapping[str, Callable[[Array], Array]], bounds: Bounds,
               platforms: Sequence[str]) -> dict[str, float]:
    """The split maximising the total of `curves` (spend array -> engagement array) under sum/min/cap.

    Exact over a grid of 1/400ths of the budget (a max-plus dynamic programme), so curves that are
    convex at first (S-shaped Hill curves) are handled where greedy marginal allocation would stall.
    """
    unit = bounds.daily_budget / _UNITS
    lows = [bounds.min_for(p) for p in platforms]
    spare = _UNITS - math.ceil(sum(lows) / unit - 1e-9)
    value = np.zeros(1)  # best total for each number of spare units handed out so far
    choices = []
    for p, low in zip(platforms, lows, strict=True):
        room = min(spare, int((bounds.cap_for(p) - low) / unit + 1e-9))
        gain = np.asarray(curves[p](low + unit * np.arange(room + 1, dtype=np.float64)), dtype=np.float64)
        size = min(spare, len(value) - 1 + room) + 1
        table = np.full((size, room + 1), -np.inf)  # table[t, k]: total if this platform takes k of t
        for k in range(room + 1):
            table[k:k + len(value), k] = (value + gain[k])[: max(0, size - k)]
        choices.append(np.argmax(table, axis=1))
        value = table.max(axis=1)
    units, split = len(value) - 1, {}
    for p, low, pick in zip(reversed(platforms), reversed(lows), reversed(choices), strict=True):
        k = int(pick[units])
        split[p], units = low + k * unit, units - k
    return {p: split[p] for p in platforms}


def propose(state: AllocatorState, current: Mapping[str, float], bounds: Bounds, rng_seed: int) -> Proposal:
    """Tomorrow's split: the best split for a posterior draw, among those today's guardrails allow."""
    platforms = platforms_of(current)
    rng = np.random.default_rng(rng_seed)
    post = _posteriors(state, platforms, bounds.daily_budget)
    drawn = {p: post[p].sample(rng, state.draws) for p in platforms}
    curves = {p: (lambda s, c=c: (c[0] * _hill(np.asarray(s)[:, None], c[1], c[2])).mean(axis=1))
              for p, c in drawn.items()}
    # Optimise inside today's step box rather than chasing the draw's global optimum: the draw changes
    # every day, and a far target would drag the split around on the strength of one random draw.
    allowed, _ = step_box(current, bounds, platforms)
    today = Bounds(bounds.daily_budget, min_spend={p: lo for p, (lo, _) in allowed.items()},
                   cap={p: hi for p, (_, hi) in allowed.items()})
    result = apply_guardrails(current, best_split(curves, today, platforms), bounds)
    split = result.split
    expected = {p: float(post[p].curve_mean(np.array([split[p]]))[0]) for p in platforms}
    marginal = {p: _marginal(post[p], float(current.get(p, 0.0)), bounds.daily_budget) for p in platforms}
    return Proposal(split=split, reason=_reason(current, split, marginal, bounds.daily_budget),
                    expected=expected, marginal=marginal, guardrail_notes=result.notes)


def _marginal(post: _Posterior, spend: float, budget: float) -> float:
    """Engagements per extra unit of currency at `spend` (posterior mean, over a 1%-of-budget step)."""
    step = budget / 100
    low, high = post.curve_mean(np.array([max(spend - step / 2, 0.0), spend + step / 2]))
    return float((high - low) / step)


def _reason(current: Mapping[str, float], split: Mapping[str, float], marginal: Mapping[str, float],
            budget: float) -> str:
    """One sentence for the audit log: what moved where, and the marginal returns that justified it."""
    delta = {p: split[p] - float(current.get(p, 0.0)) for p in split}
    moved = sum(d for d in delta.values() if d > 0)
    if moved < 0.005:
        best = max(marginal, key=lambda p: marginal[p])
        return (f"kept the split: {best} returns {marginal[best]:.1f} engagements per $ at the margin, "
                "and no move was worth making within the guardrails")
    gainer = max(delta, key=lambda p: delta[p])
    loser = min(delta, key=lambda p: delta[p])
    return (f"moved {moved / budget:.0%} of the budget (${moved:.2f}), mostly from {loser} to {gainer}: "
            f"{gainer} returns {marginal[gainer]:.1f} engagements per $ at the margin vs "
            f"{marginal[loser]:.1f} for {loser}")
