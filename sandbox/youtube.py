"""PLACEHOLDER: the youtube fake is being written; this file only lets the app import."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sandbox.state import SandboxState


def mount(app: FastAPI, state: SandboxState, config: Any) -> None:
    return None


def published(state: SandboxState) -> list[dict[str, Any]]:
    return []
