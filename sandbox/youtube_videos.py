"""Videos as the YouTube fake keeps them, and how they look on the wire (the video resource).

A video's state is derived from the sim clock on every read rather than advanced by a timer:
uploaded -> processed `processing_s` after the upload, private -> public at `publishAt`, and organic
counters from the market by the video's age since it became watchable.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from sandbox.state import MediaSink, SandboxState
from sandbox.youtube_common import NS, limits, rfc3339

# Categories a video may be filed under (the assignable ones of videoCategories.list, region US).
ASSIGNABLE_CATEGORIES = {"1", "2", "10", "15", "17", "19", "20", "22", "23", "24", "25", "26", "27", "28",
                         "29"}
PARTS = {"id", "snippet", "status", "statistics", "processingDetails"}
# Real parts the fake accepts but leaves out of its answers.
QUIET_PARTS = {"contentDetails", "fileDetails", "player", "recordingDetails", "topicDetails", "localizations",
               "liveStreamingDetails", "paidProductPlacementDetails", "suggestions"}


def videos(state: SandboxState) -> dict[str, dict[str, Any]]:
    return state.ns(NS).setdefault("videos", {})  # type: ignore[no-any-return]


def _new_video_id(state: SandboxState) -> str:
    """11 URL-safe characters, like YouTube's ids."""
    existing = videos(state)
    while True:
        n = state.new_id()
        digest = hashlib.sha256(f"youtube-video|{state.seed}|{n}".encode()).digest()
        vid = base64.urlsafe_b64encode(digest).decode()[:11]
        if vid not in existing:
            return vid


def create_video(state: SandboxState, meta: dict[str, Any], owner: dict[str, str],
                 sink: MediaSink) -> dict[str, Any]:
    """Turn a completed upload into a video; "stuck"/"failed" faults on videos.processing decide its fate."""
    rule = state.faults.pick(NS, "videos.processing", kinds=("stuck", "failed"))
    video = {**meta, "id": _new_video_id(state), "channel": owner["channel"], "project": owner["project"],
             "created_at": state.clock.time(), "size": sink.size, "sha256": sink.sha256,
             "outcome": rule.kind if rule is not None else "ok"}
    videos(state)[video["id"]] = video
    state.save()
    return video


# Derived state ----------------------------------------------------------------------------------------------
def processed_at(state: SandboxState, video: dict[str, Any]) -> float | None:
    if video["outcome"] != "ok":
        return None
    return float(video["created_at"]) + float(limits(state)["processing_s"])


def privacy(video: dict[str, Any], now: float) -> str:
    if video["privacy"] == "private" and video.get("publish_at") is not None and now >= video["publish_at"]:
        return "public"  # the scheduled time has come
    return str(video["privacy"])


def live_at(state: SandboxState, video: dict[str, Any]) -> float | None:
    """When viewers could first watch the video (processed and not private), or None if not (yet) planned."""
    done = processed_at(state, video)
    if done is None:
        return None
    if video["privacy"] != "private":
        return done
    if video.get("publish_at") is None:
        return None
    return max(done, float(video["publish_at"]))


def counters(state: SandboxState, video: dict[str, Any], at: float) -> dict[str, int]:
    """Cumulative organic counters of the video at sim time `at` (zeros before it was watchable)."""
    start = live_at(state, video)
    age_days = 0.0 if start is None or at <= start else (at - start) / 86400
    return state.market.organic_post("youtube", video["id"], age_days)


# The video resource -----------------------------------------------------------------------------------------
def render(state: SandboxState, video: dict[str, Any], parts: set[str]) -> dict[str, Any]:
    now = state.clock.time()
    body: dict[str, Any] = {"kind": "youtube#video", "id": video["id"]}
    if "snippet" in parts:
        body["snippet"] = _snippet(video)
    if "status" in parts:
        body["status"] = _status(state, video, now)
    if "processingDetails" in parts:
        body["processingDetails"] = _processing(state, video, now)
    if "statistics" in parts:
        c = counters(state, video, now)
        # uint64 values arrive as JSON strings, as the real API sends them.
        body["statistics"] = {"viewCount": str(c["views"]), "likeCount": str(c["likes"]), "dislikeCount": "0",
                              "favoriteCount": "0", "commentCount": str(c["comments"])}
    body["etag"] = hashlib.sha1(repr(sorted(body.items())).encode()).hexdigest()[:27]
    return body


def _snippet(video: dict[str, Any]) -> dict[str, Any]:
    snippet: dict[str, Any] = {
        "publishedAt": rfc3339(video["created_at"]), "channelId": video["channel"], "title": video["title"],
        "description": video["description"],
        "thumbnails": {"default": {"url": f"https://i.ytimg.com/vi/{video['id']}/default.jpg", "width": 120,
                                   "height": 90}},
        "channelTitle": "Sandbox Channel", "categoryId": video["category_id"], "liveBroadcastContent": "none",
        "localized": {"title": video["title"], "description": video["description"]},
    }
    if video["tags"]:
        snippet["tags"] = list(video["tags"])
    return snippet


def _status(state: SandboxState, video: dict[str, Any], now: float) -> dict[str, Any]:
    done = processed_at(state, video)
    status: dict[str, Any] = {
        "uploadStatus": "failed" if video["outcome"] == "failed" else
        "processed" if done is not None and now >= done else "uploaded",
        "privacyStatus": privacy(video, now), "license": "youtube", "embeddable": True,
        "publicStatsViewable": True, "madeForKids": bool(video["made_for_kids"]),
        "selfDeclaredMadeForKids": bool(video["made_for_kids"]),
    }
    if video["outcome"] == "failed":
        status["failureReason"] = "conversion"
    if status["privacyStatus"] == "private" and video.get("publish_at") is not None:
        status["publishAt"] = rfc3339(video["publish_at"])
    return status


def _processing(state: SandboxState, video: dict[str, Any], now: float) -> dict[str, Any]:
    if video["outcome"] == "failed":
        return {"processingStatus": "failed", "processingFailureReason": "transcodeFailed"}
    done = processed_at(state, video)
    if done is not None and now >= done:
        return {"processingStatus": "succeeded"}
    total = 1000
    span = float(limits(state)["processing_s"]) or 1.0
    part = 0 if done is None else min(total - 1, int(total * (now - video["created_at"]) / span))
    left = 0 if done is None else max(0, int((done - now) * 1000))
    return {"processingStatus": "processing",
            "processingProgress": {"partsTotal": str(total), "partsProcessed": str(part),
                                   "timeLeftMs": str(left)}}


def parse_rfc3339(value: str) -> float:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed.timestamp()
