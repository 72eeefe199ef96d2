"""A music-release campaign as Metacentric understands it (Meta fields plus the release's metadata)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.platform import ALL_PLATFORMS, Platform

Money = Annotated[float, Field(gt=0, description="Amount in the campaign's currency (major units).")]

META_OBJECTIVES = (
    "OUTCOME_AWARENESS",
    "OUTCOME_TRAFFIC",
    "OUTCOME_ENGAGEMENT",
    "OUTCOME_LEADS",
    "OUTCOME_SALES",
    "OUTCOME_APP_PROMOTION",
)


class Targeting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    countries: list[str] = Field(default_factory=lambda: ["US"], min_length=1)
    age_min: int = Field(default=18, ge=13, le=65)
    age_max: int = Field(default=65, ge=13, le=65)
    interests: list[str] = Field(default_factory=list)
    audience_size: int = Field(default=1_000_000, gt=0)
    timezone: str = "America/New_York"

    @field_validator("countries")
    @classmethod
    def _iso_countries(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if len(c) != 2 or not c.isalpha()]
        if bad:
            raise ValueError(f"use two-letter ISO country codes, got {bad}")
        return [c.upper() for c in value]


class Creative(BaseModel):
    """The release's video: a local path (uploaded by the clients) plus what the model needs to know."""

    model_config = ConfigDict(extra="forbid")

    video_path: str = Field(min_length=1)
    duration_s: float = Field(default=30.0, gt=0, le=3600)
    aspect_ratio: str = Field(default="9:16", pattern=r"^\d+:\d+$")
    genre: str = "pop"


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="The Meta campaign id (a numeric string).")
    name: str = Field(min_length=1, max_length=400)
    artist: str = Field(min_length=1, max_length=200)
    song: str = Field(min_length=1, max_length=200)
    daily_budget: Money
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    objective: str = "OUTCOME_ENGAGEMENT"
    targeting: Targeting = Field(default_factory=Targeting)
    creative: Creative
    platforms: list[Platform] = Field(default_factory=lambda: list(ALL_PLATFORMS), min_length=1)
    release_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    artist_followers: dict[Platform, int] = Field(default_factory=dict)
    status: str = "ACTIVE"

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, value: str) -> str:
        if value not in META_OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(META_OBJECTIVES)}")
        return value

    @field_validator("platforms")
    @classmethod
    def _unique_platforms(cls, value: list[Platform]) -> list[Platform]:
        if len(set(value)) != len(value):
            raise ValueError("each platform may be listed once")
        return value
