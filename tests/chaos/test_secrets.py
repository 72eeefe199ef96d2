"""Secrets never leak: a run with distinctive fake credentials, then every place a secret could end up is
searched for them (raw, and base64 as in HTTP Basic auth): zero hits.

Searched: Python log records (every logger, formatted with tracebacks), Prefect's logs, artifacts, flow
and task run states (messages and results) read back through the API, every row of every store table,
the receiver's answers, the demo report, and every exception message the run produced. Faults are on
(20 %), including rejected tokens that force refreshes and two dead credentials, so the error paths run.

The one place configured credentials may be is where the product keeps them on purpose: the `tokens`
table's access_token / refresh_token fields (the client's copy, which rotates); the test says so
explicitly rather than skipping the table.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from sqlalchemy import select

from metacentric.demo_report import build_report
from metacentric.tables import Base, TokenRow
from models import Platform
from sandbox.app import SandboxConfig
from sandbox.faults import FaultRule
from tests.chaos.world import RAISED_LIMITS, World, deliveries_for, fault_plan, running_world, sign

CLIENT_ID = "sandbox-client"


def canaries() -> dict[str, str]:
    run = uuid.uuid4().hex[:12]
    names = ("access", "appsecret", "yt-refresh", "tt-refresh", "x-refresh", "api", "webhook", "verify")
    return {name: f"SECRET-CANARY-{run}-{name}" for name in names}


def needles(secrets: dict[str, str]) -> dict[str, bytes]:
    """What to look for: each secret as is, and base64 of the client_id:secret pairs Basic auth carries."""
    out = {name: value.encode() for name, value in secrets.items()}
    for name in ("appsecret",):
        pair = f"{CLIENT_ID}:{secrets[name]}".encode()
        out[f"{name} (basic auth)"] = base64.b64encode(pair)[:-4]
    out["canary prefix"] = secrets["access"].rsplit("-", 1)[0].encode()
    return out


def hits(haystacks: dict[str, Any], look_for: dict[str, bytes]) -> list[str]:
    found = []
    for where, text in haystacks.items():
        blob = text if isinstance(text, bytes) else str(text).encode("utf-8", "backslashreplace")
        for name, needle in look_for.items():
            if needle in blob:
                at = blob.index(needle)
                found.append(f"{name} in {where}: ...{blob[max(0, at - 80):at + 80]!r}...")
    return found


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))  # includes the formatted traceback, if any
        except Exception as exc:  # a record that cannot even be formatted: keep what we can
            self.lines.append(f"{record.name} unformattable {record.msg!r} {record.args!r} {exc!r}")


@contextmanager
def every_log_record(app_loggers: tuple[str, ...] = ("metacentric", "platforms", "tasks", "flows",
                                                     "deployments", "prefect")) -> Iterator[Collect]:
    """Every record any logger emits, with our own loggers (and Prefect's) turned up to DEBUG.

    httpx/httpcore/urllib3/googleapiclient keep the level the product sets for them (WARNING, because
    request URLs can carry tokens): that setting is part of what is under test.
    """
    handler = Collect()
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in ("", *app_loggers)}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in app_loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def secret_settings(s: dict[str, str]) -> dict[str, Any]:
    return {"meta_app_secret": s["appsecret"], "meta_access_token": s["access"],
            "meta_webhook_app_secret": s["webhook"], "meta_webhook_verify_token": s["verify"],
            "api_token": s["api"],
            "youtube_client_secret": s["appsecret"], "youtube_refresh_token": s["yt-refresh"],
            "tiktok_client_secret": s["appsecret"], "tiktok_access_token": s["access"],
            "tiktok_refresh_token": s["tt-refresh"],
            "instagram_access_token": s["access"],
            "x_client_secret": s["appsecret"], "x_access_token": s["access"], "x_refresh_token": s["x-refresh"]}


def store_dump(world: World) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every row of every table, as text; the tokens table's rows separately (see the module docstring)."""
    rows: dict[str, Any] = {}
    tokens: list[dict[str, Any]] = []
    with world.rt.store.session() as s:
        for table in Base.metadata.sorted_tables:
            for i, row in enumerate(s.execute(select(table)).mappings()):
                if table.name == TokenRow.__tablename__:
                    data = dict(row["data"])
                    tokens.append(data)
                    kept = {k: v for k, v in data.items() if k not in ("access_token", "refresh_token")}
                    rows[f"store {table.name} #{i}"] = {**{k: v for k, v in row.items() if k != "data"}, **kept}
                else:
                    rows[f"store {table.name} #{i}"] = dict(row)
    return rows, tokens


async def prefect_records(world: World) -> dict[str, Any]:
    """Logs, artifacts and run states of this world's flow runs (and their task runs), via the API."""
    out: dict[str, Any] = {}
    runs = await world.flow_runs()
    ids = [r.id for r in runs]
    async with get_client() as client:
        for run in runs:
            out[f"flow run {run.name}"] = run.model_dump_json()
            if run.state is not None and run.state.is_final():
                try:
                    out[f"flow run {run.name} result"] = repr(await run.state.aresult(raise_on_failure=False))
                except Exception as exc:  # a result that cannot be read back is not a leak
                    out[f"flow run {run.name} result"] = f"unreadable: {type(exc).__name__}"
        offset = 0
        while True:
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                                          limit=200, offset=offset)
            for log in logs:
                out[f"prefect log {log.id}"] = f"{log.name} {log.level} {log.message}"
            offset += len(logs)
            if len(logs) < 200:
                break
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)), limit=200)
        for a in artifacts:
            out[f"artifact {a.key or a.id}"] = a.model_dump_json()
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=200)
        for t in tasks:
            out[f"task run {t.name}"] = t.model_dump_json()
    out["(counts)"] = f"{len(runs)} runs, {offset} logs, {len(artifacts)} artifacts, {len(tasks)} task runs"
    return out


