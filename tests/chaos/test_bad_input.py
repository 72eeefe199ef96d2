"""Bad input at the receiver: no 5xx, and nothing unauthenticated or malformed starts a run or writes a launch.

Two sources: a fuzzed body corpus (tests/chaos/corpus.py + fuzz_corpus/) sent unsigned, badly signed and
correctly signed to every body-taking endpoint; and schemathesis against the receiver's OpenAPI schema
(skipped when schemathesis is not installed: `pip install -e '.[chaos]'`).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from metacentric.tables import LaunchRow
from tests.chaos.corpus import VALID_CREATED, Case, corpus, generated
from tests.chaos.world import World, keep_figures, running_world, sign

BODY_ENDPOINTS = ("/webhooks/meta", "/webhook/campaign-created")
ORCHESTRATION = "/campaigns/create-with-orchestration"


def nothing_launched(world: World) -> list[str]:
    problems = []
    with world.rt.store.session() as s:
        launches = s.scalar(select(func.count()).select_from(LaunchRow))
    if launches:
        problems.append(f"{launches} rows in the launches table")
    launch_deliveries = [d for d in world.rt.store.deliveries() if d["kind"] == "launch"]
    if launch_deliveries:
        problems.append(f"deliveries accepted as launches: {[d['campaign_id'] for d in launch_deliveries][:5]}")
    return problems


async def flow_run_count(world: World) -> int:
    return len(await world.flow_runs())


async def send_corpus(world: World, cases: list[Case]) -> tuple[Counter[str], list[str]]:
    """Every case to every endpoint, three ways; returns status counts and every 5xx/unexpected answer."""
    secret = world.webhook_secret
    token = world.rt.settings.api_token.get_secret_value()
    seen: Counter[str] = Counter()
    bad: list[str] = []
    slots = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=world.receiver_url, timeout=60) as http:
        async def post(label: str, path: str, body: bytes, headers: dict[str, Any], allowed: set[int]) -> None:
            async with slots:
                r = await http.post(path, content=body, headers={"content-type": "application/json", **headers})
            seen[f"{path} {label} {r.status_code}"] += 1
            if r.status_code >= 500 or r.status_code not in allowed:
                bad.append(f"{label} {path} -> {r.status_code}: {r.text[:200]}")

        jobs = []
        for case in cases:
            for path in BODY_ENDPOINTS:
                jobs += [
                    post(f"unsigned {case.name}", path, case.body, {}, {401, 413}),
                    post(f"wrong-secret {case.name}", path, case.body,
                         {"x-hub-signature-256": sign("not-the-secret", case.body)}, {401, 413}),
                    post(f"signed {case.name}", path, case.body,
                         {"x-hub-signature-256": sign(secret, case.body)}, {200, 400, 413, 422}),
                ]
            jobs += [
                post(f"no-token {case.name}", ORCHESTRATION, case.body, {}, {401, 413}),
                post(f"token {case.name}", ORCHESTRATION, case.body, {"authorization": f"Bearer {token}"},
                     {400, 413, 422}),
            ]
        # Headers no client library would send, and a valid body under a forged or malformed signature.
        for label, value in (("non-ascii", b"sha256=\xe9\xe9"), ("sha1", b"sha1=" + b"0" * 40),
                             ("empty", b""), ("prefix-only", b"sha256="), ("long", b"sha256=" + b"a" * 5000),
                             ("upper", sign(secret, VALID_CREATED).upper().encode())):
            jobs.append(post(f"signature-{label}", "/webhook/campaign-created", VALID_CREATED,
                             {"x-hub-signature-256": value}, {401, 431}))
        for label, value in (("non-ascii", b"Bearer \xe9\xe9"), ("no-scheme", token.encode()),
                             ("basic", b"Basic dXNlcjpwYXNz"), ("bearer-only", b"Bearer")):
            jobs.append(post(f"auth-{label}", ORCHESTRATION, VALID_CREATED, {"authorization": value}, {401}))
        await asyncio.gather(*jobs)

        # Meta's subscription handshake and the status page with odd input.
        for params in ({"hub.mode": "subscribe", "hub.verify_token": "é😀", "hub.challenge": "1"},
                       {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
                       {"hub.mode": "unsubscribe"}, {}):
            r = await http.get("/webhooks/meta", params=params)
            seen[f"handshake {r.status_code}"] += 1
            if r.status_code != 403:
                bad.append(f"handshake {params} -> {r.status_code}: {r.text[:200]}")
        for cid in ("0", "x" * 300, "%00", "%ED%A0%80", "é", "..%2F..%2Fetc", "1;select"):
            r = await http.get(f"/campaigns/{cid}")
            seen[f"status {r.status_code}"] += 1
            if r.status_code != 404:
                bad.append(f"GET /campaigns/{cid} -> {r.status_code}: {r.text[:200]}")
    return seen, bad


async def check_corpus(world: World, cases: list[Case]) -> Counter[str]:
    seen, bad = await send_corpus(world, cases)
    await asyncio.sleep(1.0)  # give the launcher a poll or two, in case something slipped through
    problems = bad + nothing_launched(world)
    runs = await flow_run_count(world)
    if runs:
        problems.append(f"{runs} flow runs started")
    assert not problems, "\n".join(problems[:60])
    return seen


async def test_fast_slice_bad_webhook_bodies(chaos_prefect: str, tmp_path: Path) -> None:
    """The fast slice: the generated corpus (not the files), unsigned, mis-signed and signed."""
    with running_world(tmp_path) as world:
        seen = await check_corpus(world, generated(seed=1))
    assert sum(seen.values()) > 1000


@pytest.mark.chaos
async def test_fuzzed_webhook_corpus(chaos_prefect: str, tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        cases = corpus(seed=1234) + generated(seed=99)[7:]
        seen = await check_corpus(world, cases)
    keep_figures("fuzzed_bodies", {"cases": len(cases), "answers": dict(sorted(
        Counter(k.rsplit(" ", 1)[-1] for k in seen.elements()).items()))})


@pytest.mark.chaos
@pytest.mark.skipif(importlib.util.find_spec("schemathesis") is None,
                    reason="schemathesis is not installed; install the chaos extra: pip install -e '.[chaos]'")
async def test_schemathesis_against_the_receiver_schema(chaos_prefect: str, tmp_path: Path) -> None:
    from tests.chaos.schema_fuzz import run_schemathesis

    with running_world(tmp_path) as world:
        report = await asyncio.to_thread(run_schemathesis, world)
        await asyncio.sleep(1.0)
        problems = report.failures + nothing_launched(world)
        if await flow_run_count(world):
            problems.append("flow runs started")
    keep_figures("schemathesis", report.summary())
    assert report.calls > 0
    assert not problems, "\n".join(problems[:40])
