"""Shared fixtures: one sandbox server per session (real loopback HTTP), a fresh store per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Keep Prefect quiet and local whatever the developer's profile says.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from metacentric.settings import Settings
from metacentric.store import Store
from sandbox.app import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread
from sandbox.state import SandboxState

# Many tests publish through the one session sandbox on the same simulated day; TikTok's default cap of
# 15 posts a day per creator would make them depend on their order. Tests of the cap use a sandbox of their own.
SESSION_LIMITS = {"tiktok": {"daily_post_cap": 10_000}}


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[RunningSandbox]:
    with start_in_thread(SandboxState(seed=7), config=SandboxConfig(limits=SESSION_LIMITS)) as running:
        yield running


@pytest.fixture
def sandbox(sandbox_server: RunningSandbox) -> Iterator[RunningSandbox]:
    """The session's sandbox with no faults switched on; faults a test adds are cleared after it."""
    sandbox_server.state.faults.clear()
    yield sandbox_server
    sandbox_server.state.faults.clear()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def settings(sandbox: RunningSandbox, tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path).for_sandbox(sandbox.url)
