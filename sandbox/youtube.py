"""YouTube Data API v3, YouTube Analytics v2 and Google's OAuth token endpoint, at their real paths.

Mounted under SANDBOX_PREFIX["youtube"] (www.googleapis.com: /upload/youtube/v3/videos and
/youtube/v3/videos), SANDBOX_PREFIX["youtube_analytics"] (/v2/reports) and SANDBOX_PREFIX["google_token"].
The pieces live in youtube_upload (resumable videos.insert), youtube_videos (the video resource),
youtube_analytics, youtube_oauth, youtube_quota and youtube_common (envelope, tokens, faults).

Fault endpoint names: "token", "videos.insert" (upload initiation), "upload.chunk" (every chunk),
"upload.final" (the last chunk), "upload.chunk.<n>" (the n-th chunk request of a session),
"upload.status" (the `bytes */N` query), "videos.list", "reports.query", and "videos.processing"
("stuck" / "failed" decide the fate of the next completed upload).

Admin (no real API has these): GET/PUT /_admin/youtube/limits, DELETE /_admin/youtube/usage,
POST /_admin/youtube/revoke {"refresh_token": ...}.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.requests import Request

from metacentric.settings import SANDBOX_APP_SECRET, SANDBOX_PREFIX, SANDBOX_TOKEN
from sandbox import youtube_upload
from sandbox.state import SandboxState
from sandbox.youtube_analytics import reports_endpoint
from sandbox.youtube_common import DEFAULT_LIMITS, authorize, google_error, limits, rfc3339, with_faults
from sandbox.youtube_oauth import revoke, token_endpoint
from sandbox.youtube_quota import charge, reset_usage, usage_report
from sandbox.youtube_videos import PARTS, QUIET_PARTS, privacy, render, videos


class Revoke(BaseModel):
    refresh_token: str


def _videos_list(state: SandboxState, static_token: str) -> Any:
    async def videos_list(request: Request) -> Response:
        async def call() -> Response:
            caller = authorize(request, state, static_token)
            if isinstance(caller, JSONResponse):
                return caller
            over = charge(state, caller, "videos.list")
            if over is not None:
                return over
            part = request.query_params.get("part", "")
            if not part:
                return google_error(400, "required", "Required parameter: part")
            parts = {p.strip() for p in part.split(",") if p.strip()}
            unknown = sorted(parts - PARTS - QUIET_PARTS)
            if unknown:
                return google_error(400, "unknownPart", f"'{unknown[0]}'", domain="youtube.part")
            now = state.clock.time()
            items = []
            for vid in [v for v in request.query_params.get("id", "").split(",") if v]:
                video = videos(state).get(vid)
                # Private videos are visible to their own channel only; others see nothing, not an error.
                if video is None or (video["channel"] != caller.channel and
                                     privacy(video, now) == "private"):
                    continue
                items.append(render(state, video, parts | {"id"}))
            return JSONResponse({"kind": "youtube#videoListResponse", "etag": f"sandbox-{len(items)}",
                                 "items": items,
                                 "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}})

        return await with_faults(state, ["videos.list"], call)

    return videos_list


def _admin_router(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/_admin/youtube", tags=["sandbox admin"])

    @router.get("/limits")
    async def get_limits() -> dict[str, Any]:
        return usage_report(state)

    @router.put("/limits")
    async def put_limits(body: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(body) - set(DEFAULT_LIMITS))
        if unknown:
            raise HTTPException(400, f"unknown limits {unknown}; known: {sorted(DEFAULT_LIMITS)}")
        current = limits(state)
        for key, value in body.items():
            current[key] = {**current[key], **value} if key == "costs" else value
        state.save()
        return usage_report(state)

    @router.delete("/usage")
    async def delete_usage() -> dict[str, Any]:
        reset_usage(state)
        return usage_report(state)

    @router.post("/revoke")
    async def post_revoke(body: Revoke) -> dict[str, str]:
        revoke(state, body.refresh_token)
        return {"revoked": "ok"}

    return router


def mount(app: FastAPI, state: SandboxState, config: Any) -> None:
    static_token = str(getattr(config, "token", SANDBOX_TOKEN))
    app_secret = str(getattr(config, "app_secret", SANDBOX_APP_SECRET))
    configured = dict(getattr(config, "limits", {}).get("youtube", {}))
    current = limits(state)
    for key, value in configured.items():
        if key in DEFAULT_LIMITS:
            current[key] = value

    # Plain Starlette routes, not FastAPI ones: FastAPI would serialise a fault's DroppedResponse (an ASGI
    # callable, not a Response) into a 200 "{}" instead of letting it break the connection.
    data_root = SANDBOX_PREFIX["youtube"].rstrip("/")
    youtube_upload.add_routes(app, data_root, state, static_token)
    app.add_route(data_root + "/youtube/v3/videos", _videos_list(state, static_token), methods=["GET"])
    app.add_route(SANDBOX_PREFIX["youtube_analytics"].rstrip("/") + "/v2/reports",
                  reports_endpoint(state, static_token), methods=["GET"])
    app.add_route(SANDBOX_PREFIX["google_token"], token_endpoint(state, app_secret), methods=["POST"])
    app.include_router(_admin_router(state))


def published(state: SandboxState) -> list[dict[str, Any]]:
    """Every video that exists and what its bytes hashed to (for nothing-missing / nothing-twice checks)."""
    return [{"platform": "youtube", "post_id": v["id"], "sha256": v["sha256"], "size": v["size"],
             "title": v["title"], "text": v["description"], "created_at": rfc3339(v["created_at"])}
            for v in sorted(videos(state).values(), key=lambda v: v["created_at"])]
