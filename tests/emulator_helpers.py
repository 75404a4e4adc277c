"""What the emulator's tests share: its default credentials and tenant, and plain HTTP readers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from spanning_emulator import (
    DEFAULT_ADMIN_EMAIL,
    DEFAULT_API_KEY,
    generate_users,
)

AUTH = (DEFAULT_ADMIN_EMAIL, DEFAULT_API_KEY)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
EMULATOR_ROOT = PROJECT_ROOT / "emulator"  # the spanning-emulator project
TENANT = generate_users(230)


def follow_next_links(
    http: requests.Session, url: str
) -> tuple[list[dict[str, object]], list[str]]:
    """Follow nextLink to the end: (users, links followed)."""
    users: list[dict[str, object]] = []
    links: list[str] = []
    while url:
        response = http.get(url, timeout=5)
        assert response.status_code == 200, response.text
        page = response.json()
        users += page["users"]
        url = page.get("nextLink") or ""
        links += [url] if url else []
    return users, links


def get_with_auth(url: str, auth: tuple[str, str] | None, **kwargs: Any) -> requests.Response:
    return requests.get(url, auth=auth, timeout=5, **kwargs)
