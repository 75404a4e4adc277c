"""The tap's settings, checked before any request is made.

`resolve_settings` turns the raw config mapping into a typed `Settings`, or raises
`SettingsError` listing every mistake, each naming its setting. Messages never echo
the API key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tap_spanning.redaction import redact, secret_forms
from tap_spanning.urls import (
    REGIONS,
    Origin,
    UrlError,
    parse_base_url,
    region_base_url,
    region_of_host,
)

MAX_PAGE_SIZE = 1000
DEFAULT_REQUEST_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_RETRY_WAIT = 60.0


class SettingsError(ValueError):
    """One or more config mistakes; `errors` holds a message per mistake."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Settings:
    """Validated settings."""

    admin_email: str
    api_key: str = field(repr=False)  # never in a repr, log or traceback
    origin: Origin
    page_size: int
    request_timeout: float
    max_retries: int
    max_retry_wait: float


def _text(config: Mapping[str, Any], name: str, errors: list[str]) -> str:
    value = config.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.append(f"{name} is required")
        return ""
    if not isinstance(value, str):
        # Say the type, never the value: this may be the API key.
        errors.append(f"{name} must be a string, not {type(value).__name__}")
        return ""
    try:
        value.encode("latin-1")  # what Basic auth sends
    except UnicodeEncodeError:
        errors.append(
            f"{name} holds a character that cannot be sent in an HTTP header "
            "(a stray character pasted with it?)"
        )
        return ""
    return value.strip()


def _number(
    config: Mapping[str, Any],
    name: str,
    default: float,
    errors: list[str],
    *,
    low: float,
    high: float | None = None,
    integer: bool = False,
) -> float:
    value = config.get(name)
    if value is None:
        return default
    kind = "a whole number" if integer else "a number"
    bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        errors.append(f"{name} must be {kind} {bounds}, got {type(value).__name__}")
        return default
    try:
        number = float(value)  # settings from env vars or meltano may arrive as text
    except (ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number) or (integer and not number.is_integer()):
        errors.append(f"{name} must be {kind} {bounds}, got {value!r}")
        return default
    if number < low or (high is not None and number > high):
        errors.append(f"{name} must be {bounds}, got {value!r}")
        return default
    return int(number) if integer else number


def _origin(config: Mapping[str, Any], errors: list[str]) -> Origin | None:
    region = config.get("region")
    base_url = config.get("base_url")
    if region in (None, ""):
        region = None
    elif region not in REGIONS:
        errors.append(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
        return None
    if base_url in (None, ""):
        if region is None:
            errors.append("base_url is required unless region is set")
            return None
        base_url = region_base_url(region)
    if not isinstance(base_url, str):
        errors.append(f"base_url must be a string, not {type(base_url).__name__}")
        return None
    try:
        origin = parse_base_url(base_url)
    except UrlError as exc:
        errors.append(str(exc))
        return None
    if region is not None and not origin.is_loopback and region_of_host(origin.host) != region:
        errors.append(
            f"region {region!r} does not agree with base_url {base_url!r}; "
            "set only one of them, or make them name the same region"
        )
        return None
    return origin


def resolve_settings(config: Mapping[str, Any]) -> Settings:
    """Check every setting; raise SettingsError naming each one that is wrong."""
    errors: list[str] = []
    admin_email = _text(config, "admin_email", errors)
    if admin_email and ("@" not in admin_email or ":" in admin_email or " " in admin_email):
        errors.append(
            "admin_email must be the Spanning admin's email address (one '@', no spaces or ':')"
        )
    api_key = _text(config, "api_key", errors)
    origin = _origin(config, errors)
    page_size = _number(
        config, "page_size", MAX_PAGE_SIZE, errors, low=1, high=MAX_PAGE_SIZE, integer=True
    )
    timeout = _number(config, "request_timeout", DEFAULT_REQUEST_TIMEOUT, errors, low=0.001)
    retries = _number(
        config, "max_retries", DEFAULT_MAX_RETRIES, errors, low=1, high=100, integer=True
    )
    max_wait = _number(config, "max_retry_wait", DEFAULT_MAX_RETRY_WAIT, errors, low=0)
    if errors or origin is None:
        # A key pasted into the wrong setting would be echoed by that setting's message.
        key = config.get("api_key")
        if isinstance(key, str) and key.strip():
            errors = [redact(error, secret_forms(admin_email, key.strip())) for error in errors]
        raise SettingsError(errors)
    return Settings(
        admin_email=admin_email,
        api_key=api_key,
        origin=origin,
        page_size=int(page_size),
        request_timeout=float(timeout),
        max_retries=int(retries),
        max_retry_wait=float(max_wait),
    )
