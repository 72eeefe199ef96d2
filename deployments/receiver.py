"""The webhook receiver (FastAPI): Meta's webhooks, the seed's endpoints, campaign status.

Every accepted delivery is written to the store before the 2xx is sent; the launcher hands it to
Prefect afterwards. Nothing unauthenticated or malformed reaches the store's launch table.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError
from pydantic_core import from_json

from deployments.dashboard import dashboard_router
from deployments.signatures import signature_valid
from metacentric.media import make_demo_video
from metacentric.settings import Settings
from metacentric.store import Delivery, Store
from models import Campaign, Creative, Targeting
from models.events import CampaignCreated, CreateWithOrchestration, MetaWebhook
from platforms.meta import MetaClient

MAX_BODY = 1024 * 1024  # 1 MB
ANALYSIS_WAIT_S = 10.0
# A Graph object id as Meta sends it (digits). The models turn any JSON value into a string ("True",
# "None", "{'a': 1}"), so ids are checked here before anything is claimed for them.
META_ID = re.compile(r"[1-9][0-9]{0,31}")


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise BodyTooLarge
        chunks.append(piece)
    return b"".join(chunks)


def delivery_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:40]


def same_secret(given: str, expected: str) -> bool:
    """Constant-time, and as bytes: compare_digest raises TypeError on non-ASCII str (a 500 for a forged value)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def parse_json(body: bytes) -> Any:
    """The body as JSON, or 400. Refuses what the stdlib parser would crash on or the store could not write
    back: nesting past 200 levels, lone surrogates, NaN/Infinity, numbers too long or too large to print."""
    try:
        data = from_json(body, allow_inf_nan=False)
        json.dumps(data, allow_nan=False)
    except ValueError as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from None
    return data


def bad_meta_id(field: str) -> HTTPException:
    return HTTPException(422, [{"field": field, "error": "must be a Meta object id (digits)"}])


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"field": ".".join(str(p) for p in e["loc"]) or "(body)", "error": e["msg"]} for e in exc.errors()]


class Handover(Protocol):
    """What the receiver needs of a launcher: `deployments.launcher.Launcher` in the same process, or
    `deployments.receiver_process.Doorbell` from another one."""

    def notify(self) -> None: ...

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any] | asyncio.Future[Any]: ...


