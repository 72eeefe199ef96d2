"""Flow tests run under ONE Prefect test harness per session (it costs about 10 s to start)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from metacentric import runtime as runtime_module
from metacentric.media import make_demo_video
from metacentric.runtime import Runtime
from metacentric.settings import Settings
from models import Campaign, Creative, Platform
from sandbox.server import RunningSandbox


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
async def rt(prefect_harness: None, sandbox: RunningSandbox, tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = runtime_module.configure(Settings(var_dir=tmp_path, sandbox_url=sandbox.url))
    yield runtime
    await runtime.clients.aclose()
    runtime_module.reset()


async def new_campaign(rt: Runtime, tmp_path: Path, name: str, budget: float = 100.0,
                       platforms: list[Platform] | None = None) -> Campaign:
    """A campaign created on Meta (the sandbox) with its release registered in the store."""
    campaign_id = await rt.clients.meta.create_campaign(name, budget)
    artist, song = name.split(" - ", 1)
    campaign = Campaign(id=campaign_id, name=name, artist=artist, song=song, daily_budget=budget,
                        creative=Creative(video_path=str(make_demo_video(tmp_path / f"{campaign_id}.mp4",
                                                                         size=600_000, seed=name))),
                        platforms=platforms or list(Platform))
    rt.store.save_campaign(campaign)
    return campaign
