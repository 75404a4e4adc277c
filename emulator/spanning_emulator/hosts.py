"""Which hosts the emulator may bind, and what a tenant's location says about its region."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

REGIONS: tuple[str, ...] = ("us", "eu", "ap", "ca", "uk", "af")
_REGION_HOST = re.compile(r"o365-api-([a-z]+)\.spanningbackup\.com")


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (this server must never face a network)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def region_base_url(region: str) -> str:
    """The real regional host, e.g. https://o365-api-eu.spanningbackup.com."""
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}: use one of {', '.join(REGIONS)}")
    return f"https://o365-api-{region}.spanningbackup.com"


def split_location(location: str) -> tuple[str | None, str]:
    """(region, base_url) of a region code, a regional https URL or a loopback URL.

    The base URL loses a trailing '/' or '/external'. ValueError for anything else.
    """
    if location in REGIONS:
        return location, region_base_url(location)
    base_url = location.rstrip("/")
    base_url = base_url.removesuffix("/external").rstrip("/")
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.path or parts.query or parts.fragment:
        raise ValueError(f"{location!r} is not a base URL")
    if parts.scheme in ("http", "https") and is_loopback_host(host):
        return None, base_url
    match = _REGION_HOST.fullmatch(host)
    if (
        parts.scheme == "https"
        and match
        and match.group(1) in REGIONS
        and parts.port in (None, 443)
    ):
        return match.group(1), base_url
    raise ValueError(f"{location!r} is neither a Spanning regional host nor a loopback URL")
