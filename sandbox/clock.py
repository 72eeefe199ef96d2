"""The sandbox's simulated clock: real time plus an offset that tests and the demo can advance."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class SimClock:
    def __init__(self, offset_s: float = 0.0) -> None:
        self._offset = offset_s
        self._lock = threading.Lock()

    @property
    def offset_s(self) -> float:
        return self._offset

    def time(self) -> float:
        """Simulated unix time in seconds."""
        return time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("seconds: the clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()
