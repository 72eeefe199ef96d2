"""Meta's webhook signature: X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(app secret, raw body)."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of the header against the raw bytes exactly as received."""
    if not secret or not header or not header.startswith("sha256="):
        return False
    # As bytes: compare_digest raises TypeError on non-ASCII str, and the header is whatever the sender sent.
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode("utf-8", "replace"))
