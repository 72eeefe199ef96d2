"""The one place that builds live clients from settings. Sandbox vs live is decided here, once.

In sandbox mode the settings have already been pointed at the sandbox (Settings.for_sandbox); the
clients themselves do not know the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import httpx

from metacentric.clock import platform_now
from metacentric.settings import Settings
from metacentric.store import Store
from models import Platform
from platforms.base import PublishingClient
from platforms.instagram import InstagramClient
from platforms.meta import MetaClient
from platforms.tiktok import TikTokClient
from platforms.x import XClient
from platforms.youtube import YouTubeClient


@dataclass
class Clients:
    meta: MetaClient
    publishers: dict[Platform, PublishingClient] = field(default_factory=dict)
    # For UNIFIED_ANALYTICS_ENDPOINT, the user's own collector (not a platform).
    analytics_http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10))

    async def aclose(self) -> None:
        for client in self.publishers.values():
            await client.aclose()
        await self.analytics_http.aclose()


def build_clients(settings: Settings, store: Store) -> Clients:
    settings.check_live()

    # The platforms' time: the sandbox's simulated clock in sandbox mode, the wall clock when live.
    def clock() -> float:
        return platform_now(settings).timestamp()

    def clock_dt() -> datetime:
        return platform_now(settings)

    publishers: dict[Platform, PublishingClient] = {
        Platform.YOUTUBE: YouTubeClient.from_settings(settings, store, clock=clock_dt),
        Platform.TIKTOK: TikTokClient.from_settings(settings, store, clock=clock),
        Platform.INSTAGRAM: InstagramClient.from_settings(settings, store),
        Platform.X: XClient.from_settings(settings, store, clock=clock),
    }
    return Clients(meta=MetaClient.from_settings(settings, store), publishers=publishers)
