"""What the emulator sends: content types, compact JSON, and a response to send."""

from __future__ import annotations

import json
from dataclasses import dataclass

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


def dumps(value: object) -> bytes:
    """Compact UTF-8 JSON, as the API sends it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Response:
    """A status, a body and its headers; Content-Length is added when it is sent."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()
