"""Everything the sandbox remembers, in one object shared by every platform router.

Each platform keeps plain JSON-able data under `state.data[<platform>]`, so the whole sandbox (campaigns,
posts, quotas, clock) can be written to a state file and read back after a restart. In-flight upload
hashes are the one thing not persisted: an upload interrupted by a restart must start a new session,
as an expired session does on the real platforms.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any

from sandbox.clock import SimClock
from sandbox.faults import FaultRule, Faults
from sandbox.market import Market


class MediaSink:
    """Receives uploaded bytes in pieces and keeps only their size and SHA-256."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class SandboxState:
    def __init__(self, state_file: Path | None = None, *, seed: int = 0) -> None:
        self.state_file = state_file
        self.lock = threading.RLock()
        self.clock = SimClock()
        self.faults = Faults(seed=seed)
        self.market = Market(seed=seed)
        self.data: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, MediaSink] = {}  # live upload sessions; not persisted
        self._ids = itertools.count(1)
        self.seed = seed
        if state_file is not None and state_file.exists():
            self._load(state_file)

    def ns(self, platform: str) -> dict[str, Any]:
        """The platform's own namespace of persisted data."""
        return self.data.setdefault(platform, {})

    def new_id(self, prefix: str = "") -> str:
        with self.lock:
            n = next(self._ids)
            self.ns("_sandbox")["next_id"] = n + 1
        return f"{prefix}{n}"

    def save(self) -> None:
        """Write the state file atomically (no-op without one)."""
        if self.state_file is None:
            return
        with self.lock:
            payload = {
                "clock_offset_s": self.clock.offset_s,
                "faults": [r.model_dump() for r in self.faults.rules()],
                "market": self.market.to_dict(),
                "data": self.data,
            }
            tmp = self.state_file.with_suffix(".tmp")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(payload, default=str))
            os.replace(tmp, self.state_file)

    def _load(self, path: Path) -> None:
        payload = json.loads(path.read_text())
        self.clock = SimClock(payload.get("clock_offset_s", 0.0))
        self.faults.set([FaultRule.model_validate(r) for r in payload.get("faults", [])])
        self.market = Market.from_dict(payload.get("market", {}))
        self.data = payload.get("data", {})
        self._ids = itertools.count(self.ns("_sandbox").get("next_id", 1))
