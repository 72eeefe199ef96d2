"""The sandbox: one ASGI app, one router per platform at the platform's real paths.

Each platform is served under a prefix that stands in for its host (see metacentric.settings.SANDBOX_PREFIX):
/graph (graph.facebook.com), /rupload (rupload.facebook.com), /youtube (www.googleapis.com),
/youtubeanalytics, /google/token, /tiktok (open.tiktokapis.com), /x (api.x.com). /_admin holds the
switches (faults, clock, market) that no real platform has; product code never calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from pydantic import BaseModel, Field

from metacentric.settings import SANDBOX_APP_SECRET, SANDBOX_PREFIX, SANDBOX_TOKEN
from sandbox import graph, instagram, meta, tiktok, x, youtube
from sandbox.faults import FaultRule
from sandbox.market import PLATFORMS
from sandbox.state import SandboxState


@dataclass
class SandboxConfig:
    app_secret: str = SANDBOX_APP_SECRET
    token: str = SANDBOX_TOKEN
    # Per-platform limits; the defaults follow reference/platform_apis.md.
    limits: dict[str, Any] = field(default_factory=dict)


class ClockAdvance(BaseModel):
    seconds: float = Field(default=0, ge=0)
    days: float = Field(default=0, ge=0)


class MarketConfig(BaseModel):
    seed: int | None = None
    noise_sigma: float | None = Field(default=None, ge=0)
    drift_day: int | None = None
    drift_factor: float | None = Field(default=None, gt=0)


def admin_router(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/_admin", tags=["sandbox admin"])

    @router.get("/faults")
    async def list_faults() -> list[FaultRule]:
        return state.faults.rules()

    @router.post("/faults")
    async def add_fault(rule: FaultRule) -> list[FaultRule]:
        state.faults.add(rule)
        state.save()
        return state.faults.rules()

    @router.put("/faults")
    async def set_faults(rules: list[FaultRule]) -> list[FaultRule]:
        state.faults.set(rules)
        state.save()
        return state.faults.rules()

    @router.delete("/faults")
    async def clear_faults() -> list[FaultRule]:
        state.faults.clear()
        state.save()
        return []

    @router.get("/clock")
    async def clock() -> dict[str, Any]:
        return {"now": state.clock.now().isoformat(), "offset_s": state.clock.offset_s}

    @router.post("/clock/advance")
    async def advance(body: ClockAdvance) -> dict[str, Any]:
        now = state.clock.advance(body.seconds + body.days * 86400)
        state.save()
        return {"now": now.isoformat(), "offset_s": state.clock.offset_s}

    @router.put("/market")
    async def configure_market(body: MarketConfig) -> dict[str, Any]:
        m = state.market
        m.seed = m.seed if body.seed is None else body.seed
        m.noise_sigma = m.noise_sigma if body.noise_sigma is None else body.noise_sigma
        m.drift_day = body.drift_day
        m.drift_factor = m.drift_factor if body.drift_factor is None else body.drift_factor
        state.save()
        return m.to_dict()

    @router.get("/market/truth/{campaign_key}")
    async def truth(campaign_key: str, day: int = 0) -> dict[str, Any]:
        if campaign_key not in state.market.campaigns:
            raise HTTPException(404, f"campaign {campaign_key} is not in the market")
        return {"campaign": campaign_key, "day": day, "curves": state.market.truth(campaign_key, day),
                "platforms": list(PLATFORMS)}

    @router.get("/posts")
    async def posts() -> list[dict[str, Any]]:
        """Every post that exists on any platform (for end-to-end checks: nothing missing, nothing twice)."""
        return [*youtube.published(state), *tiktok.published(state), *instagram.published(state),
                *x.published(state)]

    return router


def create_app(state: SandboxState | None = None, config: SandboxConfig | None = None) -> FastAPI:
    state = state or SandboxState()
    config = config or SandboxConfig()
    app = FastAPI(title="Metacentric sandbox", description=__doc__)
    app.state.sandbox = state
    graph_router = graph.build_router(
        state, [meta.handler(state, config), instagram.handler(state, config)],
        app_secret=config.app_secret, valid_tokens={config.token})
    app.include_router(graph_router, prefix=SANDBOX_PREFIX["graph"])
    meta.mount(app, state, config)
    instagram.mount(app, state, config)
    youtube.mount(app, state, config)
    tiktok.mount(app, state, config)
    x.mount(app, state, config)
    app.include_router(admin_router(state))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "now": state.clock.now().isoformat()}

    return app
