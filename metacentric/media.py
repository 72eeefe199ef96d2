"""Stand-in release videos for the sandbox (the fakes hash bytes; they never decode video)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_FTYP = bytes.fromhex("0000001c667479706d703432000000006d7034316d70343269736f6d")  # an MP4 'ftyp' box


def make_demo_video(path: Path, size: int = 2 * 1024 * 1024, seed: str = "demo") -> Path:
    """Write `size` deterministic bytes starting with an MP4 header; each seed gives different content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB of seed-dependent bytes
    with open(path, "wb") as f:
        f.write(_FTYP)
        written = len(_FTYP)
        counter = 0
        while written < size:
            piece = hashlib.sha256(block[:64] + counter.to_bytes(8, "big")).digest() + block
            piece = piece[: size - written]
            f.write(piece)
            written += len(piece)
            counter += 1
    return path
