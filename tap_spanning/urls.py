"""Where the tap may send credentials: the base-URL rules and `nextLink` resolution.

Pure functions only. The API key travels in a Basic auth header on every request,
so every URL the tap requests is checked here first: the configured host must be a
Spanning region host (https) or loopback (the emulator), and a `nextLink` may only
lead back to that same host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, urlencode, urljoin, urlsplit

from typing_extensions import override

REGIONS: tuple[str, ...] = ("us", "eu", "ap", "ca", "uk", "af")
USERS_PATH = "/external/users"
TENANT_PATH = "/external/tenant"
BACKUP_SUMMARY_PATH = "/external/tenant/backups/summary"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ACCEPTED_BASE_PATHS = ("", "/", "/external", "/external/")


class UrlError(ValueError):
    """A URL the tap refuses to send credentials to; the message says why."""


@dataclass(frozen=True)
class Origin:
    """The one scheme, host and port the tap talks to."""

    scheme: str
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    @override
    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"


def region_host(region: str) -> str:
    """The API host of a Spanning region."""
    return f"o365-api-{region}.spanningbackup.com"


def region_of_host(host: str) -> str | None:
    """The region whose API host this is, or None for any other host."""
    for region in REGIONS:
        if host == region_host(region):
            return region
    return None


def is_loopback_host(host: str) -> bool:
    """True for localhost and any 127.0.0.0/8 or ::1 address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split(url: str, what: str) -> tuple[SplitResult, str, int]:
    """Split an http(s) URL and return it with its lower-case host and port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a bad port or bracketed host
        raise UrlError(f"{what} is not a valid URL ({exc})") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise UrlError(f"{what} must be an http(s) URL, not {parts.scheme or 'a bare path'!r}")
    if parts.username is not None or parts.password is not None:
        raise UrlError(f"{what} must not carry a user name or password")
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlError(f"{what} has no host")
    return parts, host, port or _DEFAULT_PORTS[parts.scheme]


def parse_base_url(base_url: str) -> Origin:
    """Check a configured `base_url` and return its origin.

    Accepted: `https://o365-api-<region>.spanningbackup.com` or a loopback URL (http
    allowed there), optionally ending in `/` or `/external`.
    """
    parts, host, port = _split(base_url.strip(), "base_url")
    if parts.path not in _ACCEPTED_BASE_PATHS or parts.query or parts.fragment:
        raise UrlError(
            "base_url must be just the host, optionally followed by /external "
            f"(got path {parts.path!r}); the tap adds {USERS_PATH} itself"
        )
    if is_loopback_host(host):
        return Origin(parts.scheme, host, port)
    if region_of_host(host) is None:
        raise UrlError(
            f"base_url host {host!r} is not a Spanning API host; expected "
            "https://o365-api-<region>.spanningbackup.com with region one of "
            f"{', '.join(REGIONS)} (or a loopback address for the emulator)"
        )
    if parts.scheme != "https" or port != _DEFAULT_PORTS["https"]:
        raise UrlError("base_url must use https on the default port for a Spanning host")
    return Origin("https", host, port)


def region_base_url(region: str) -> str:
    """The base URL of a region."""
    return f"https://{region_host(region)}"


def with_query_defaults(url: str, defaults: dict[str, str]) -> str:
    """`url` with each of `defaults` appended to its query if it lacks that parameter.

    A nextLink is followed as given, but whether it keeps `status`, `start` and `end` is
    unknown (docs/backup-health.md): the ones it lacks are added, the rest untouched.
    """
    query = urlsplit(url).query
    present = {pair.partition("=")[0] for pair in query.split("&") if pair}
    missing = [(name, value) for name, value in defaults.items() if name not in present]
    if not missing:
        return url
    joiner = "&" if query else ("" if url.endswith("?") else "?")
    return url + joiner + urlencode(missing)


def resolve_next_link(link: str, origin: Origin, page_url: str | None = None) -> str:
    """Turn a `nextLink` into the absolute URL to request, or raise UrlError.

    The link is kept verbatim (path and query are not re-encoded). Relative links are
    resolved against the URL of the page that sent them (else the origin). `http://` on
    a non-loopback host is upgraded to https. A link to any other host, port, scheme or
    path is refused, because the request would carry the tenant's credentials.
    """
    absolute = urljoin(page_url or f"{origin}/", link.strip())
    parts, host, port = _split(absolute, "nextLink")
    scheme = parts.scheme
    if scheme == "http" and not origin.is_loopback and host == origin.host:
        # The real host has been seen to hand out http:// links; never follow one
        # in clear text with credentials attached.
        scheme, port = "https", port if parts.port else _DEFAULT_PORTS["https"]
    if (scheme, host, port) != (origin.scheme, origin.host, origin.port):
        raise UrlError(
            f"nextLink points to {scheme}://{host}:{port}, not to the configured "
            f"{origin}; refusing to send credentials there"
        )
    if parts.path != USERS_PATH:
        raise UrlError(f"nextLink points to path {parts.path!r}, not {USERS_PATH}")
    if parts.fragment:
        raise UrlError("nextLink carries a fragment")
    query = f"?{parts.query}" if parts.query else ""
    return f"{origin}{parts.path}{query}"
