"""The outcome of publishing to one platform."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator

from models.platform import Platform


class PublishStatus(StrEnum):
    PUBLISHED = "published"
    FAILED = "failed"
    SKIPPED = "skipped"
    SCHEDULED = "scheduled"  # deferred by a quota or rate limit; goes out at `deferred_until`


class PublishResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: str
    platform: Platform
    status: PublishStatus
    post_id: str | None = None
    url: str | None = None
    error: str | None = None
    deferred_until: datetime | None = None
    attempts: int = 1

    @model_validator(mode="after")
    def _fields_match_status(self) -> PublishResult:
        if self.status is PublishStatus.PUBLISHED and not self.post_id:
            raise ValueError("post_id: a published result needs the platform's post id")
        if self.status is PublishStatus.FAILED and not self.error:
            raise ValueError("error: a failed result must say why")
        if self.status is PublishStatus.SCHEDULED and self.deferred_until is None:
            raise ValueError("deferred_until: a scheduled result must say when it goes out")
        return self
