"""The tap's settings, checked before any request is made.

`resolve_settings` turns the raw config mapping into a typed `Settings`, or raises
`SettingsError` listing every mistake. Each message names its setting, and the tenant
when there are several; none echoes a value that could be an API key.

Two forms (README, "Settings" and "Many tenants"):
- one tenant: `admin_email`, `api_key`, `base_url` and/or `region`, optional `tenant_id`;
- a fleet: `tenants`, a list of `{tenant_id, admin_email, region | base_url, api_key?}`,
  with keys from each entry or from the secret `tenant_api_keys` map.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
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
MIN_REQUEST_TIMEOUT = 0.001
DEFAULT_MAX_RETRIES = 5
MAX_RETRIES_LIMIT = 100
DEFAULT_MAX_RETRY_WAIT = 60.0
DEFAULT_MAX_CONCURRENT_TENANTS = 8
MAX_CONCURRENT_TENANTS = 64
# The one-tenant form's tenant_id when none is set (README, "Settings").
DEFAULT_TENANT_ID = "default"
TENANT_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")

# The settings of the one-tenant form, which a fleet sets per tenant instead.
ONE_TENANT_SETTINGS = ("admin_email", "api_key", "base_url", "region", "tenant_id")
TENANT_ENTRY_SETTINGS = ("tenant_id", "admin_email", "api_key", "base_url", "region")
# Every setting `resolve_settings` checks itself (the others are the SDK's).
TAP_SETTINGS = (
    *ONE_TENANT_SETTINGS,
    "tenants",
    "tenant_api_keys",
    "page_size",
    "request_timeout",
    "max_retries",
    "max_retry_wait",
    "max_concurrent_tenants",
)


class SettingsError(ValueError):
    """One or more config mistakes; `errors` holds a message per mistake."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Tenant:
    """One Spanning tenant: whose credentials go to which host."""

    tenant_id: str
    admin_email: str
    api_key: str = field(repr=False)  # never in a repr, log or traceback
    origin: Origin

    @property
    def region(self) -> str | None:
        """The Spanning region of the tenant's host; None for a loopback host."""
        return region_of_host(self.origin.host)


@dataclass(frozen=True)
class Settings:
    """Validated settings: the tenants to sync and how to talk to them."""

    tenants: tuple[Tenant, ...]
    page_size: int
    request_timeout: float
    max_retries: int
    max_retry_wait: float
    max_concurrent_tenants: int
    # Settings that are allowed but worth a warning line each.
    notes: tuple[str, ...] = ()

    @property
    def secret_forms(self) -> list[str]:
        """Every spelling of every tenant's key, for redaction."""
        forms: set[str] = set()
        for tenant in self.tenants:
            forms.update(secret_forms(tenant.admin_email, tenant.api_key))
        return sorted(forms, key=len, reverse=True)


def closest_setting(name: str, known: Sequence[str]) -> str | None:
    """The known setting a misspelt name most likely meant, if any is close."""
    folded = {candidate.replace("_", "").lower(): candidate for candidate in known}
    match = difflib.get_close_matches(name.replace("_", "").lower(), list(folded), n=1, cutoff=0.7)
    return folded[match[0]] if match else None


