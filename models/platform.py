"""The publishing platforms and the limits that the models validate against."""

from __future__ import annotations

from enum import StrEnum


class Platform(StrEnum):
    YOUTUBE = "youtube"
    TIKTOK = "tiktok"
    INSTAGRAM = "instagram"
    X = "x"


ALL_PLATFORMS: tuple[Platform, ...] = tuple(Platform)

# Caption/text limits as the platforms document them (characters).
YOUTUBE_TITLE_MAX = 100
YOUTUBE_DESCRIPTION_MAX = 5000
TIKTOK_CAPTION_MAX = 2200
INSTAGRAM_CAPTION_MAX = 2200
INSTAGRAM_HASHTAGS_MAX = 30
X_POST_MAX = 280

CAPTION_LIMITS: dict[Platform, int] = {
    Platform.YOUTUBE: YOUTUBE_DESCRIPTION_MAX,
    Platform.TIKTOK: TIKTOK_CAPTION_MAX,
    Platform.INSTAGRAM: INSTAGRAM_CAPTION_MAX,
    Platform.X: X_POST_MAX,
}
