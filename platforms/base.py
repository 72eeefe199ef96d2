"""What every publishing client offers the tasks. The tasks never see an SDK or an HTTP call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from models import PlatformPlan, PostMetrics


class IntentLog(Protocol):
    """Durable record of a non-idempotent write in progress (the store implements it).

    A client saves what it needs to resume (session URI, publish id, container id, media id...) before
    and after each step, so a retry after any fault resumes instead of writing again.
    """

    def load(self, campaign_id: str, platform: str) -> dict[str, Any]: ...

    def save(self, campaign_id: str, platform: str, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class PublishedPost:
    post_id: str
    url: str | None = None


class PublishingClient(Protocol):
    platform: str

    async def publish(self, plan: PlatformPlan, video_path: str, intents: IntentLog) -> PublishedPost:
        """Publish once. Raises a platforms.errors class on failure; resumes from `intents` if any."""
        ...

    async def fetch_metrics(self, campaign_id: str, post_ids: Sequence[str], day: date) -> list[PostMetrics]: ...

    async def aclose(self) -> None: ...

