"""api.x.com (X API v2) fake under SANDBOX_PREFIX["x"]: posts, users, OAuth 2.0 tokens; media is in x_media.

Fault endpoint names: tweets.create, tweets.lookup, users.me, users.tweets, media.initialize, media.append,
media.finalize, media.status, oauth.token. Kinds: transient (503), rate_limit (429 + reset headers), quota
(429 usage-capped), token_expired (401; on oauth.token: the refresh token is refused), drop_connection,
ambiguous (tweets.create: the post is made, the answer lost), stuck/failed (media processing).
Run-time limits: GET/PUT/DELETE /_admin/x/limits (see x_rules.DEFAULT_LIMITS).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import Body, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from metacentric.settings import SANDBOX_PREFIX
from sandbox.state import SandboxState
from sandbox.x_media import live_media, processing_info
from sandbox.x_media import routes as media_routes
from sandbox.x_oauth import token_route
from sandbox.x_rules import (
    PLATFORM,
    PROBLEMS,
    SANDBOX_USER,
    guarded,
    invalid_request,
    limits,
    next_id,
    problem,
)

TEXT_MAX = 280
_TWEET_FIELDS = {"created_at", "author_id", "conversation_id", "public_metrics", "referenced_tweets",
                 "in_reply_to_user_id", "attachments", "edit_history_tweet_ids"}


def weighted_length(text: str) -> int:
    """X counts most CJK and emoji as 2; Latin and common punctuation as 1 (twitter-text, simplified)."""
    light = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
    return sum(1 if any(a <= ord(ch) <= b for a, b in light) else 2 for ch in text)


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def _tweets(state: SandboxState) -> dict[str, dict[str, Any]]:
    return state.ns(PLATFORM).setdefault("tweets", {})  # type: ignore[no-any-return]


def public_metrics(state: SandboxState, tweet: dict[str, Any]) -> dict[str, int]:
    age_days = (state.clock.time() - float(tweet["created_at"])) / 86400
    m = state.market.organic_post(PLATFORM, tweet["id"], age_days)
    quotes = m["shares"] // 4  # the market's "shares" are X's retweets plus quotes
    return {"retweet_count": m["shares"] - quotes, "reply_count": m["comments"], "like_count": m["likes"],
            "quote_count": quotes, "bookmark_count": m["saves"], "impression_count": m["views"]}


_URL = re.compile(r"https?://\S+")


def _tco(seed: str) -> str:
    return "https://t.co/" + hashlib.sha1(seed.encode()).hexdigest()[:10]


def shown_text(tweet: dict[str, Any]) -> str:
    """The text as v2 returns it: links rewritten to t.co, a t.co link to attached media appended, and
    &, <, > HTML-escaped."""
    text = _URL.sub(lambda m: _tco(m.group(0)), tweet["text"])
    if tweet.get("media_keys"):
        text = f"{text} {_tco(tweet['media_keys'][0])}".strip()
    return html.escape(text, quote=False)


def render(state: SandboxState, tweet: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": tweet["id"], "text": shown_text(tweet), "edit_history_tweet_ids": [tweet["id"]]}
    if "created_at" in fields:
        out["created_at"] = _rfc3339(float(tweet["created_at"]))
    if "author_id" in fields:
        out["author_id"] = tweet["author_id"]
    if "conversation_id" in fields:
        out["conversation_id"] = tweet["conversation_id"]
    if "public_metrics" in fields:
        out["public_metrics"] = public_metrics(state, tweet)
    if tweet.get("in_reply_to") and "referenced_tweets" in fields:
        out["referenced_tweets"] = [{"type": "replied_to", "id": tweet["in_reply_to"]}]
    if tweet.get("in_reply_to") and "in_reply_to_user_id" in fields:
        out["in_reply_to_user_id"] = tweet.get("in_reply_to_user_id")
    if tweet.get("media_keys") and "attachments" in fields:
        out["attachments"] = {"media_keys": list(tweet["media_keys"])}
    return out


def _fields(request: Request) -> set[str]:
    return {f.strip() for f in request.query_params.get("tweet.fields", "").split(",") if f.strip()}


def _not_found(kind: str, value: str, parameter: str) -> dict[str, Any]:
    return {"value": value, "detail": f"Could not find {kind} with {parameter}: [{value}].",
            "title": "Not Found Error", "resource_type": kind, "parameter": parameter, "resource_id": value,
            "type": PROBLEMS + "resource-not-found"}


def routes(state: SandboxState, config: Any) -> list[Route]:
    def lim() -> dict[str, Any]:
        return limits(state, config.limits.get(PLATFORM, {}))

    async def create(request: Request) -> Any:
        async def call(user: str) -> Response:
            try:
                body = json.loads(await request.body() or b"null")
                assert isinstance(body, dict)
            except (ValueError, AssertionError):
                return invalid_request("body", [], "The request body must be a JSON object.")
            text = body.get("text") or ""
            media_ids = [str(m) for m in (body.get("media") or {}).get("media_ids", [])]
            parent = str((body.get("reply") or {}).get("in_reply_to_tweet_id") or "") or None
            if not isinstance(text, str) or (not text and not media_ids):
                return invalid_request("text", [], "A post needs text or media.")
            if weighted_length(text) > TEXT_MAX:
                return invalid_request("text", [text[:40]],
                                       f"Text is longer than {TEXT_MAX} weighted characters.")
            tweets = _tweets(state)
            if parent is not None and parent not in tweets:
                return problem(403, "Forbidden",
                               "You attempted to reply to a Tweet that is deleted or not visible to you.")
            media = [live_media(state, m, user) for m in media_ids]
            if len(media_ids) > 4 or any(m is None or m["state"] != "finalized" or (processing_info(
                    state, m, float(lim()["processing_s"])) or {"state": "succeeded"})["state"] != "succeeded"
                    for m in media):
                return invalid_request("media.media_ids", media_ids, "Your media IDs are invalid.")
            now = state.clock.time()
            window = float(lim()["duplicate_window_s"])
            if text and any(t["author_id"] == user and t["text"] == text and now - t["created_at"] < window
                            for t in tweets.values()):
                stats = state.ns(PLATFORM).setdefault("stats", {})
                stats["duplicates_refused"] = stats.get("duplicates_refused", 0) + 1
                return problem(403, "Forbidden",
                               "You are not allowed to create a Tweet with duplicate content.")
            tweet_id = next_id(state)
            root = tweets[parent]["conversation_id"] if parent else tweet_id
            tweets[tweet_id] = {"id": tweet_id, "text": text, "author_id": user, "created_at": now,
                                "in_reply_to": parent, "conversation_id": root, "media_ids": media_ids,
                                "in_reply_to_user_id": tweets[parent]["author_id"] if parent else None,
                                "media_keys": [m["media_key"] for m in media if m is not None]}
            state.save()
            return JSONResponse({"data": render(state, tweets[tweet_id], {"edit_history_tweet_ids"})},
                                status_code=201)
        return await guarded(state, config, request, "tweets.create", call)

    async def lookup(request: Request) -> Any:
        async def call(user: str) -> Response:
            ids = [i.strip() for i in request.query_params.get("ids", "").split(",") if i.strip()]
            if not 1 <= len(ids) <= 100 or not all(i.isdigit() for i in ids):
                return invalid_request("ids", ids[:5],
                                       "ids: give 1 to 100 numeric post ids, comma-separated.")
            tweets, fields = _tweets(state), _fields(request)
            body: dict[str, Any] = {}
            found = [render(state, tweets[i], fields) for i in ids if i in tweets]
            missing = [_not_found("tweet", i, "ids") for i in ids if i not in tweets]
            if found:
                body["data"] = found
            if missing:
                body["errors"] = missing
            return JSONResponse(body)
        return await guarded(state, config, request, "tweets.lookup", call)

    async def me(request: Request) -> Any:
        async def call(user: str) -> Response:
            return JSONResponse({"data": dict(SANDBOX_USER, id=user)})
        return await guarded(state, config, request, "users.me", call)

    async def timeline(request: Request) -> Any:
        author = request.path_params["user_id"]
        q = request.query_params

        async def call(user: str) -> Response:
            if author != SANDBOX_USER["id"]:
                return JSONResponse({"errors": [_not_found("user", author, "id")]})
            try:
                size = int(q.get("max_results", "10"))
                after = int(q.get("pagination_token", "0"), 36) if q.get("pagination_token") else None
            except ValueError:
                return invalid_request("pagination_token", [q.get("pagination_token", "")],
                                       "Malformed parameter.")
            if not 5 <= size <= 100:
                return invalid_request("max_results", [str(size)], "max_results must be between 5 and 100.")
            visible_until = state.clock.time() - float(lim()["timeline_lag_s"])
            mine = sorted((t for t in _tweets(state).values()
                           if t["author_id"] == author and t["created_at"] <= visible_until
                           and (after is None or int(t["id"]) < after)),
                          key=lambda t: int(t["id"]), reverse=True)
            page = mine[:size]
            fields = _fields(request)
            meta: dict[str, Any] = {"result_count": len(page)}
            body: dict[str, Any] = {}
            if page:
                body["data"] = [render(state, t, fields) for t in page]
                meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
                if len(mine) > size:
                    meta["next_token"] = _base36(int(page[-1]["id"]))
            body["meta"] = meta
            return JSONResponse(body)
        return await guarded(state, config, request, "users.tweets", call)

    async def one(request: Request) -> Any:
        tweet_id = request.path_params["tweet_id"]

        async def call(user: str) -> Response:
            tweet = _tweets(state).get(tweet_id)
            if tweet is None:
                return JSONResponse({"errors": [_not_found("tweet", tweet_id, "id")]})
            return JSONResponse({"data": render(state, tweet, _fields(request))})
        return await guarded(state, config, request, "tweets.lookup", call)

    return [
        Route("/2/tweets", create, methods=["POST"]),
        Route("/2/tweets", lookup, methods=["GET"]),
        Route("/2/tweets/{tweet_id}", one, methods=["GET"]),
        Route("/2/users/me", me, methods=["GET"]),
        Route("/2/users/{user_id}/tweets", timeline, methods=["GET"]),
        token_route(state, config),
        *media_routes(state, config),
    ]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def mount(app: FastAPI, state: SandboxState, config: Any) -> None:
    # Plain Starlette routes: the handlers read raw (streamed) bodies and build their own responses.
    app.mount(SANDBOX_PREFIX["x"], Router(routes=routes(state, config)))

    @app.get("/_admin/x/limits", tags=["sandbox admin"])
    async def get_limits() -> dict[str, Any]:
        return limits(state, config.limits.get(PLATFORM, {}))

    @app.put("/_admin/x/limits", tags=["sandbox admin"])
    async def put_limits(overrides: dict[str, Any] = Body(...)) -> dict[str, Any]:
        current = state.ns(PLATFORM).setdefault("limits", {})
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(current.get(key), dict):
                current[key].update(value)
            else:
                current[key] = value
        state.save()
        return limits(state, config.limits.get(PLATFORM, {}))

    @app.delete("/_admin/x/limits", tags=["sandbox admin"])
    async def reset_limits() -> dict[str, Any]:
        state.ns(PLATFORM).pop("limits", None)
        state.save()
        return limits(state, config.limits.get(PLATFORM, {}))


def published(state: SandboxState) -> list[dict[str, Any]]:
    """Every post on X, oldest first. A thread's replies are listed too: `thread_root` is the first post's id
    (equal to post_id for the first post itself), `in_reply_to` the parent's id (None for the first post)."""
    media = state.ns(PLATFORM).get("media", {})
    out = []
    for t in sorted(_tweets(state).values(), key=lambda t: int(t["id"])):
        attached = media.get(t["media_ids"][0]) if t["media_ids"] else None
        out.append({"platform": PLATFORM, "post_id": t["id"], "text": t["text"],
                    "sha256": attached["sha256"] if attached else None,
                    "size": attached["size"] if attached else None,
                    "created_at": _rfc3339(float(t["created_at"])),
                    "thread_root": t["conversation_id"], "in_reply_to": t["in_reply_to"]})
    return out
