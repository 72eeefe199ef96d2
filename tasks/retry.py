"""Retry policy shared by every platform task: retry only what platforms.errors calls retriable."""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from platforms.errors import is_retriable

PLATFORM_RETRIES = 3
PLATFORM_RETRY_DELAYS = exponential_backoff(backoff_factor=1)
PLATFORM_RETRY_JITTER = 0.5


def retry_if_retriable(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry_condition_fn: True only for transient, rate-limited and ambiguous platform errors."""
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):  # the engine hands us Failed(data=<the task's exception>)
        return is_retriable(data)
    try:
        state.result()
    except Exception as exc:  # the task's own exception, re-raised by result()
        return is_retriable(exc)
    return False
