"""The worker killed with SIGKILL in the middle of publishing, then the launch run again: no duplicate, no
post lost.

The launch runs in a child process (tests/chaos/worker.py) against this test's sandbox, store and Prefect
server. Fast slice: uploads on every platform are slowed down, the child is killed once all four uploads
are under way (their resume state is in the store), and the launch is re-run here. Chaos: several
campaigns at once with 20 % faults, killed at random moments, several rounds.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL

from sandbox.faults import FaultRule
from tests.chaos.world import World, fault_plan, keep_figures, running_world

ROOT = Path(__file__).resolve().parents[2]
UPLOAD_ENDPOINTS = {"youtube": "upload.chunk", "tiktok": "upload.chunk", "instagram": "rupload",
                    "x": "media.append"}
# What each client records in the intent log before its first byte goes out.
UPLOAD_STARTED = {"youtube": "session_uri", "tiktok": "publish_id", "instagram": "container_id", "x": "media"}


def start_worker(world: World, var_dir: Path, campaign_ids: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PREFECT_HOME": str(var_dir / "worker-prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.chaos.worker", str(var_dir), world.sandbox.url,
                             world.tag, *campaign_ids], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def kill(worker: subprocess.Popen[str]) -> str:
    worker.send_signal(signal.SIGKILL)
    out, _ = worker.communicate(timeout=30)
    assert worker.returncode == -signal.SIGKILL, (worker.returncode, out[-2000:])
    return out


def uploads_under_way(world: World, campaign_id: str) -> set[str]:
    rows = {p["platform"]: p for p in world.rt.store.posts(campaign_id)}
    return {name for name, key in UPLOAD_STARTED.items() if rows.get(name, {}).get("intent", {}).get(key)}


def wait_until(predicate: Any, timeout_s: float, what: str, worker: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker.poll() is not None:
            raise AssertionError(f"the worker exited early ({worker.returncode}) before {what}: "
                                 f"{worker.communicate()[0][-3000:]}")
        time.sleep(0.1)
    worker.kill()
    raise AssertionError(f"timed out waiting for {what}: {worker.communicate()[0][-3000:]}")


async def rerun_and_check(world: World, campaign_ids: list[str]) -> dict[str, Any]:
    """Run the launches again in this process until every platform is published, then check agreement."""
    left = world.reconcile(campaign_ids, max_passes=6)
    assert not left, "still unpublished after the re-runs:\n" + "\n".join(world.describe(left))
    agreement = await world.agreement(campaign_ids, via_webhook=False)
    assert not agreement.problems, "\n".join(agreement.problems[:40])
    assert agreement.posts_in_store == agreement.posts_on_platforms
    return {"posts": agreement.posts_on_platforms, "reruns": sum(world.reconciled.values())}


async def test_fast_slice_worker_killed_mid_upload(chaos_prefect: str, tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        [cid] = world.create_campaigns(1, prefix="Killed")
        world.set_faults([FaultRule(platform=p, endpoint=e, kind="latency", latency_ms=8000)
                          for p, e in UPLOAD_ENDPOINTS.items()])
        worker = start_worker(world, tmp_path, [cid])
        wait_until(lambda: uploads_under_way(world, cid) == set(UPLOAD_STARTED), 90,
                   "every platform's upload to start", worker)
        kill(worker)
        assert not world.sandbox_posts()  # killed before anything was published
        world.set_faults([])
        await rerun_and_check(world, [cid])


@pytest.mark.chaos
async def test_workers_killed_at_random_moments_under_faults(chaos_prefect: str, tmp_path: Path) -> None:
    rng = random.Random(2026)
    kills: list[float] = []
    with running_world(tmp_path) as world:
        ids = world.create_campaigns(24, prefix="Killed")
        world.set_faults(fault_plan(0.2))
        for round_ in range(4):
            batch = ids[round_ * 6:(round_ + 1) * 6]
            worker = start_worker(world, tmp_path, batch)
            wait_until(lambda w=worker: w.stdout is not None, 5, "the worker to start", worker)
            # From "still importing" to "some launches finished": anywhere is a fair moment to die.
            delay = rng.uniform(4.0, 14.0)
            time.sleep(delay)
            if worker.poll() is None:
                kill(worker)
                kills.append(round(delay, 1))
        world.set_faults(fault_plan(0.2))
        figures = await rerun_and_check(world, ids)
        world.set_faults([])
    keep_figures("worker_kills", {"kills_at_s": kills, **figures})
    assert kills