class _Checker:
    """Collects mistakes; `where` prefixes each (a tenant's entry, or nothing)."""

    def __init__(self, errors: list[str], where: str = "", notes: list[str] | None = None) -> None:
        self.errors = errors
        self.where = where
        # What is allowed but worth a warning.
        self.notes: list[str] = [] if notes is None else notes

    def fail(self, message: str) -> None:
        self.errors.append(f"{self.where}{message}")

    def text(self, config: Mapping[str, Any], name: str, *, required: bool = True) -> str:
        value = config.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(f"{name} is required")
            return ""
        if not isinstance(value, str):
            # Say the type, never the value: this may be the API key.
            self.fail(f"{name} must be a string, not {type(value).__name__}")
            return ""
        try:
            value.encode("latin-1")  # what Basic auth sends
        except UnicodeEncodeError:
            self.fail(
                f"{name} holds a character that cannot be sent in an HTTP header "
                "(a stray character pasted with it?)"
            )
            return ""
        return value.strip()

    def admin_email(self, config: Mapping[str, Any]) -> str:
        email = self.text(config, "admin_email")
        if email and ("@" not in email or ":" in email or " " in email):
            self.fail(
                "admin_email must be the Spanning admin's email address (one '@', no spaces or ':')"
            )
        return email

    def tenant_id(self, config: Mapping[str, Any], *, default: str | None = None) -> str:
        value = config.get("tenant_id")
        if value is None and default is not None:
            return default
        tenant_id = self.text(config, "tenant_id")
        if tenant_id and not TENANT_ID_PATTERN.fullmatch(tenant_id):
            self.fail(
                "tenant_id must be 1 to 64 letters, digits, '.', '_' or '-' "
                f"(got {len(tenant_id)} characters)"
            )
            return ""
        return tenant_id

    def origin(self, config: Mapping[str, Any]) -> Origin | None:
        region = config.get("region")
        base_url = config.get("base_url")
        if region in (None, ""):
            region = None
        elif region not in REGIONS:
            self.fail(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
            return None
        if base_url in (None, ""):
            if region is None:
                self.fail("base_url is required unless region is set")
                return None
            base_url = region_base_url(region)
        if not isinstance(base_url, str):
            self.fail(f"base_url must be a string, not {type(base_url).__name__}")
            return None
        try:
            origin = parse_base_url(base_url)
        except UrlError as exc:
            self.fail(str(exc))
            return None
        if region is not None and origin.is_loopback:
            # The emulator stands in for any region; said, so that a real key sent to a
            # loopback base_url left over from a demo does not go unnoticed.
            self.notes.append(
                f"{self.where}base_url {base_url!r} is a loopback address (the emulator): "
                f"region {region!r} is not used"
            )
        elif region is not None and region_of_host(origin.host) != region:
            self.fail(
                f"region {region!r} does not agree with base_url {base_url!r}; "
                "set only one of them, or make them name the same region"
            )
            return None
        return origin

    def number(
        self,
        config: Mapping[str, Any],
        name: str,
        default: float,
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
            self.fail(f"{name} must be {kind} {bounds}, got {type(value).__name__}")
            return default
        try:
            number = float(value)  # settings from the environment arrive as text
        except (ValueError, OverflowError):
            number = math.nan
        if not math.isfinite(number) or (integer and not number.is_integer()):
            # Never the value itself: a key pasted into the wrong setting would show.
            self.fail(f"{name} must be {kind} {bounds}")
            return default
        if number < low or (high is not None and number > high):
            self.fail(f"{name} must be {bounds}, got {number:g}")
            return default
        return int(number) if integer else number


_TRUE_TEXT = frozenset({"true", "1", "yes", "on"})
_FALSE_TEXT = frozenset({"false", "0", "no", "off"})


def settings_from_environment(
    environ: Mapping[str, str], properties: Mapping[str, Any], prefix: str
) -> dict[str, Any]:
    """The settings given as `<prefix><NAME>` variables, as text.

    Lists and objects are parsed from JSON; a value that is not JSON stays text, for
    `coerce_text_settings` to report by name. Every other value stays text too: the
    checks that follow name the setting when it is wrong, and never echo it.
    """
    found: dict[str, Any] = {}
    for name, schema in properties.items():
        variable = prefix + name.upper().replace("-", "_")
        if variable not in environ:
            continue
        text = environ[variable]
        if _json_type(schema) in ("array", "object"):
            try:
                found[name] = json.loads(text)
            except ValueError:
                found[name] = text
        else:
            found[name] = text
    return found


def _json_type(schema: Mapping[str, Any]) -> str | None:
    kinds = schema.get("type")
    if isinstance(kinds, str):
        return kinds
    if isinstance(kinds, list):
        return next((kind for kind in kinds if kind != "null"), None)
    return None


def coerce_text_settings(config: dict[str, Any], properties: Mapping[str, Any]) -> list[str]:
    """Turn settings given as text into the type their schema declares, in place.

    Returns a message per setting that cannot be turned: it names the setting and
    says what it should be, never what it holds.
    """
    errors: list[str] = []
    for name, value in list(config.items()):
        schema = properties.get(name)
        if not isinstance(value, str) or not isinstance(schema, Mapping):
            continue
        kind = _json_type(schema)
        folded = value.strip().lower()
        if kind == "boolean":
            if folded in _TRUE_TEXT | _FALSE_TEXT:
                config[name] = folded in _TRUE_TEXT
            else:
                errors.append(f"{name} must be true or false")
        elif kind in ("integer", "number"):
            try:
                number = float(folded)
            except ValueError:
                number = math.nan
            whole = kind == "integer"
            if not math.isfinite(number) or (whole and not number.is_integer()):
                errors.append(f"{name} must be {'a whole number' if whole else 'a number'}")
            else:
                config[name] = int(number) if whole else number
        elif kind in ("array", "object"):
            errors.append(f"{name} must be a JSON {'list' if kind == 'array' else 'object'}")
    return errors


def unknown_settings(config: Mapping[str, Any], known: Sequence[str]) -> list[str]:
    """Each setting the tap does not know, with the closest known one when there is one."""
    described = []
    for name in config:
        if name in known:
            continue
        guess = closest_setting(name, known)
        described.append(f"{name[:40]} (did you mean {guess}?)" if guess else name[:40])
    return described


def _tenant_api_keys(config: Mapping[str, Any], check: _Checker) -> dict[str, str]:
    keys = config.get("tenant_api_keys")
    if keys is None:
        return {}
    if not isinstance(keys, Mapping):
        check.fail(
            f"tenant_api_keys must be an object of tenant_id to API key, not {type(keys).__name__}"
        )
        return {}
    good: dict[str, str] = {}
    for tenant_id, key in keys.items():
        if not isinstance(key, str) or not key.strip():
            check.fail(
                f"tenant_api_keys: the key of tenant {tenant_id!r} must be a non-empty string"
            )
        else:
            good[str(tenant_id)] = key
    return good


def _fleet(config: Mapping[str, Any], errors: list[str], notes: list[str]) -> list[Tenant]:
    entries = config.get("tenants")
    check = _Checker(errors, notes=notes)
    if not isinstance(entries, list) or not entries:
        check.fail("tenants must be a non-empty list of {tenant_id, admin_email, region|base_url}")
        return []
    keys = _tenant_api_keys(config, check)
    tenants: list[Tenant] = []
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        label = f"tenants[{index}]"
        if not isinstance(entry, Mapping):
            check.fail(f"{label} must be an object, not {type(entry).__name__}")
            continue
        ident = entry.get("tenant_id")
        if isinstance(ident, str) and ident.strip():
            label = f"{label} ({ident.strip()[:64]})"
        entry_check = _Checker(errors, f"{label}: ", notes)
        for name in entry:
            if name not in TENANT_ENTRY_SETTINGS:
                guess = closest_setting(str(name), TENANT_ENTRY_SETTINGS)
                hint = f" (did you mean {guess}?)" if guess else ""
                entry_check.fail(f"unknown setting {str(name)[:40]!r}{hint}")
        tenant_id = entry_check.tenant_id(entry)
        if tenant_id in first_seen:
            entry_check.fail(
                f"tenant_id {tenant_id!r} is already used by tenants[{first_seen[tenant_id]}]; "
                "each tenant needs its own"
            )
        elif tenant_id:
            first_seen[tenant_id] = index
        admin_email = entry_check.admin_email(entry)
        api_key = entry_check.text(entry, "api_key", required=False)
        mapped = keys.get(tenant_id) if tenant_id else None
        if api_key and mapped is not None and mapped.strip() != api_key:
            entry_check.fail(
                "api_key is set both in the entry and in tenant_api_keys, with different "
                "values; keep one"
            )
        api_key = api_key or (mapped or "").strip()
        if not api_key and tenant_id:
            entry_check.fail(f"api_key is missing: set it in tenant_api_keys[{tenant_id!r}]")
        origin = entry_check.origin(entry)
        if tenant_id and admin_email and api_key and origin is not None:
            tenants.append(Tenant(tenant_id, admin_email, api_key, origin))
    unknown = sorted(set(keys) - set(first_seen))
    if unknown:
        check.fail(
            "tenant_api_keys names tenants that are not in tenants: "
            + ", ".join(repr(name[:64]) for name in unknown[:10])
        )
    return tenants


def _one_tenant(config: Mapping[str, Any], errors: list[str], notes: list[str]) -> list[Tenant]:
    check = _Checker(errors, notes=notes)
    tenant_id = check.tenant_id(config, default=DEFAULT_TENANT_ID)
    admin_email = check.admin_email(config)
    api_key = check.text(config, "api_key")
    origin = check.origin(config)
    if tenant_id and admin_email and api_key and origin is not None:
        return [Tenant(tenant_id, admin_email, api_key, origin)]
    return []


def _all_keys(config: Mapping[str, Any]) -> list[str]:
    """Every key in the config, wherever it sits: used to scrub messages."""
    found: list[str] = []
    candidates: list[Any] = [config.get("api_key")]
    entries = config.get("tenants")
    if isinstance(entries, list):
        candidates += [entry.get("api_key") for entry in entries if isinstance(entry, Mapping)]
    keys = config.get("tenant_api_keys")
    if isinstance(keys, Mapping):
        candidates += list(keys.values())
    for key in candidates:
        if isinstance(key, str) and key.strip():
            found += secret_forms("", key.strip())
    return sorted(set(found), key=len, reverse=True)


def resolve_settings(config: Mapping[str, Any]) -> Settings:
    """Check every setting; raise SettingsError naming each one that is wrong."""
    errors: list[str] = []
    notes: list[str] = []
    check = _Checker(errors, notes=notes)
    fleet = config.get("tenants") is not None
    if fleet:
        both = [name for name in ONE_TENANT_SETTINGS if config.get(name) not in (None, "")]
        if both:
            check.fail(
                f"tenants is set, and so is {', '.join(both)}: use either the one-tenant "
                "settings or the tenants list, not both"
            )
        tenants = _fleet(config, errors, notes)
    else:
        if config.get("tenant_api_keys") is not None:
            check.fail("tenant_api_keys goes with tenants; one tenant's key is api_key")
        tenants = _one_tenant(config, errors, notes)
    page_size = check.number(
        config, "page_size", MAX_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE, integer=True
    )
    timeout = check.number(
        config, "request_timeout", DEFAULT_REQUEST_TIMEOUT, low=MIN_REQUEST_TIMEOUT
    )
    retries = check.number(
        config, "max_retries", DEFAULT_MAX_RETRIES, low=1, high=MAX_RETRIES_LIMIT, integer=True
    )
    max_wait = check.number(config, "max_retry_wait", DEFAULT_MAX_RETRY_WAIT, low=0)
    concurrency = check.number(
        config,
        "max_concurrent_tenants",
        DEFAULT_MAX_CONCURRENT_TENANTS,
        low=1,
        high=MAX_CONCURRENT_TENANTS,
        integer=True,
    )
    if errors or not tenants:
        # A key pasted into the wrong setting would be echoed by that setting's message.
        secrets = _all_keys(config)
        raise SettingsError([redact(error, secrets) for error in errors] or ["no tenant to sync"])
    return Settings(
        tenants=tuple(tenants),
        page_size=int(page_size),
        request_timeout=float(timeout),
        max_retries=int(retries),
        max_retry_wait=float(max_wait),
        max_concurrent_tenants=int(concurrency),
        notes=tuple(notes),
    )
