"""Reading upload files in chunks so memory stays flat whatever the file size."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator

import anyio

READ_BLOCK = 1024 * 1024


def file_size(path: str) -> int:
    return os.path.getsize(path)


def iter_range(path: str, start: int, length: int, block: int = READ_BLOCK) -> Iterator[bytes]:
    """Yield bytes [start, start+length) of the file in blocks of at most `block`."""
    with open(path, "rb") as f:
        f.seek(start)
        left = length
        while left > 0:
            piece = f.read(min(block, left))
            if not piece:
                raise OSError(f"{path} ended {left} bytes early; was it changed during the upload?")
            left -= len(piece)
            yield piece


async def aiter_range(path: str, start: int, length: int, block: int = READ_BLOCK) -> AsyncIterator[bytes]:
    """Async twin of iter_range for httpx streaming bodies (reads happen in a worker thread)."""
    async with await anyio.open_file(path, "rb") as f:
        await f.seek(start)
        left = length
        while left > 0:
            piece = await f.read(min(block, left))
            if not piece:
                raise OSError(f"{path} ended {left} bytes early; was it changed during the upload?")
            left -= len(piece)
            yield piece


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    for piece in iter_range(path, 0, file_size(path)):
        h.update(piece)
    return h.hexdigest()
