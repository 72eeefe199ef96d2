"""Fault injection, switchable per platform and per endpoint (settings at start, admin endpoint at run time).

A platform router asks `faults.pick(platform, endpoint)` at the top of each handler and renders what it
gets in its own error envelope. Endpoint names are the router's own short names (e.g. "campaigns.create",
"upload.chunk"); "*" matches all.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from typing import Literal

from pydantic import BaseModel, Field

FaultKind = Literal[
    "latency",  # add `latency_ms` and carry on
    "transient",  # the platform's 5xx / transient error
    "rate_limit",  # the platform's throttling answer, with its headers
    "quota",  # the platform's daily/rolling quota answer
    "token_expired",  # the platform's expired-token answer
    "drop_connection",  # close the connection without a complete response (nothing committed)
    "ambiguous",  # commit the write, then drop the connection (the response is lost)
    "stuck",  # an async job never finishes
    "failed",  # an async job ends in failure
]


class FaultRule(BaseModel):
    platform: str = Field(description="meta, youtube, tiktok, instagram, x, or *")
    endpoint: str = Field(default="*", description="glob over the router's endpoint names")
    kind: FaultKind
    rate: float = Field(default=1.0, ge=0, le=1, description="probability per matching request")
    count: int | None = Field(default=None, ge=1, description="fire at most this many times; None = forever")
    latency_ms: int = Field(default=0, ge=0)
    fired: int = 0


class Faults:
    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self._rules: list[FaultRule] = list(rules or [])
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def set(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        self.set([])

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [r.model_copy() for r in self._rules]

    def _matches(self, rule: FaultRule, platform: str, endpoint: str) -> bool:
        return fnmatch.fnmatchcase(platform, rule.platform) and fnmatch.fnmatchcase(endpoint, rule.endpoint)

    def latency_s(self, platform: str, endpoint: str) -> float:
        with self._lock:
            return sum(r.latency_ms for r in self._rules
                       if r.kind == "latency" and self._matches(r, platform, endpoint)) / 1000.0

    def pick(self, platform: str, endpoint: str, kinds: tuple[str, ...] | None = None) -> FaultRule | None:
        """The fault to inject into this request, if any (latency rules are not returned here)."""
        with self._lock:
            for rule in self._rules:
                if rule.kind == "latency" or not self._matches(rule, platform, endpoint):
                    continue
                if kinds is not None and rule.kind not in kinds:
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if self._rng.random() < rule.rate:
                    rule.fired += 1
                    return rule.model_copy()
            return None
