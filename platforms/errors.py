"""One error hierarchy for every platform.

Each platform module translates its own codes and headers into these, once. Retries, deferrals and
re-auth prompts key off the class, never off message text.
"""

from __future__ import annotations

from datetime import datetime


class PlatformError(Exception):
    """Base class. `platform` names who said it; `message` is the platform's own reason."""

    retriable = False

    def __init__(self, platform: str, message: str, *, code: str | None = None) -> None:
        self.platform = platform
        self.message = message
        self.code = code
        super().__init__(f"{platform}: {message}" + (f" [{code}]" if code else ""))


class TransientError(PlatformError):
    """A passing fault (5xx, timeout, dropped connection). Safe to retry after `retry_after` seconds."""

    retriable = True

    def __init__(self, platform: str, message: str, *, retry_after: float | None = None, code: str | None = None):
        super().__init__(platform, message, code=code)
        self.retry_after = retry_after


class RateLimitedError(PlatformError):
    """Too many calls in a short window; the platform said when it frees up."""

    retriable = True

    def __init__(self, platform: str, message: str, *, until: datetime, code: str | None = None):
        super().__init__(platform, message, code=code)
        self.until = until


class QuotaExhaustedError(PlatformError):
    """A daily/rolling quota is spent. Not retried now: the post is deferred until `until`."""

    def __init__(self, platform: str, message: str, *, until: datetime, code: str | None = None):
        super().__init__(platform, message, code=code)
        self.until = until


class AuthExpiredError(PlatformError):
    """The credential is dead and refreshing did not help: a person must re-authorise."""

    def __str__(self) -> str:
        return f"re-auth needed for {self.platform}: {self.message}"


class PermanentError(PlatformError):
    """The request itself is wrong (bad parameter, policy, duplicate). Retrying cannot help."""


class AmbiguousWriteError(PlatformError):
    """A write whose outcome is unknown (the response was lost). Resolve by looking, never by rewriting."""

    retriable = True


def is_retriable(exc: BaseException) -> bool:
    return isinstance(exc, PlatformError) and exc.retriable
