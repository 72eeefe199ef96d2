"""Chunked video upload to X (v2 media endpoints), resumable from the intent log.

intent["media"] holds what a retry needs: the media id and key, the segment size used, the next segment
to send, whether finalize was acknowledged and whether processing succeeded. It is saved right after
initialize and after every acknowledged segment, so a retry sends only what X has not confirmed; if the
previous attempt's last segment did arrive, X treats the re-send as a no-op.
"""

from __future__ import annotations

import asyncio
import mimetypes
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from platforms.errors import PermanentError, TransientError
from platforms.files import aiter_range, file_size
from platforms.x_http import INVALID_MEDIA, PLATFORM, XApi, query

SEGMENT_BYTES = 4 * 1024 * 1024  # X's own sample uses 4 MB; X accepts up to 5 MB per segment
MAX_SEGMENTS = 1000  # segment_index is 0..999


@dataclass(frozen=True)
class Media:
    id: str
    key: str


def _media_kind(path: str) -> tuple[str, str]:
    media_type = mimetypes.guess_type(path)[0] or "video/mp4"
    if media_type == "image/gif":
        return media_type, "tweet_gif"
    return media_type, "tweet_video" if media_type.startswith("video/") else "tweet_image"


class MediaUploader:
    def __init__(self, api: XApi, *, segment_bytes: int, poll_interval_s: float,
                 poll_timeout_s: float) -> None:
        self.api = api
        self.segment_bytes = segment_bytes
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s

    async def ensure(self, path: str, intent: dict[str, Any], save: Callable[[], None]) -> Media:
        """The media id of `path`, processed and ready to attach: resumed from `intent` or uploaded anew."""
        size = file_size(path)
        saved = intent.get("media")
        if saved and (saved["size"] != size or saved["expires_at"] <= self.api.clock()):
            saved = None  # a different file, or X has forgotten this id by now
        try:
            return await self._run(path, size, saved, intent, save)
        except PermanentError as exc:
            if exc.code != INVALID_MEDIA or saved is None:
                raise
        # X no longer knows the saved id (expired early, or the upload session was lost): start over once.
        return await self._run(path, size, None, intent, save)

    def forget(self, intent: dict[str, Any], save: Callable[[], None]) -> None:
        intent.pop("media", None)
        save()

    async def _run(self, path: str, size: int, m: dict[str, Any] | None, intent: dict[str, Any],
                   save: Callable[[], None]) -> Media:
        if m is None:
            m = await self._initialize(path, size)
            intent["media"] = m
            save()
        seg = int(m["segment_bytes"])
        while m["next_segment"] * seg < size:
            index = int(m["next_segment"])
            await self._append(m["id"], path, index, index * seg, min(seg, size - index * seg))
            m["next_segment"] = index + 1
            save()
        if not m["finalized"]:
            body = await self.api.call("media.finalize", "POST", f"/2/media/upload/{m['id']}/finalize")
            m["finalized"] = True
            save()
            info = body.get("data", {}).get("processing_info")
        else:
            info = {"state": "pending", "check_after_secs": 0} if not m["ready"] else None
        if not m["ready"]:
            await self._wait_processed(m["id"], info, intent, save)
            m["ready"] = True
            save()
        return Media(m["id"], m["key"])

    async def _initialize(self, path: str, size: int) -> dict[str, Any]:
        media_type, category = _media_kind(path)
        # Few, large segments: X allows 1000 at most, so very big files need bigger ones.
        seg = max(self.segment_bytes, -(-size // MAX_SEGMENTS))
        body = await self.api.call("media.initialize", "POST", "/2/media/upload/initialize", lambda: {
            "json": {"media_type": media_type, "total_bytes": size, "media_category": category}})
        data = body["data"]
        return {"id": str(data["id"]), "key": str(data["media_key"]), "size": size, "segment_bytes": seg,
                "expires_at": self.api.clock() + float(data.get("expires_after_secs", 86400)),
                "next_segment": 0, "finalized": False, "ready": False}

    async def _append(self, media_id: str, path: str, index: int, start: int, length: int) -> None:
        def request() -> dict[str, Any]:
            # multipart/form-data written by hand so the segment streams from disk, never whole in memory.
            boundary = secrets.token_hex(16)
            head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"segment_index\"\r\n\r\n"
                    f"{index}\r\n--{boundary}\r\n"
                    "Content-Disposition: form-data; name=\"media\"; filename=\"blob\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n").encode()
            tail = f"\r\n--{boundary}--\r\n".encode()

            async def body() -> AsyncIterator[bytes]:
                yield head
                async for piece in aiter_range(path, start, length):
                    yield piece
                yield tail

            return {"content": body(), "headers": {
                "content-type": f"multipart/form-data; boundary={boundary}",
                "content-length": str(len(head) + length + len(tail))}}

        await self.api.call("media.append", "POST", f"/2/media/upload/{media_id}/append", request)

    async def _wait_processed(self, media_id: str, info: dict[str, Any] | None, intent: dict[str, Any],
                              save: Callable[[], None]) -> None:
        deadline = time.monotonic() + self.poll_timeout_s
        while info is not None and info.get("state") in ("pending", "in_progress"):
            if time.monotonic() >= deadline:
                raise TransientError(PLATFORM, f"X still processing the video after {self.poll_timeout_s}s",
                                     retry_after=self.poll_interval_s, code="media-processing")
            # Obey X's check_after_secs, but never wait longer than our own poll interval between looks.
            await asyncio.sleep(max(0.01, min(float(info.get("check_after_secs", 1)), self.poll_interval_s)))
            body = await self.api.call("media.status", "GET", "/2/media/upload",
                                       query({"command": "STATUS", "media_id": media_id}))
            info = body.get("data", {}).get("processing_info")
        if info is not None and info.get("state") == "failed":
            error = info.get("error") or {}
            self.forget(intent, save)  # this media id is dead; a later attempt must upload again
            raise PermanentError(PLATFORM, f"X could not process the video: {error.get('message', 'failed')}",
                                 code=str(error.get("name") or "media-failed"))
