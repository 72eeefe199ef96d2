"""open.tiktokapis.com: the Content Posting API and the Display API's video endpoints, as a fake.

Paths, bodies, the {"data":…,"error":{"code","message","log_id"}} envelope, error codes and HTTP statuses
follow reference/platform_apis.md section 3. Served under SANDBOX_PREFIX["tiktok"]:

  POST /v2/post/publish/creator_info/query/     fault endpoint "creator_info"   (20/min per token)
  POST /v2/post/publish/video/init/             "video.init"                    (6/min)
  POST /v2/post/publish/inbox/video/init/       "inbox.init"                    (6/min)
  PUT  /upload/?upload_id=…&upload_token=…      "upload.chunk", "upload.chunk.<i>" (see tiktok_jobs)
  POST /v2/post/publish/status/fetch/           "status.fetch"                  (30/min); stuck/failed jobs
  POST /v2/video/query/?fields=…                "video.query"                   (600/min)
  POST /v2/video/list/?fields=…                 "video.list"                    (600/min)
  POST /v2/oauth/token/                         "oauth.token"

Knobs (daily post cap, rate limits, timings, privacy options, scopes) are TikTokConfig fields, set through
SandboxConfig.limits["tiktok"].
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from metacentric.settings import SANDBOX_PREFIX
from sandbox.state import SandboxState
from sandbox.tiktok_jobs import FIRST_POST_ID, Jobs, iso
from sandbox.tiktok_oauth import Caller, TokenRegistry
from sandbox.tiktok_rules import (
    RATE_LIMITED,
    RateWindows,
    TikTokConfig,
    as_response,
    chunk_rule_violation,
    error,
    ok,
    render_fault,
    render_oauth_fault,
)
from sandbox.wire import with_faults

CAPTION_MAX = 2200
MAX_QUERY_IDS = 20
VIDEO_FIELDS = ("id", "title", "video_description", "create_time", "duration", "cover_image_url", "share_url",
                "embed_link", "view_count", "like_count", "comment_count", "share_count")
Handler = Callable[[Request, Caller], Awaitable[Response]]


class TikTokApi:
    def __init__(self, state: SandboxState, cfg: TikTokConfig) -> None:
        self.state = state
        self.cfg = cfg
        self.tokens = TokenRegistry(state, cfg)
        self.jobs = Jobs(state, cfg)
        self.windows = RateWindows()

    async def serve(self, request: Request, endpoint: str, scopes: set[str], handler: Handler) -> Response:
        """Faults, then auth, scopes and the per-token window, then the handler."""
        now = self.state.clock.now()

        async def call() -> Response:
            caller = self.tokens.authenticate(request)
            if isinstance(caller, Response):
                return caller
            if not caller.scopes & scopes:
                return error("scope_not_authorized", f"This call needs one of the scopes {sorted(scopes)}.",
                             401, now)
            limit = self.cfg.rate_limits.get(endpoint)
            clock = self.state.clock.time()
            if limit is not None and not self.windows.allow(caller.token, endpoint, limit, clock):
                return error("rate_limit_exceeded", RATE_LIMITED, 429, now)
            return await handler(request, caller)

        return as_response(await with_faults(self.state, "tiktok", endpoint,
                                             lambda rule: render_fault(rule, now), call))

    # publishing ------------------------------------------------------------------------------------
    async def creator_info(self, request: Request, caller: Caller) -> Response:
        cfg = self.cfg
        return ok({"creator_avatar_url": f"https://p16-sign.tiktokcdn.com/{caller.open_id}.jpeg",
                   "creator_username": cfg.username, "creator_nickname": cfg.nickname,
                   "privacy_level_options": list(cfg.privacy_level_options), "comment_disabled": False,
                   "duet_disabled": False, "stitch_disabled": False,
                   "max_video_post_duration_sec": cfg.max_video_post_duration_sec}, self.state.clock.now())

    async def direct_init(self, request: Request, caller: Caller) -> Response:
        return await self._init(request, caller, "direct")

    async def inbox_init(self, request: Request, caller: Caller) -> Response:
        return await self._init(request, caller, "inbox")

    async def _init(self, request: Request, caller: Caller, kind: str) -> Response:
        now = self.state.clock.now()
        body = await _json_body(request)
        source = body.get("source_info") if body is not None else None
        if not isinstance(source, dict):
            return error("invalid_params", "source_info is required.", 400, now)
        title, privacy = "", None
        if kind == "direct":
            post_info = body.get("post_info") if body is not None else None
            if not isinstance(post_info, dict):
                return error("invalid_params", "post_info is required.", 400, now)
            title, privacy = post_info.get("title", ""), post_info.get("privacy_level")
            if not isinstance(title, str) or len(title) > CAPTION_MAX:
                return error("invalid_params", f"title must be a string of at most {CAPTION_MAX} characters.",
                             400, now)
            if privacy not in self.cfg.privacy_level_options:
                return error("privacy_level_option_mismatch", "privacy_level is not one of the creator's "
                             "privacy_level_options.", 403, now)
        rec: dict[str, Any] = {
            "kind": kind, "open_id": caller.open_id, "title": title, "privacy_level": privacy,
            "source": source.get("source"), "received": 0, "sha256": None, "ready_at": None,
            "status": "PROCESSING_UPLOAD", "created_at": self.state.clock.time()}
        if rec["source"] == "FILE_UPLOAD":
            sizes = (source.get("video_size"), source.get("chunk_size"), source.get("total_chunk_count"))
            problem = chunk_rule_violation(*sizes)
            if problem is not None:
                return error("invalid_params", problem, 400, now)
            rec.update(video_size=sizes[0], chunk_size=sizes[1], total_chunk_count=sizes[2])
        elif rec["source"] == "PULL_FROM_URL":
            url = source.get("video_url")
            if not isinstance(url, str) or urlsplit(url).hostname not in self.cfg.verified_domains:
                return error("url_ownership_unverified", "The video_url's domain is not verified for this "
                             "app.", 403, now)
            rec.update(video_url=url, video_size=None, status="PROCESSING_DOWNLOAD",
                       ready_at=self.state.clock.time())
        else:
            return error("invalid_params", "source_info.source must be FILE_UPLOAD or PULL_FROM_URL.",
                         400, now)
        with self.state.lock:
            if kind == "direct":
                counts = self.state.ns("tiktok").setdefault("posts_per_day", {})
                day_key = f"{caller.open_id}:{now.date().isoformat()}"
                if counts.get(day_key, 0) >= self.cfg.daily_post_cap:
                    return error("spam_risk_too_many_posts", "The creator has reached today's post cap.",
                                 403, now)
                counts[day_key] = counts.get(day_key, 0) + 1
            n = FIRST_POST_ID + int(self.state.new_id())
            medium = "_file" if rec["source"] == "FILE_UPLOAD" else "_url"
            prefix = {"direct": "v_pub", "inbox": "v_inbox"}[kind] + medium
            rec["publish_id"] = f"{prefix}~v2-1.{n}"
            data = {"publish_id": rec["publish_id"]}
            if rec["source"] == "FILE_UPLOAD":
                rec.update(upload_id=str(n), upload_token=secrets.token_urlsafe(18))
                base = str(request.base_url).rstrip("/") + SANDBOX_PREFIX["tiktok"]
                query = urlencode({"upload_id": rec["upload_id"], "upload_token": rec["upload_token"]})
                data["upload_url"] = f"{base}/upload/?{query}"
            self.jobs.add(rec)
            self.state.save()
        return ok(data, now)

    async def status(self, request: Request, caller: Caller) -> Response:
        now = self.state.clock.now()
        body = await _json_body(request)
        pid = body.get("publish_id") if body is not None else None
        rec = self.jobs.publishes.get(pid) if isinstance(pid, str) else None
        if rec is None or rec["open_id"] != caller.open_id:
            return error("invalid_publish_id", "publish_id does not exist.", 400, now)
        return ok(self.jobs.status_view(rec), now)

    # Display API -----------------------------------------------------------------------------------
    async def video_query(self, request: Request, caller: Caller) -> Response:
        now = self.state.clock.now()
        fields = _fields(request)
        if isinstance(fields, str):
            return error("invalid_params", fields, 400, now)
        body = await _json_body(request)
        filters = body.get("filters") if body is not None else None
        ids = filters.get("video_ids") if isinstance(filters, dict) else None
        if not isinstance(ids, list) or not ids or len(ids) > MAX_QUERY_IDS:
            return error("invalid_params", f"filters.video_ids must list 1 to {MAX_QUERY_IDS} video ids.",
                         400, now)
        wanted = {str(i) for i in ids}
        mine = [r for r in self.jobs.posts(caller.open_id)
                if r["post_id"] in wanted and self.jobs.post_id_visible(r)]
        return ok({"videos": [self._video(r, fields) for r in mine]}, now)

    async def video_list(self, request: Request, caller: Caller) -> Response:
        now = self.state.clock.now()
        fields = _fields(request)
        if isinstance(fields, str):
            return error("invalid_params", fields, 400, now)
        body = await _json_body(request) or {}
        cursor, max_count = body.get("cursor"), body.get("max_count", 10)
        if not isinstance(max_count, int) or not 1 <= max_count <= 20 or not isinstance(cursor, int | None):
            return error("invalid_params", "max_count must be 1-20 and cursor a unix time in milliseconds.",
                         400, now)
        for rec in list(self.jobs.publishes.values()):
            if rec["open_id"] == caller.open_id:
                self.jobs.advance(rec)  # the platform works whether or not anyone polls
        visible = [r for r in reversed(self.jobs.posts(caller.open_id)) if self.jobs.post_id_visible(r)
                   and (cursor is None or int(r["finished_at"] * 1000) < cursor)]
        page = visible[:max_count]
        next_cursor = int(page[-1]["finished_at"] * 1000) if page else (cursor or 0)
        return ok({"videos": [self._video(r, fields) for r in page], "cursor": next_cursor,
                   "has_more": len(visible) > len(page)}, now)

    def _video(self, rec: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        age_days = max(0.0, (self.state.clock.time() - rec["finished_at"]) / 86400)
        counts = self.state.market.organic_post("tiktok", rec["post_id"], age_days)
        share = f"https://www.tiktok.com/@{self.cfg.username}/video/{rec['post_id']}"
        full = {"id": rec["post_id"], "title": rec["title"], "video_description": rec["title"],
                "create_time": int(rec["finished_at"]), "duration": 30,
                "cover_image_url": f"https://p16-sign.tiktokcdn.com/obj/{rec['post_id']}.jpeg",
                "share_url": share, "embed_link": f"https://www.tiktok.com/embed/v2/{rec['post_id']}",
                "view_count": counts["views"], "like_count": counts["likes"],
                "comment_count": counts["comments"], "share_count": counts["shares"]}
        return {f: full[f] for f in fields}


async def _json_body(request: Request) -> dict[str, Any] | None:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _fields(request: Request) -> list[str] | str:
    fields = [f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()]
    unknown = [f for f in fields if f not in VIDEO_FIELDS]
    if not fields or unknown:
        return f"fields must be a comma list of {', '.join(VIDEO_FIELDS)}; unknown: {unknown}"
    return fields


def _route(api: TikTokApi, endpoint: str, scopes: set[str], handler: Handler) -> Callable[[Request],
                                                                                     Awaitable[Response]]:
    async def route(request: Request) -> Response:
        return await api.serve(request, endpoint, scopes, handler)
    return route


def mount(app: FastAPI, state: SandboxState, config: Any) -> None:
    cfg = TikTokConfig.from_sandbox(config)
    api = TikTokApi(state, cfg)
    router = APIRouter(tags=["tiktok"])
    publish, upload, listing = {"video.publish"}, {"video.upload"}, {"video.list"}
    routes: list[tuple[str, str, set[str], Handler]] = [
        ("/v2/post/publish/creator_info/query/", "creator_info", publish, api.creator_info),
        ("/v2/post/publish/video/init/", "video.init", publish, api.direct_init),
        ("/v2/post/publish/inbox/video/init/", "inbox.init", upload, api.inbox_init),
        ("/v2/post/publish/status/fetch/", "status.fetch", publish | upload, api.status),
        ("/v2/video/query/", "video.query", listing, api.video_query),
        ("/v2/video/list/", "video.list", listing, api.video_list),
    ]
    for path, endpoint, scopes, handler in routes:
        router.add_api_route(path, _route(api, endpoint, scopes, handler), methods=["POST"],
                             name=f"tiktok {endpoint}")

    async def oauth_token(request: Request) -> Response:
        now = state.clock.now()
        return as_response(await with_faults(state, "tiktok", "oauth.token",
                                             lambda rule: render_oauth_fault(rule, now),
                                             lambda: api.tokens.token_endpoint(request)))

    router.add_api_route("/v2/oauth/token/", oauth_token, methods=["POST"])
    # The upload host (open-upload.tiktokapis.com) is served here too; its URL comes from init.
    router.add_api_route("/upload/", api.jobs.upload_chunk, methods=["PUT"])
    app.include_router(router, prefix=SANDBOX_PREFIX["tiktok"])


def published(state: SandboxState) -> list[dict[str, Any]]:
    """Every TikTok post that exists (direct posts that reached PUBLISH_COMPLETE); a pure read."""
    return [{"platform": "tiktok", "post_id": r["post_id"], "sha256": r["sha256"], "size": r["video_size"],
             "text": r["title"], "created_at": iso(r["finished_at"])}
            for r in Jobs(state, TikTokConfig()).posts()]

