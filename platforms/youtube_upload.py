"""videos.insert as a resumable upload that survives faults, retries and restarts without a second video.

The intent log holds {"session_uri", "total_size"} from the moment the session exists (before any byte
is sent) and {"video_id"} once YouTube has answered with the video. A retry therefore either returns
the saved video id, or asks the saved session how far it got (`Content-Range: bytes */N`) and sends the
rest, or takes the video from that answer when the last chunk landed but its reply was lost. Only a
session YouTube no longer knows (404/410) is replaced by a new one.

Runs in a worker thread: googleapiclient and httplib2 are synchronous.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Any

from googleapiclient.discovery import Resource
from googleapiclient.errors import HttpError, ResumableUploadError
from googleapiclient.http import HttpRequest, MediaFileUpload

from platforms.base import IntentLog
from platforms.errors import PermanentError, TransientError
from platforms.files import file_size
from platforms.youtube_auth import BearerHttp
from platforms.youtube_errors import PLATFORM

QUANTUM = 256 * 1024  # every chunk but the last must be a multiple of this
GONE = (404, 410)  # the session expired or never existed: only then is a new upload started


@dataclass
class UploadJob:
    youtube: Resource
    body: dict[str, Any]
    path: str
    chunksize: int
    intents: IntentLog
    campaign_id: str

    def run(self, http: BearerHttp) -> dict[str, Any]:
        """Upload (or finish uploading) the file; return the video resource (at least its id)."""
        saved = self.intents.load(self.campaign_id, PLATFORM)
        if saved.get("video_id"):
            return {"id": saved["video_id"]}
        size = file_size(self.path)
        if size == 0:
            raise PermanentError(PLATFORM, f"{self.path} is empty", code="emptyFile")
        uri = saved.get("session_uri")
        if uri and saved.get("total_size") != size:
            raise PermanentError(PLATFORM, f"{self.path} is {size} bytes, but its upload started with "
                                           f"{saved.get('total_size')}; the file changed mid-upload",
                                 code="fileChanged")
        for _ in range(2):  # a session that vanishes is replaced once per call, not in a loop
            media = MediaFileUpload(self.path, mimetype=_mimetype(self.path), chunksize=self.chunksize,
                                    resumable=True)
            try:
                request = self.youtube.videos().insert(part="snippet,status", body=self.body,
                                                       media_body=media)
                resource = self._resume(http, request, uri, size) if uri else None
                if resource is None and request.resumable_uri is None:
                    request.resumable_uri = self._initiate(http, request, size)
                while resource is None:
                    _, resource = request.next_chunk(http=http)
            except HttpError as e:
                if e.resp.status not in GONE:
                    raise
                uri = None
                self.intents.save(self.campaign_id, PLATFORM, {})
                continue
            finally:
                media.stream().close()
            self.intents.save(self.campaign_id, PLATFORM, {"video_id": resource["id"]})
            return resource
        raise TransientError(PLATFORM, "YouTube forgot two upload sessions in a row", code="sessionGone")

    def _initiate(self, http: BearerHttp, request: HttpRequest, size: int) -> str:
        """Open the session ourselves (as next_chunk would), so its URI is saved before the first chunk."""
        headers = {**request.headers, "X-Upload-Content-Type": request.resumable.mimetype(),
                   "X-Upload-Content-Length": str(size), "content-length": str(request.body_size)}
        resp, content = http.request(request.uri, method=request.method, body=request.body, headers=headers)
        if resp.status != 200 or "location" not in resp:
            raise ResumableUploadError(resp, content)
        uri = str(resp["location"])
        self.intents.save(self.campaign_id, PLATFORM, {"session_uri": uri, "total_size": size})
        return uri

    def _resume(self, http: BearerHttp, request: HttpRequest, uri: str, size: int) -> dict[str, Any] | None:
        """Ask the saved session how far it got; the video if the upload already completed."""
        resp, content = http.request(uri, method="PUT", headers={"Content-Range": f"bytes */{size}",
                                                                 "content-length": "0"})
        if resp.status in (200, 201):
            return request.postproc(resp, content)  # type: ignore[no-any-return]
        if resp.status != 308:
            raise HttpError(resp, content, uri=uri)  # GONE included: run() starts a new session
        request.resumable_uri = str(resp.get("location", uri))
        if request.resumable_uri != uri:  # the session moved: later retries must ask the new address
            self.intents.save(self.campaign_id, PLATFORM,
                              {"session_uri": request.resumable_uri, "total_size": size})
        # "Range: bytes=0-N" means N+1 bytes arrived; no Range means none did.
        request.resumable_progress = int(resp["range"].split("-")[1]) + 1 if "range" in resp else 0
        return None


def _mimetype(path: str) -> str:
    guessed = mimetypes.guess_type(path)[0]
    return guessed if guessed and guessed.startswith("video/") else "application/octet-stream"