@pytest.mark.chaos
async def test_no_secret_in_logs_artifacts_store_reports_or_errors(chaos_prefect: str, tmp_path: Path) -> None:
    secrets = canaries()
    config = SandboxConfig(token=secrets["access"], app_secret=secrets["appsecret"], limits={
        **RAISED_LIMITS, "tiktok": {**RAISED_LIMITS["tiktok"], "seed_refresh_token": secrets["tt-refresh"]}})
    haystacks: dict[str, Any] = {}
    with every_log_record() as logs, running_world(tmp_path, settings=secret_settings(secrets),
                                                   sandbox_config=config) as world:
        ids = world.create_campaigns(3, prefix="Secret")
        # 20 % faults everywhere, plus one 429 per platform, plus: each platform rejects one access token (a
        # refresh follows: with the configured refresh token for YouTube and TikTok, refused for X,
        # impossible for Instagram, so those two fail for good with "re-auth needed").
        first_call = (("youtube", "videos.insert"), ("tiktok", "creator_info"), ("instagram", "media.create"),
                      ("x", "media.initialize"))
        world.set_faults([*(FaultRule(platform=p, endpoint=e, kind="token_expired", count=1) for p, e in first_call),
                          *(FaultRule(platform=p, endpoint=e, kind="rate_limit", count=1) for p, e in first_call),
                          *fault_plan(0.2, ("transient", "ambiguous", "drop_connection"))])
        async with httpx.AsyncClient(base_url=world.receiver_url, timeout=60) as http:
            r = await http.get("/webhooks/meta", params={"hub.mode": "subscribe", "hub.challenge": "42",
                                                        "hub.verify_token": secrets["verify"]})
            haystacks["handshake answer"] = r.text
            r = await http.get("/webhooks/meta", params={"hub.mode": "subscribe", "hub.challenge": "42",
                                                        "hub.verify_token": secrets["verify"] + "x"})
            haystacks["failed handshake answer"] = r.text
            for d in deliveries_for(ids, world.account, duplicate_fraction=0.5, rng=random.Random(3)):
                r = await http.post("/webhooks/meta", content=d.body, headers={
                    "x-hub-signature-256": sign(secrets["webhook"], d.body), "content-type": "application/json"})
                haystacks[f"webhook answer {d.campaign_id}"] = r.text
            r = await http.post("/webhooks/meta", content=b"{}", headers={"x-hub-signature-256": "sha256=00"})
            haystacks["refused webhook answer"] = r.text
            body = json.dumps({"name": "Secret Orchestrated - Canary", "daily_budget": 40,
                               "artist_name": "Secret Orchestrated", "song_name": "Canary",
                               "platforms": [p.value for p in Platform]})
            r = await http.post("/campaigns/create-with-orchestration", content=body,
                                headers={"authorization": f"Bearer {secrets['api']}"})
            assert r.status_code == 200, r.text
            haystacks["orchestration answer"] = r.text
            ids.append(r.json()["campaign"]["id"])
            r = await http.post("/campaigns/create-with-orchestration", content=body,
                                headers={"authorization": f"Bearer {secrets['api']}x"})
            haystacks["refused orchestration answer"] = r.text
        stuck = world.wait_for_launches(ids, timeout_s=300)
        assert not stuck
        errors = [p["error"] for cid in ids for p in world.rt.store.posts(cid) if p["error"]]
        world.reconcile(ids, max_passes=1)  # more paths (resumes, look-ups); the dead-credential faults are spent
        world.set_faults([])

        async with httpx.AsyncClient(base_url=world.receiver_url, timeout=60) as http:
            for cid in ids:
                for path in (f"/campaigns/{cid}", f"/campaigns/{cid}/dashboard"):
                    r = await http.get(path)
                    haystacks[f"GET {path} ({r.status_code})"] = r.text
        haystacks["demo report"] = json.dumps(build_report(world.rt.store, world.sandbox, ids, 0), default=str)
        errors += [p["error"] for cid in ids for p in world.rt.store.posts(cid) if p["error"]]
        haystacks["post errors"] = errors
        haystacks.update(await prefect_records(world))
        # Exceptions straight from the clients: a dead credential on every platform, and what it raises.
        world.set_faults([FaultRule(platform=p, kind="token_expired") for p in ("meta", "youtube", "tiktok",
                                                                                 "instagram", "x")])
        for name, publisher in world.rt.clients.publishers.items():
            plan = world.rt.store.latest_analysis(ids[0]).plan_for(name)  # type: ignore[union-attr]
            try:
                world.launcher.submit(publisher.publish(plan, str(world.video), _Forgetful())).result(60)
            except Exception as exc:
                haystacks[f"exception {name.value}"] = "".join(traceback.format_exception(exc)) + repr(exc)
        try:
            world.launcher.submit(world.rt.clients.meta.get_campaign(ids[0])).result(60)
        except Exception as exc:
            haystacks["exception meta"] = "".join(traceback.format_exception(exc)) + repr(exc)
        world.set_faults([])
        rows, tokens = store_dump(world)
        haystacks.update(rows)
    haystacks.update({f"log record {i}": line for i, line in enumerate(logs.lines)})

    look_for = needles(secrets)
    found = hits(haystacks, look_for)
    print(f"\nsearched {len(haystacks)} places ({haystacks.get('(counts)')}, {len(logs.lines)} log records, "
          f"{len(errors)} post errors, {sum(1 for k in haystacks if k.startswith('exception'))} exceptions): "
          f"{len(found)} hits")
    assert not found, "\n".join(found[:30])
    assert len(errors) >= 2 and any("re-auth needed" in e for e in errors)  # the dead credentials were hit
    assert sum(1 for k in haystacks if k.startswith("exception")) == 5
    # Where the product keeps credentials on purpose: only there, and only in the credential fields.
    kept = {k for t in tokens for k, v in t.items() if any(n in str(v).encode() for n in look_for.values())}
    assert kept <= {"access_token", "refresh_token"}


class _Forgetful:
    """An intent log that remembers nothing (each publish starts from scratch)."""

    def load(self, campaign_id: str, platform: str) -> dict[str, Any]:
        return {}

    def save(self, campaign_id: str, platform: str, state: dict[str, Any]) -> None:
        pass
