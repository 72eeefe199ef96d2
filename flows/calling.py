"""Calling a flow from plain code and getting its final state back (typed once, here)."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State


async def final_state(flow_fn: Any, *args: Any, **kwargs: Any) -> State[Any]:
    """Run an async flow to completion and return its final state instead of raising on failure."""
    state: State[Any] = await flow_fn(*args, return_state=True, **kwargs)
    return state
