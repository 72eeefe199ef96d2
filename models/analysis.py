"""The analysis of a campaign: score, platforms, budget split, schedule and per-platform copy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from models.platform import (
    INSTAGRAM_CAPTION_MAX,
    INSTAGRAM_HASHTAGS_MAX,
    TIKTOK_CAPTION_MAX,
    X_POST_MAX,
    YOUTUBE_DESCRIPTION_MAX,
    YOUTUBE_TITLE_MAX,
    Platform,
)

SPLIT_TOLERANCE = 0.01  # one cent
# A schedule computed a moment ago must still validate when it crosses a process boundary.
_GRACE = timedelta(seconds=5)


class PlatformCopy(BaseModel):
    """The words posted on one platform, checked against that platform's limits."""

    model_config = ConfigDict(extra="forbid")

    platform: Platform
    title: str | None = None
    text: str = Field(min_length=1, description="Description (YouTube) or caption (others); X: first post.")
    thread: list[str] = Field(default_factory=list, description="X only: the replies after the first post.")
    hashtags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _within_limits(self) -> PlatformCopy:
        p = self.platform
        if p is Platform.YOUTUBE:
            if not self.title:
                raise ValueError("title: YouTube needs a title")
            if len(self.title) > YOUTUBE_TITLE_MAX:
                raise ValueError(f"title: {len(self.title)} characters, YouTube allows {YOUTUBE_TITLE_MAX}")
            if len(self.text) > YOUTUBE_DESCRIPTION_MAX:
                raise ValueError(f"text: {len(self.text)} characters, YouTube allows {YOUTUBE_DESCRIPTION_MAX}")
        elif p is Platform.TIKTOK and len(self.text) > TIKTOK_CAPTION_MAX:
            raise ValueError(f"text: {len(self.text)} characters, TikTok allows {TIKTOK_CAPTION_MAX}")
        elif p is Platform.INSTAGRAM:
            if len(self.text) > INSTAGRAM_CAPTION_MAX:
                raise ValueError(f"text: {len(self.text)} characters, Instagram allows {INSTAGRAM_CAPTION_MAX}")
            if len(self.hashtags) > INSTAGRAM_HASHTAGS_MAX:
                raise ValueError(f"hashtags: {len(self.hashtags)}, Instagram allows {INSTAGRAM_HASHTAGS_MAX}")
        elif p is Platform.X:
            for i, post in enumerate([self.text, *self.thread]):
                if len(post) > X_POST_MAX:
                    raise ValueError(f"thread[{i}]: {len(post)} characters, X allows {X_POST_MAX} per post")
        if self.thread and p is not Platform.X:
            raise ValueError("thread: only X posts are threads")
        return self


class ScheduledPost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Platform
    at: datetime

    @field_validator("at")
    @classmethod
    def _aware_and_not_past(cls, value: datetime, info: ValidationInfo) -> datetime:
        if value.tzinfo is None:
            raise ValueError("at: give a time zone (e.g. 2026-12-01T18:00:00Z)")
        # The caller may pass the (simulated) current time as validation context.
        now = (info.context or {}).get("now") or datetime.now(UTC)
        if value < now.replace(microsecond=0) - _GRACE:
            raise ValueError(f"at: {value.isoformat()} is in the past; schedule at or after {now.isoformat()}")
        return value


class Analysis(BaseModel):
    """What analyze() decided for one campaign. The split sums to the daily budget."""

    campaign_id: str
    virality_score: float = Field(ge=0, le=1)
    model_version: str
    cold_start: bool = Field(description="True when the model was trained on the simulator, not on outcomes.")
    predicted_engagement: dict[Platform, float] = Field(default_factory=dict)
    recommended_platforms: list[Platform] = Field(min_length=1)
    skipped: dict[Platform, str] = Field(default_factory=dict, description="Platform -> why it was not chosen.")
    daily_budget: float = Field(gt=0)
    budget_split: dict[Platform, float]
    schedule: list[ScheduledPost]
    copy_by_platform: dict[Platform, PlatformCopy] = Field(alias="copy")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> Analysis:
        chosen = set(self.recommended_platforms)
        if set(self.budget_split) - chosen:
            raise ValueError(f"budget_split: has platforms not recommended: {sorted(set(self.budget_split) - chosen)}")
        negative = {p: v for p, v in self.budget_split.items() if v < 0}
        if negative:
            raise ValueError(f"budget_split: amounts must be >= 0, got {negative}")
        total = sum(self.budget_split.values())
        if abs(total - self.daily_budget) > SPLIT_TOLERANCE:
            raise ValueError(f"budget_split: adds up to {total:.2f}, must equal daily_budget {self.daily_budget:.2f}")
        missing_copy = chosen - set(self.copy_by_platform)
        if missing_copy:
            raise ValueError(f"copy: missing for {sorted(missing_copy)}")
        return self

    def plan_for(self, platform: Platform) -> PlatformPlan:
        at = next((s.at for s in self.schedule if s.platform is platform), None)
        return PlatformPlan(
            campaign_id=self.campaign_id,
            platform=platform,
            copy_=self.copy_by_platform[platform],
            scheduled_at=at,
            daily_budget=self.budget_split.get(platform, 0.0),
        )


class PlatformPlan(BaseModel):
    """Everything one publish task needs to know about one platform."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    campaign_id: str
    platform: Platform
    copy_: PlatformCopy = Field(alias="copy")
    scheduled_at: datetime | None = None
    daily_budget: float = Field(ge=0)

    @model_validator(mode="after")
    def _copy_matches(self) -> PlatformPlan:
        if self.copy_.platform is not self.platform:
            raise ValueError(f"copy: written for {self.copy_.platform}, plan is for {self.platform}")
        return self

