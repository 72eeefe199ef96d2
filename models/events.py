"""Inbound events: Meta's ad-account webhook, the seed's campaign-created payload and one-call launch."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.platform import ALL_PLATFORMS, Platform


class MetaChange(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str
    value: dict[str, Any] = Field(default_factory=dict)

    def campaign_to_launch(self) -> str | None:
        """The campaign id this change asks us to launch, or None if it is not a launch signal."""
        if self.field == "in_process_ad_objects" and str(self.value.get("level", "")).upper() == "CAMPAIGN":
            return str(self.value["id"]) if self.value.get("id") else None
        if self.field == "field_changed" and str(self.value.get("object_type", "")).lower() == "campaign":
            return str(self.value["object_id"]) if self.value.get("object_id") else None
        return None


class MetaEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    time: int
    changes: list[MetaChange] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_string(cls, value: Any) -> str:
        return str(value)


class MetaWebhook(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: Literal["ad_account"]
    entry: list[MetaEntry] = Field(min_length=1)


class CampaignCreated(BaseModel):
    """The seed's POST /webhook/campaign-created payload."""

    model_config = ConfigDict(extra="allow")

    campaign_id: str = Field(min_length=1)
    campaign_name: str | None = None
    daily_budget: float | None = Field(default=None, gt=0)

    @field_validator("campaign_id", mode="before")
    @classmethod
    def _id_as_string(cls, value: Any) -> str:
        return str(value)


class CreateWithOrchestration(BaseModel):
    """The seed's one-call launch: create the Meta campaign and launch it everywhere."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=400)
    daily_budget: float = Field(ge=10, description="Daily budget in major units (at least 10).")
    artist_name: str = Field(min_length=1, max_length=200)
    song_name: str = Field(min_length=1, max_length=200)
    platforms: list[Platform] = Field(default_factory=lambda: list(ALL_PLATFORMS), min_length=1)
    auto_optimize: bool = True
    objective: str = "OUTCOME_ENGAGEMENT"
    targeting: dict[str, Any] | None = None
    creative: dict[str, Any] | None = None
