"""An incremental multipart/form-data reader, so a media segment is hashed as it arrives, never held whole.

(python-multipart is not installed, and starlette's request.form() would spool the segment to disk.)
Feed it the body piece by piece; it returns events:
("part", (name, filename)), ("data", bytes), ("end", None).
"""

from __future__ import annotations

import re
from typing import Any

MAX_HEADER_BYTES = 16 * 1024
_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)="?([^";]*)"?')


class FormError(ValueError):
    """The body is not well-formed multipart/form-data."""


def boundary_of(content_type: str) -> bytes:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise FormError("expected Content-Type: multipart/form-data")
    found = dict((k.lower(), v) for k, v in _PARAM.findall(";" + params))
    boundary = str(found.get("boundary", ""))
    if not boundary or len(boundary) > 70:
        raise FormError("multipart/form-data needs a boundary of 1 to 70 characters")
    return boundary.encode("latin-1")


def _disposition(raw_headers: bytes) -> tuple[str, str | None]:
    for line in raw_headers.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-disposition":
            params = dict((k.lower(), v) for k, v in _PARAM.findall(value))
            if "name" in params:
                return params["name"], params.get("filename")
    raise FormError("a part has no Content-Disposition name")


class MultipartReader:
    def __init__(self, boundary: bytes) -> None:
        # Prefix the body with CRLF so the first delimiter looks like every other one.
        self._delim = b"\r\n--" + boundary
        self._buf = bytearray(b"\r\n")
        self._state = "preamble"

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, piece: bytes) -> list[tuple[str, Any]]:
        self._buf += piece
        events: list[tuple[str, Any]] = []
        while self._step(events):
            pass
        return events

    def close(self) -> None:
        if self._state != "done":
            raise FormError("the multipart body ended before its closing boundary")

    def _step(self, events: list[tuple[str, Any]]) -> bool:
        """Advance as far as the buffer allows; False when more bytes are needed."""
        buf, delim = self._buf, self._delim
        if self._state == "preamble":
            at = buf.find(delim)
            if at < 0:
                del buf[: max(0, len(buf) - len(delim))]
                return False
            del buf[: at + len(delim)]
            self._state = "after_delim"
            return True
        if self._state == "after_delim":
            if len(buf) < 2:
                return False
            if buf[:2] == b"--":
                self._state = "done"
                buf.clear()
                return False
            eol = buf.find(b"\r\n")  # transport padding may sit before the CRLF
            if eol < 0:
                if len(buf) > 256:
                    raise FormError("garbage after a boundary")
                return False
            del buf[: eol + 2]
            self._state = "headers"
            return True
        if self._state == "headers":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise FormError("part headers too long")
                return False
            events.append(("part", _disposition(bytes(buf[:end]))))
            del buf[: end + 4]
            self._state = "data"
            return True
        if self._state == "data":
            at = buf.find(delim)
            if at >= 0:
                if at:
                    events.append(("data", bytes(buf[:at])))
                events.append(("end", None))
                del buf[: at + len(delim)]
                self._state = "after_delim"
                return True
            keep = len(delim) - 1  # a delimiter may straddle two pieces
            if len(buf) > keep:
                events.append(("data", bytes(buf[: len(buf) - keep])))
                del buf[: len(buf) - keep]
            return False
        buf.clear()  # epilogue after the closing boundary is ignored
        return False
