"""The words posted on each platform, built from the campaign and always within the platform's limits.

Names are cleaned before use: control characters and line breaks become spaces, and `<`/`>` are removed
because YouTube rejects titles and descriptions that contain them. Hashtags keep letters and digits only
(any script). X posts are measured the way X counts (most CJK characters and emoji weigh 2), which is
stricter than the character count the PlatformCopy validator checks.
"""

from __future__ import annotations

import re
import unicodedata

from models.analysis import PlatformCopy
from models.campaign import Campaign
from models.platform import (
    INSTAGRAM_CAPTION_MAX,
    INSTAGRAM_HASHTAGS_MAX,
    TIKTOK_CAPTION_MAX,
    X_POST_MAX,
    YOUTUBE_DESCRIPTION_MAX,
    YOUTUBE_TITLE_MAX,
    Platform,
)

HASHTAG_MAX_CHARS = 40
# YouTube ignores every hashtag of a description that has more than 60; three show above the title.
YOUTUBE_HASHTAGS = 3
TIKTOK_HASHTAGS = 5
INSTAGRAM_HASHTAGS = 12  # well under the 30 Instagram allows: more reads as spam
X_HASHTAGS = 2
_GENERIC_TAGS = ("NewMusic", "MusicVideo", "OutNow")
# X counts these code point ranges as 1 and everything else as 2 (twitter-text v3 configuration).
_X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def clean(text: str) -> str:
    """One line of visible text: control characters and line breaks become spaces; no < or >."""
    visible = "".join(_visible(ch) for ch in unicodedata.normalize("NFC", text))
    return re.sub(r"\s+", " ", visible.replace("<", "").replace(">", "")).strip()


def _visible(ch: str) -> str:
    category = unicodedata.category(ch)
    if category == "Cc" or category[0] == "Z":  # control characters, line and paragraph breaks
        return " "
    # Format characters stay (a zero-width joiner holds an emoji sequence together); unassigned,
    # private-use and lone surrogate code points go.
    return "" if category in ("Cn", "Co", "Cs") else ch


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, at a word boundary when one is near, with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return text[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def hashtag(words: str) -> str:
    """'the weeknd' -> 'TheWeeknd'; letters and digits only; empty if nothing usable (or only digits)."""
    words = unicodedata.normalize("NFC", words)
    parts = ["".join(ch for ch in word if ch.isalnum()) for word in re.split(r"[\s\-_/.&+]+", words)]
    tag = "".join(p[:1].upper() + p[1:] for p in parts if p)[:HASHTAG_MAX_CHARS]
    return "" if tag.isdigit() else tag


def hashtags(campaign: Campaign, limit: int) -> list[str]:
    """Artist, song, genre, then generic music tags; unique ignoring case; at most `limit`."""
    candidates = [hashtag(campaign.artist), hashtag(campaign.song),
                  hashtag(campaign.creative.genre + " music"), *_GENERIC_TAGS]
    unique: dict[str, str] = {}
    for tag in candidates:
        if tag and tag.casefold() not in unique:
            unique[tag.casefold()] = tag
    return list(unique.values())[: min(limit, INSTAGRAM_HASHTAGS_MAX)]


def _names(campaign: Campaign) -> tuple[str, str]:
    return clean(campaign.artist) or "Unknown artist", clean(campaign.song) or "Untitled"


def youtube_title(artist: str, song: str) -> str:
    for title in (f"{artist} - {song} (Official Video)", f"{artist} - {song}"):
        if len(title) <= YOUTUBE_TITLE_MAX:
            return title
    # Both names are long: give each about half, keeping the separator.
    half = (YOUTUBE_TITLE_MAX - 3) // 2
    return f"{shorten(artist, half)} - {shorten(song, YOUTUBE_TITLE_MAX - 3 - min(len(artist), half))}"


def write_copy(campaign: Campaign, platform: Platform) -> PlatformCopy:
    artist, song = _names(campaign)
    released = f" Out {campaign.release_date}." if campaign.release_date else " Out now."
    if platform is Platform.YOUTUBE:
        tags = hashtags(campaign, YOUTUBE_HASHTAGS)
        description = (f"The official video for \"{song}\" by {artist}.{released}\n\n"
                       f"Listen, share and tell us what you think in the comments.\n\n"
                       + " ".join(f"#{t}" for t in tags))
        return PlatformCopy(platform=platform, title=youtube_title(artist, song),
                            text=shorten(description, YOUTUBE_DESCRIPTION_MAX), hashtags=tags)
    if platform in (Platform.TIKTOK, Platform.INSTAGRAM):
        many = TIKTOK_HASHTAGS if platform is Platform.TIKTOK else INSTAGRAM_HASHTAGS
        limit = TIKTOK_CAPTION_MAX if platform is Platform.TIKTOK else INSTAGRAM_CAPTION_MAX
        tags = hashtags(campaign, many)
        tag_line = " ".join(f"#{t}" for t in tags)
        lead = shorten(f"{song} by {artist}.{released} 🎶", limit - len(tag_line) - 2)
        return PlatformCopy(platform=platform, text=f"{lead}\n\n{tag_line}", hashtags=tags)
    tags = hashtags(campaign, X_HASHTAGS)
    body = (f"{song} by {artist} is here.{released} Watch the official video and tell us your favourite "
            f"moment. " + " ".join(f"#{t}" for t in tags))
    first, *rest = split_thread(body)
    return PlatformCopy(platform=platform, text=first, thread=rest, hashtags=tags)


# X threads ----------------------------------------------------------------------------------------
def x_length(text: str) -> int:
    """The length X counts: 1 for Latin and general punctuation, 2 for most else (CJK, emoji)."""
    return sum(1 if any(lo <= ord(ch) <= hi for lo, hi in _X_LIGHT_RANGES) else 2 for ch in text)


def split_thread(text: str, limit: int = X_POST_MAX) -> list[str]:
    """Posts of at most `limit` (as X counts) that join back to `text`: whole sentences where they fit,
    a longer sentence at word boundaries, a longer word wherever it must be cut."""
    posts: list[str] = []
    current = ""
    for piece in _pieces(text.strip(), limit):
        joined = f"{current} {piece}" if current else piece
        if x_length(joined) <= limit:
            current = joined
        else:
            posts.append(current)
            current = piece
    if current:
        posts.append(current)
    return posts or [text[:1] or "…"]


def _pieces(text: str, limit: int) -> list[str]:
    """Sentences; a sentence over the limit becomes words; a word over the limit becomes chunks."""
    pieces: list[str] = []
    for sentence in re.split(r"(?<=[.!?…])\s+", text):
        if x_length(sentence) <= limit:
            pieces.append(sentence)
            continue
        for word in sentence.split():
            while x_length(word) > limit:
                cut = _longest_prefix(word, limit)
                pieces.append(word[:cut])
                word = word[cut:]
            pieces.append(word)
    return [p for p in pieces if p]


def _longest_prefix(word: str, limit: int) -> int:
    total = 0
    for i, ch in enumerate(word):
        total += x_length(ch)
        if total > limit:
            return max(1, i)
    return len(word)
