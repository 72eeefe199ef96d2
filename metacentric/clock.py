"""What time it is for the platforms Metacentric talks to.

Live: the wall clock. Sandbox: the sandbox's simulated clock (the sandbox stands in for the world, and
its time can be advanced to play out days of a campaign in seconds). Only the clock is read from the
sandbox; its hidden market stays hidden.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from metacentric.settings import Settings

_cache: dict[str, tuple[float, float]] = {}  # sandbox url -> (read at, offset seconds)
_TTL_S = 0.5
_http = httpx.Client(timeout=5)  # one client: building one per call costs an SSL context each time


def platform_now(settings: Settings) -> datetime:
    now = datetime.now(UTC)
    if settings.mode != "sandbox" or not settings.sandbox_url:
        return now
    url = settings.sandbox_url
    cached = _cache.get(url)
    if cached is None or time.monotonic() - cached[0] > _TTL_S:
        offset = float(_http.get(f"{url}/_admin/clock").json()["offset_s"])
        cached = (time.monotonic(), offset)
        _cache[url] = cached
    return now + timedelta(seconds=cached[1])


def advance_sandbox_clock(sandbox_url: str, *, days: float = 0, seconds: float = 0) -> datetime:
    """Move the sandbox's clock forward (demo, benchmarks, tests) and forget the cached offset at once,
    so the very next `platform_now` already sees the new time."""
    response = _http.post(f"{sandbox_url}/_admin/clock/advance", json={"days": days, "seconds": seconds}, timeout=30)
    response.raise_for_status()
    _cache.pop(sandbox_url, None)
    return datetime.fromisoformat(response.json()["now"])