class GroupCommit:
    """Writes deliveries to the store in batches: everything that arrived while the last batch was being
    committed goes in the next one, in one transaction, off the event loop.

    Under load one commit then answers many requests (20 at once cost about a tenth of 20 commits), and the
    loop keeps reading requests while SQLite or PostgreSQL writes. Each request still gets its 2xx only
    after its own delivery is committed; a failed commit fails every request of that batch (5xx, so Meta
    re-delivers), and nothing of it was written.
    """

    def __init__(self, store: Store, *, on_launch: Callable[[], None]) -> None:
        self._store = store
        self._on_launch = on_launch
        self._waiting: list[tuple[list[Delivery], asyncio.Future[list[str]]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def accept(self, deliveries: list[Delivery]) -> list[str]:
        """The outcome of each delivery ("launch", "duplicate" or "ignored"), once committed."""
        answer: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._waiting.append((deliveries, answer))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_while_waiting())
        return await asyncio.shield(answer)  # a client that hangs up does not cancel its batch

    async def _write_while_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                outcomes = await asyncio.to_thread(self._store.accept_deliveries,
                                                   [d for deliveries, _ in batch for d in deliveries])
            except Exception as exc:
                for _, answer in batch:
                    answer.set_exception(exc)
                continue
            if "launch" in outcomes:
                self._on_launch()
            start = 0
            for deliveries, answer in batch:
                answer.set_result(outcomes[start:start + len(deliveries)])
                start += len(deliveries)


def create_receiver(settings: Settings, store: Store, launcher: Handover, meta: MetaClient) -> FastAPI:
    app = FastAPI(title="Metacentric receiver",
                  description="Meta webhooks and the one-call launch; see /docs for the schema.")
    app_secret = settings.meta_webhook_app_secret.get_secret_value()

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse({"error": f"body larger than {MAX_BODY} bytes"}, status_code=413)

    async def signed_json(request: Request) -> tuple[bytes, Any]:
        body = await read_body(request)
        if not signature_valid(app_secret, body, request.headers.get("x-hub-signature-256")):
            raise HTTPException(401, "missing or invalid X-Hub-Signature-256")
        return body, parse_json(body)

    writer = GroupCommit(store, on_launch=launcher.notify)

    async def accept(delivery_id: str, campaign_id: str | None, payload: dict[str, Any]) -> str:
        return (await writer.accept([(delivery_id, campaign_id, payload)]))[0]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "mode": settings.mode}

    @app.get("/webhooks/meta", response_class=PlainTextResponse)
    async def meta_handshake(request: Request) -> str:
        q = request.query_params
        expected = settings.meta_webhook_verify_token.get_secret_value()
        token = q.get("hub.verify_token", "")
        if q.get("hub.mode") != "subscribe" or not expected or not same_secret(token, expected):
            raise HTTPException(403, "verification failed")
        return q.get("hub.challenge", "")

    @app.post("/webhooks/meta")
    async def meta_webhook(request: Request) -> dict[str, Any]:
        _, data = await signed_json(request)
        try:
            hook = MetaWebhook.model_validate(data)
        except ValidationError as exc:
            raise HTTPException(422, validation_detail(exc)) from None
        for i, entry in enumerate(hook.entry):  # all checked before any is accepted
            if not META_ID.fullmatch(entry.id):
                raise bad_meta_id(f"entry.{i}.id")
            if not 0 <= entry.time < 2**63:
                raise HTTPException(422, [{"field": f"entry.{i}.time", "error": "must be a unix time in seconds"}])
            for j, change in enumerate(entry.changes):
                campaign_id = change.campaign_to_launch()
                if campaign_id is not None and not META_ID.fullmatch(campaign_id):
                    raise bad_meta_id(f"entry.{i}.changes.{j}.value")
        changes = [(entry, change, change.campaign_to_launch()) for entry in hook.entry for change in entry.changes]
        outcomes = await writer.accept([
            (delivery_key(entry.id, entry.time, change.field, change.value), campaign_id,
             {"entry": entry.id, "time": entry.time, **change.model_dump()}) for entry, change, campaign_id in changes])
        return {"received": len(outcomes), "changes": [
            {"field": change.field, "campaign_id": campaign_id, "outcome": outcome}
            for (_, change, campaign_id), outcome in zip(changes, outcomes, strict=True)]}

    @app.post("/webhook/campaign-created")
    async def campaign_created(request: Request) -> dict[str, Any]:
        _, data = await signed_json(request)
        try:
            event = CampaignCreated.model_validate(data)
        except ValidationError as exc:
            raise HTTPException(422, validation_detail(exc)) from None
        if not META_ID.fullmatch(event.campaign_id):
            raise bad_meta_id("campaign_id")
        outcome = await accept(delivery_key("campaign-created", event.campaign_id), event.campaign_id,
                               event.model_dump())
        return {"campaign_id": event.campaign_id, "outcome": outcome}

    @app.post("/campaigns/create-with-orchestration")
    async def create_with_orchestration(request: Request) -> dict[str, Any]:
        auth = request.headers.get("authorization", "")
        token = settings.api_token.get_secret_value()
        if not token or not same_secret(auth, f"Bearer {token}"):
            raise HTTPException(401, "send Authorization: Bearer <METACENTRIC_API_TOKEN>")
        body = await read_body(request)
        try:
            req = CreateWithOrchestration.model_validate_json(body)
        except ValidationError as exc:
            raise HTTPException(422, validation_detail(exc)) from None
        creative = release_creative(req, settings)
        campaign_id = await asyncio.wrap_future(launcher.submit(
            meta.create_campaign(req.name, req.daily_budget, objective=req.objective)))
        try:
            campaign = Campaign(id=campaign_id, name=req.name, artist=req.artist_name, song=req.song_name,
                                daily_budget=req.daily_budget, objective=req.objective,
                                targeting=Targeting.model_validate(req.targeting or {}), creative=creative,
                                platforms=req.platforms)
        except ValidationError as exc:
            raise HTTPException(422, validation_detail(exc)) from None
        store.save_campaign(campaign, auto_optimize=req.auto_optimize)
        outcome = await accept(delivery_key("api", campaign_id), campaign_id, {"source": "create-with-orchestration"})
        analysis = None
        for _ in range(int(ANALYSIS_WAIT_S / 0.2)):
            found = store.latest_analysis(campaign_id)
            if found is not None:
                analysis = found.model_dump(mode="json", by_alias=True)
                break
            await asyncio.sleep(0.2)
        return {"campaign": {"id": campaign_id, "name": req.name, "daily_budget": req.daily_budget},
                "launch": {"status": "started" if outcome == "launch" else outcome},
                "analysis": analysis, "monitoring_url": f"/campaigns/{campaign_id}/dashboard"}

    @app.get("/campaigns/{campaign_id}")
    async def campaign_status(campaign_id: str) -> dict[str, Any]:
        return campaign_view(store, campaign_id)

    app.include_router(dashboard_router(store, settings))
    return app


def release_creative(req: CreateWithOrchestration, settings: Settings) -> Creative:
    """The video to publish: given in the request, the configured default, or (sandbox only) a stand-in."""
    data = dict(req.creative or {})
    if not data.get("video_path"):
        if settings.default_video_path:
            data["video_path"] = settings.default_video_path
        elif settings.mode == "sandbox":
            seed = f"{req.artist_name}|{req.song_name}"
            path = Path(settings.var_dir) / "videos" / f"{delivery_key(seed)}.mp4"
            data["video_path"] = str(path if path.exists() else make_demo_video(path, seed=seed))
        else:
            raise HTTPException(422, [{"field": "creative.video_path", "error": "give the release video's path"}])
    try:
        return Creative.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(422, validation_detail(exc)) from None


def campaign_view(store: Store, campaign_id: str) -> dict[str, Any]:
    state = store.campaign_state(campaign_id)
    launch = store.launch(campaign_id)
    if state is None and launch is None:
        raise HTTPException(404, f"campaign {campaign_id} is not known to Metacentric")
    analysis = store.latest_analysis(campaign_id)
    decisions = store.decisions(campaign_id)
    return {
        "campaign_id": campaign_id,
        "state": state or "QUEUED",
        "flow_run_ids": [launch["flow_run_id"]] if launch and launch["flow_run_id"] else [],
        "platforms": {p["platform"]: {"status": p["status"], "post_id": p["post_id"], "url": p["url"],
                                      "error": p["error"]} for p in store.posts(campaign_id)},
        "virality_score": analysis.virality_score if analysis else None,
        "budget": decisions[-1].model_dump(mode="json") if decisions else None,
        "dashboard_url": f"/campaigns/{campaign_id}/dashboard",
    }
