"""Post and ad metrics normalised across platforms. None means "not available yet", never zero."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from models.platform import Platform

Count = int | None


class PostMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: str
    platform: Platform
    post_id: str
    day: date = Field(description="The day these figures describe (cumulative up to the end of it).")
    collected_at: datetime
    views: Count = Field(default=None, ge=0)
    likes: Count = Field(default=None, ge=0)
    comments: Count = Field(default=None, ge=0)
    shares: Count = Field(default=None, ge=0)
    saves: Count = Field(default=None, ge=0)
    watch_time_s: float | None = Field(default=None, ge=0)

    @property
    def available(self) -> bool:
        return self.views is not None

    @property
    def engagement(self) -> int | None:
        parts = [self.likes, self.comments, self.shares, self.saves]
        known = [p for p in parts if p is not None]
        return sum(known) if known else None


class AdMetrics(BaseModel):
    """One day of paid delivery for the ad set that promotes a campaign on one platform (Meta insights)."""

    model_config = ConfigDict(extra="forbid")

    campaign_id: str
    platform: Platform
    day: date
    spend: float = Field(ge=0)
    impressions: int = Field(ge=0)
    video_views: int = Field(ge=0)
    engagements: int = Field(ge=0)
