"""Instagram Graph API fake (Instagram API with Facebook Login): content publishing and insights.

Graph calls arrive through sandbox.graph (shared host, version prefix, auth, error envelope); this module
owns IG user nodes (ids starting 1784), the containers and the media it issued. The resumable upload
host (rupload.facebook.com) lives in sandbox.instagram_rupload and is mounted by `mount()`.

Fault endpoint names: media.create, rupload, container.status, media_publish, publishing_limit,
insights (also media.list, media.get, user.get). Besides the request faults every router knows:
- container.status "stuck": the container stays IN_PROGRESS while the rule is on;
  container.status "failed": the container ends in ERROR with a status text;
- media_publish "stuck": media_publish answers 9007/2207027 (not ready) although the container is done,
  as the real API sometimes does right after FINISHED;
- media_publish "ambiguous": the media is published and the response is lost;
  media_publish "quota": the 9/2207042 publishing-limit answer.
Limits: SandboxConfig.limits["instagram"] = {"quota_total": 100, "processing_s": 0.5}; the publishing
limit can also be changed at run time, per IG user, with PUT /_admin/instagram/limits.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from metacentric.settings import SANDBOX_PREFIX
from models.platform import INSTAGRAM_CAPTION_MAX, INSTAGRAM_HASHTAGS_MAX
from sandbox.graph import GraphCall, graph_error
from sandbox.instagram_rupload import rupload_router
from sandbox.instagram_state import QUOTA_DURATION_S, IgStore, is_user_id
from sandbox.state import SandboxState
from sandbox.wire import fields_param

# Reel metrics the insights edge serves; deprecated ones (plays, impressions, video_views...) are refused.
INSIGHT_TITLES = {"views": "Views", "reach": "Accounts reached", "likes": "Likes", "comments": "Comments",
                  "shares": "Shares", "saved": "Saved", "total_interactions": "Interactions"}
LIST_LIMIT = 25


def _limits(config: Any) -> dict[str, Any]:
    limits = getattr(config, "limits", None) or {}
    return dict(limits.get("instagram", {}))


def _pick(obj: dict[str, Any], fields: list[str], default: list[str]) -> dict[str, Any]:
    wanted = fields or default
    return {"id": obj["id"], **{f: obj[f] for f in wanted if f in obj and f != "id"}}


def _bad_param(message: str) -> JSONResponse:
    return graph_error(100, f"(#100) {message}", type_="OAuthException")


class InstagramGraph:
    platform = "instagram"

    def __init__(self, store: IgStore) -> None:
        self.ig = store

    def owns(self, call: GraphCall) -> bool:
        head = call.parts[0] if call.parts else ""
        return is_user_id(head) or head in self.ig.containers() or head in self.ig.media()

    def endpoint(self, call: GraphCall) -> str:
        head, edge = call.parts[0], "/".join(call.parts[1:])
        if is_user_id(head):
            return {"media": "media.create" if call.method == "POST" else "media.list",
                    "media_publish": "media_publish", "content_publishing_limit": "publishing_limit",
                    "": "user.get"}.get(edge, "other")
        if head in self.ig.containers():
            return "container.status" if not edge else "other"
        return {"insights": "insights", "": "media.get"}.get(edge, "other")

    async def handle(self, call: GraphCall) -> Response:
        name = self.endpoint(call)
        head = call.parts[0]
        if name == "media.create":
            return self._create(call, head)
        if name == "media.list":
            return self._list(call, head)
        if name == "media_publish" and call.method == "POST":
            return self._publish(call, head)
        if name == "publishing_limit" and call.method == "GET":
            return self._quota(call, head)
        if name == "container.status" and call.method == "GET":
            return self._container(call, self.ig.containers()[head])
        if name == "insights" and call.method == "GET":
            return self._insights(call, self.ig.media()[head])
        if name == "media.get" and call.method == "GET":
            return self._media(call, self.ig.media()[head])
        if name == "user.get" and call.method == "GET":
            return JSONResponse({"id": head, "username": f"sandbox_artist_{head[-4:]}"})
        return graph_error(100, f"Unsupported {call.method} request. Object with ID '{'/'.join(call.parts)}' "
                                "does not exist, cannot be loaded due to missing permissions, or does not "
                                "support this operation", type_="GraphMethodException")

    # POST /{ig-user-id}/media ------------------------------------------------------------------------
    def _create(self, call: GraphCall, user_id: str) -> Response:
        p = call.params
        media_type = p.get("media_type", "").upper()
        if media_type == "VIDEO":
            return _bad_param("The VIDEO media type is no longer supported for feed videos; use REELS.")
        if media_type not in ("REELS", "STORIES"):
            return _bad_param("media_type must be REELS or STORIES in the sandbox.")
        resumable = p.get("upload_type", "").lower() == "resumable"
        video_url = p.get("video_url") or None
        if not resumable and not video_url:
            return _bad_param("The parameter video_url is required (or upload_type=resumable).")
        caption = p.get("caption", "")
        if len(caption) > INSTAGRAM_CAPTION_MAX:
            return _bad_param(f"The caption is longer than {INSTAGRAM_CAPTION_MAX} characters.")
        if caption.count("#") > INSTAGRAM_HASHTAGS_MAX:
            return _bad_param(f"The caption has more than {INSTAGRAM_HASHTAGS_MAX} hashtags.")
        c = self.ig.new_container(user_id, media_type=media_type, caption=caption,
                                  share_to_feed=p.get("share_to_feed", "true").lower() != "false",
                                  video_url=None if resumable else video_url)
        self.ig.state.save()
        body: dict[str, Any] = {"id": c["id"]}
        if resumable:
            base = str(call.request.base_url).rstrip("/")
            body["uri"] = f"{base}{SANDBOX_PREFIX['rupload']}/ig-api-upload/{call.version}/{c['id']}"
        return JSONResponse(body)

    # GET /{ig-container-id}?fields=status_code,status,video_status -------------------------------------
    def _container(self, call: GraphCall, c: dict[str, Any]) -> Response:
        code = self.ig.status(c)
        view = {"id": c["id"], "status_code": code, "status": self.ig.status_text(c, code),
                "video_status": self.ig.video_status(c, code)}
        return JSONResponse(_pick(view, fields_param(call.params.get("fields")), ["id"]))

    # POST /{ig-user-id}/media_publish creation_id=... ------------------------------------------------
    def _publish(self, call: GraphCall, user_id: str) -> Response:
        creation_id = call.params.get("creation_id", "")
        c = self.ig.containers().get(creation_id)
        if c is None or c["user_id"] != user_id:
            return graph_error(24, "The media with the given id was not found.", subcode=2207006,
                               extra={"error_user_title": "Media not found"})
        code = self.ig.status(c)
        if code == "PUBLISHED":
            # Sandbox choice (the real answer is not documented): refuse, so a blind retry cannot double-post.
            return _bad_param("This media container has already been published.")
        if code == "EXPIRED":
            return graph_error(-2, "The media container has expired. Create a new one.", subcode=2207020)
        if code == "ERROR":
            return graph_error(-1, "Unknown upload error. Create a new container.", subcode=2207053)
        if code == "IN_PROGRESS" or self.ig.state.faults.pick("instagram", "media_publish", kinds=("stuck",)):
            return graph_error(9007, "Media ID is not available", subcode=2207027,
                               extra={"error_user_title": "Media not ready for publishing",
                                      "error_user_msg": "The media is not ready for publishing yet."})
        if self.ig.quota_usage(user_id) >= self.ig.quota_total(user_id):
            return graph_error(9, "Application request limit reached", subcode=2207042,
                               extra={"error_user_title": "Daily publishing limit reached"})
        return JSONResponse({"id": self.ig.publish(c)["id"]})

    # GET /{ig-user-id}/content_publishing_limit ------------------------------------------------------
    def _quota(self, call: GraphCall, user_id: str) -> Response:
        since = call.params.get("since")
        usage = self.ig.quota_usage(user_id, float(since) if since and since.isdigit() else None)
        row: dict[str, Any] = {"quota_usage": usage}
        if "config" in fields_param(call.params.get("fields")):
            row["config"] = {"quota_total": self.ig.quota_total(user_id), "quota_duration": QUOTA_DURATION_S}
        return JSONResponse({"data": [row]})

    # GET /{ig-user-id}/media: recent media, newest first (how a client finds a media id after a lost answer)
    def _list(self, call: GraphCall, user_id: str) -> Response:
        mine = sorted((m for m in self.ig.media().values() if m["user_id"] == user_id),
                      key=lambda m: (m["published_at"], m["id"]), reverse=True)
        after = call.params.get("after")
        if after:
            ids = [m["id"] for m in mine]
            mine = mine[ids.index(after) + 1:] if after in ids else []
        raw_limit = call.params.get("limit", "")
        limit = max(1, min(100, int(raw_limit))) if raw_limit.isdigit() else LIST_LIMIT
        page, more = mine[:limit], len(mine) > limit
        fields = fields_param(call.params.get("fields"))
        body: dict[str, Any] = {"data": [_pick(m, fields, ["id"]) for m in page]}
        if page:
            body["paging"] = {"cursors": {"before": page[0]["id"], "after": page[-1]["id"]}}
            if more:
                nxt = call.request.url.include_query_params(after=page[-1]["id"])
                body["paging"]["next"] = str(nxt.remove_query_params("access_token"))
        return JSONResponse(body)

    # GET /{ig-media-id}?fields=like_count,comments_count,permalink,timestamp,media_product_type -------
    def _media(self, call: GraphCall, m: dict[str, Any]) -> Response:
        live = self.ig.state.market.organic_post("instagram", m["id"], self.ig.age_days(m))
        view = {**m, "like_count": live["likes"], "comments_count": live["comments"]}
        return JSONResponse(_pick(view, fields_param(call.params.get("fields")), ["id"]))

    # GET /{ig-media-id}/insights?metric=... ----------------------------------------------------------
    def _insights(self, call: GraphCall, m: dict[str, Any]) -> Response:
        metrics = fields_param(call.params.get("metric"))
        unknown = [x for x in metrics if x not in INSIGHT_TITLES]
        if not metrics or unknown:
            return _bad_param(f"metric[{metrics.index(unknown[0]) if unknown else 0}] must be one of the "
                              f"following values: {', '.join(INSIGHT_TITLES)}")
        counts = self.ig.counters(m)
        if counts is None:
            return JSONResponse({"data": []})  # not available yet: an empty set, never zeros
        interactions = counts["likes"] + counts["comments"] + counts["shares"] + counts["saves"]
        values = {**counts, "saved": counts["saves"], "reach": int(counts["views"] * 0.7),
                  "total_interactions": interactions}
        return JSONResponse({"data": [
            {"name": x, "period": "lifetime", "values": [{"value": values[x]}], "title": INSIGHT_TITLES[x],
             "description": f"The number of {INSIGHT_TITLES[x].lower()} on this reel.",
             "id": f"{m['id']}/insights/{x}/lifetime"} for x in metrics]})


def handler(state: SandboxState, config: Any) -> InstagramGraph:
    # IgStore keeps nothing of its own (all data is in state.ns), so the Graph handler and the upload
    # routes can each have one.
    return InstagramGraph(IgStore(state, _limits(config)))


class LimitsBody(BaseModel):
    ig_user_id: str = Field(default="*", description="an IG user id, or * for every user")
    quota_total: int = Field(ge=0)


def mount(app: FastAPI, state: SandboxState, config: Any) -> None:
    store = IgStore(state, _limits(config))
    app.include_router(rupload_router(store, config), prefix=SANDBOX_PREFIX["rupload"])

    @app.put("/_admin/instagram/limits", tags=["sandbox admin"])
    async def set_publishing_limit(body: LimitsBody) -> dict[str, Any]:
        """Change the rolling 24 h publishing limit (quota_total) for one IG user or all of them."""
        store.overrides()["quota_total"][body.ig_user_id] = body.quota_total
        state.save()
        return {"quota_total": dict(store.overrides()["quota_total"])}


def published(state: SandboxState) -> list[dict[str, Any]]:
    return [{"platform": "instagram", "post_id": m["id"], "sha256": m["sha256"], "size": m["size"],
             "text": m["caption"], "created_at": m["timestamp"]}
            for m in state.ns("instagram").get("media", {}).values()]
