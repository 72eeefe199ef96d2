"""Creating one post of a thread exactly once, although X has no idempotency keys.

Before each POST /2/tweets the intent log records {"pending": {"index", "unknown": True}}: "a create for
post <index> may be in flight". If its answer is lost (or X answers 5xx), we LOOK before writing again:
GET /2/users/me, then the user's recent posts, matching exact text, reply parent and (first post) media.
Not found -> write once more; X's duplicate-content guard backs that up, and a duplicate 403 after an
unknown outcome means "it exists", so we look again (patiently: timelines lag) instead of failing.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from platforms.errors import AmbiguousWriteError, PermanentError, PlatformError
from platforms.x_http import DUPLICATE_CONTENT, PLATFORM, XApi, query
from platforms.x_media import Media

log = logging.getLogger(__name__)
TIMELINE_PAGES = 3  # the post we look for is among the user's latest few hundred
_FIELDS = "created_at,referenced_tweets,attachments"
_URL = re.compile(r"https?://\S+")


def _replied_to(tweet: dict[str, Any]) -> str | None:
    refs = tweet.get("referenced_tweets") or []
    return next((str(r["id"]) for r in refs if r.get("type") == "replied_to"), None)


def _comparable(text: str) -> str:
    # X returns text HTML-escaped, every link rewritten to t.co and a t.co link to attached media
    # appended: compare the words that are left (parent and media are compared as well).
    return " ".join(_URL.sub(" ", html.unescape(text)).split())


def _matches(tweet: dict[str, Any], text: str, parent: str | None, media_key: str | None) -> bool:
    if _comparable(str(tweet.get("text", ""))) != _comparable(text) or _replied_to(tweet) != parent:
        return False
    return media_key is None or media_key in (tweet.get("attachments") or {}).get("media_keys", [])


class ThreadPoster:
    def __init__(self, api: XApi, *, poll_interval_s: float, reconcile_timeout_s: float) -> None:
        self.api = api
        self.poll_interval_s = poll_interval_s
        self.reconcile_timeout_s = reconcile_timeout_s
        self._user_id: str | None = None

    async def create(self, intent: dict[str, Any], save: Callable[[], None], index: int, text: str,
                     parent: str | None, media: Media | None) -> str:
        """The id of post `index` (text, replying to `parent`): created now, or found from an earlier try."""
        pending = intent.get("pending") or {}
        unknown_before = pending.get("index") == index and bool(pending.get("unknown"))
        media_key = media.key if media else None
        if unknown_before:
            found = await self.find(text, parent, pending.get("media_key") or media_key)
            if found:
                return found
        intent["pending"] = {"index": index, "unknown": True, "media_key": media_key}
        save()
        body: dict[str, Any] = {"text": text}
        if parent:
            body["reply"] = {"in_reply_to_tweet_id": parent}
        if media:
            body["media"] = {"media_ids": [media.id]}
        for attempt in (1, 2):
            try:
                answer = await self.api.call("tweets.create", "POST", "/2/tweets", lambda: {"json": body},
                                             write=True)
                return str(answer["data"]["id"])
            except AmbiguousWriteError:
                found = await self.find(text, parent, media_key)
                if found:
                    log.info("X post %d: answer lost, but the post exists (%s)", index, found)
                    return found
                if attempt == 2:
                    raise
                unknown_before = True  # looked and it is not there (yet): write once more
            except PermanentError as exc:
                if exc.code != DUPLICATE_CONTENT or not unknown_before:
                    self._settle(intent, save, unknown_before)
                    raise
                found = await self.find(text, parent, media_key, patient=True)
                if found:
                    log.info("X post %d: duplicate refused, matched the earlier attempt (%s)", index, found)
                    return found
                raise AmbiguousWriteError(PLATFORM, "X says this post already exists but it is not visible "
                                                    "in the timeline yet; look again later",
                                          code=DUPLICATE_CONTENT) from exc
            except PlatformError:
                self._settle(intent, save, unknown_before)  # a definite "no": nothing was created this time
                raise
        raise AssertionError("unreachable")

    def _settle(self, intent: dict[str, Any], save: Callable[[], None], unknown_before: bool) -> None:
        if not unknown_before:
            intent.pop("pending", None)
            save()

    async def find(self, text: str, parent: str | None, media_key: str | None, *,
                   patient: bool = False) -> str | None:
        """Our post with this exact text, parent and media among the user's latest, if X shows it."""
        deadline = time.monotonic() + (self.reconcile_timeout_s if patient else 0)
        while True:
            found = await self._look(text, parent, media_key)
            if found or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(self.poll_interval_s)

    async def _look(self, text: str, parent: str | None, media_key: str | None) -> str | None:
        user = await self._me()
        params: dict[str, Any] = {"max_results": 100, "tweet.fields": _FIELDS}
        for _ in range(TIMELINE_PAGES):
            page = await self.api.call("users.tweets", "GET", f"/2/users/{user}/tweets", query(params))
            for tweet in page.get("data") or []:
                if _matches(tweet, text, parent, media_key):
                    return str(tweet["id"])
            next_token = (page.get("meta") or {}).get("next_token")
            if not next_token:
                return None
            params["pagination_token"] = next_token
        return None

    async def _me(self) -> str:
        if self._user_id is None:
            me = await self.api.call("users.me", "GET", "/2/users/me")
            self._user_id = str(me["data"]["id"])
        return self._user_id
