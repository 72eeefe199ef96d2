"""What the Instagram fake remembers: media containers, published media and the rolling publishing quota.

Everything lives in the state's JSON namespace "instagram" (so it survives a sandbox restart) and every
time is read from the sandbox's simulated clock. Container status is computed when someone looks at it,
which is also where the async-job faults ("stuck", "failed") are applied.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sandbox.state import SandboxState

PROCESSING_S = 0.5  # sim seconds from "all bytes arrived" to FINISHED
CONTAINER_TTL_S = 86400  # containers expire if not published within 24 h
QUOTA_DURATION_S = 86400  # the publishing limit is a rolling 24 h window
DEFAULT_QUOTA_TOTAL = 100  # docs: 100 API-published posts per 24 h (reference examples show 50)
INSIGHTS_DELAY_S = 3600  # insights are delayed on the real platform (up to 48 h); here one sim hour

# The `status` texts the real API pairs with each status_code.
STATUS_TEXT = {
    "IN_PROGRESS": "In Progress: Media is still being processed.",
    "FINISHED": "Finished: Media has been uploaded and it is ready to be published.",
    "PUBLISHED": "Published: Media has been successfully published.",
    "EXPIRED": "Expired: Media was not published within 24 hours.",
}
FAILED_STATUS = "Error: 2207026: The video format is not supported. Please check spec for supported formats."


def is_user_id(node: str) -> bool:
    """IG professional account ids look like 1784xxxxxxxxxxxxx; the fake accepts any of them."""
    return node.startswith("1784") and node.isdigit()


def ig_time(ts: float) -> str:
    """Instagram's timestamp format: 2026-01-01T10:00:00+0000."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class IgStore:
    def __init__(self, state: SandboxState, limits: dict[str, Any]) -> None:
        self.state = state
        self.default_quota_total = int(limits.get("quota_total", DEFAULT_QUOTA_TOTAL))
        self.processing_s = float(limits.get("processing_s", PROCESSING_S))

    # the namespace -------------------------------------------------------------------------------
    @property
    def ns(self) -> dict[str, Any]:
        return self.state.ns("instagram")

    def containers(self) -> dict[str, dict[str, Any]]:
        return self.ns.setdefault("containers", {})  # type: ignore[no-any-return]

    def media(self) -> dict[str, dict[str, Any]]:
        return self.ns.setdefault("media", {})  # type: ignore[no-any-return]

    def overrides(self) -> dict[str, Any]:
        """Run-time limit overrides set through /_admin/instagram/limits (quota per IG user)."""
        return self.ns.setdefault("overrides", {"quota_total": {}})  # type: ignore[no-any-return]

    def now(self) -> float:
        return self.state.clock.time()

    # quota ---------------------------------------------------------------------------------------
    def quota_total(self, user_id: str) -> int:
        per_user: dict[str, int] = self.overrides()["quota_total"]
        return int(per_user.get(user_id, per_user.get("*", self.default_quota_total)))

    def quota_usage(self, user_id: str, since: float | None = None) -> int:
        start = self.now() - QUOTA_DURATION_S
        if since is not None:
            start = max(start, since)
        return sum(1 for m in self.media().values()
                   if m["user_id"] == user_id and m["published_at"] >= start)

    # containers ----------------------------------------------------------------------------------
    def new_container(self, user_id: str, *, media_type: str, caption: str, share_to_feed: bool,
                      video_url: str | None) -> dict[str, Any]:
        cid = f"17889{int(self.state.new_id()):012d}"
        now = self.now()
        container: dict[str, Any] = {
            "id": cid, "user_id": user_id, "media_type": media_type, "caption": caption,
            "share_to_feed": share_to_feed, "created_at": now,
            "upload_type": "url" if video_url else "resumable", "video_url": video_url,
            # The fake never fetches video_url: such a container starts processing at once.
            "ready_at": now if video_url else None,
            "file_size": None, "received": 0, "sha256": None, "upload_offsets": [],
            "finished": False, "error": None, "media_id": None,
        }
        self.containers()[cid] = container
        return container

    def upload_key(self, c: dict[str, Any]) -> str:
        return f"instagram:{c['id']}"

    def received(self, c: dict[str, Any]) -> int:
        """Bytes received so far. Partial uploads live only in memory: after a sandbox restart they are gone
        and the upload starts again at 0, as an expired session would on the real host."""
        if c["ready_at"] is None and c["received"] and self.upload_key(c) not in self.state.uploads:
            c["received"] = 0
        return int(c["received"])

    def status(self, c: dict[str, Any]) -> str:
        """The container's status_code now; FINISHED and ERROR stick once reached."""
        if c["media_id"]:
            return "PUBLISHED"
        if c["error"]:
            return "ERROR"
        if self.now() - c["created_at"] > CONTAINER_TTL_S:
            return "EXPIRED"
        if c["finished"]:
            return "FINISHED"
        if c["ready_at"] is None or self.now() - c["ready_at"] < self.processing_s:
            return "IN_PROGRESS"
        rule = self.state.faults.pick("instagram", "container.status", kinds=("stuck", "failed"))
        if rule is not None and rule.kind == "stuck":
            return "IN_PROGRESS"
        if rule is not None:
            c["error"] = FAILED_STATUS
            self.state.save()
            return "ERROR"
        c["finished"] = True
        self.state.save()
        return "FINISHED"

    def status_text(self, c: dict[str, Any], code: str) -> str:
        return str(c["error"]) if code == "ERROR" else STATUS_TEXT[code]

    def video_status(self, c: dict[str, Any], code: str) -> dict[str, Any]:
        """Upload/processing progress shaped like Graph's video_status (bytes_transferred: resume here)."""
        complete = c["ready_at"] is not None
        uploading = "complete" if complete else ("in_progress" if self.received(c) else "not_started")
        processing = {"FINISHED": "complete", "PUBLISHED": "complete", "ERROR": "error"}.get(
            code, "in_progress" if complete else "not_started")
        return {"video_status": "ready" if processing == "complete" else ("error" if code == "ERROR" else
                                                                           "processing"),
                "uploading_phase": {"status": uploading, "bytes_transferred": self.received(c)},
                "processing_phase": {"status": processing}}

    # media ---------------------------------------------------------------------------------------
    def publish(self, c: dict[str, Any]) -> dict[str, Any]:
        mid = f"17900{int(self.state.new_id()):012d}"
        now = self.now()
        shortcode = hashlib.sha256(mid.encode()).hexdigest()[:11]
        product = "STORY" if c["media_type"] == "STORIES" else "REELS"
        kind = "stories" if product == "STORY" else "reel"
        m = {"id": mid, "user_id": c["user_id"], "container_id": c["id"], "caption": c["caption"],
             "media_type": "VIDEO", "media_product_type": product, "published_at": now,
             "timestamp": ig_time(now), "sha256": c["sha256"], "size": c["file_size"],
             "video_url": c["video_url"], "shortcode": shortcode,
             "permalink": f"https://www.instagram.com/{kind}/{shortcode}/"}
        self.media()[mid] = m
        c["media_id"] = mid
        self.state.save()
        return m

    def age_days(self, m: dict[str, Any]) -> float:
        return (self.now() - float(m["published_at"])) / 86400.0

    def counters(self, m: dict[str, Any]) -> dict[str, int] | None:
        """Organic counters from the market, or None while insights are not available yet."""
        if self.now() - float(m["published_at"]) < INSIGHTS_DELAY_S:
            return None
        return self.state.market.organic_post("instagram", m["id"], self.age_days(m))
