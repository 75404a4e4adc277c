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
from pathlib import Path
from typing import Any

from tap_spanning.json_files import json_file
from tap_spanning.redaction import redact, secret_forms
from tap_spanning.urls import (
    REGIONS,
    Origin,
    UrlError,
    parse_base_url,
    region_base_url,
    region_of_host,
)

# Settings from the environment: TAP_SPANNING_<NAME> (with --config=ENV).
ENV_PREFIX = "TAP_SPANNING_"
MAX_PAGE_SIZE = 1000
DEFAULT_REQUEST_TIMEOUT = 60.0
MIN_REQUEST_TIMEOUT = 0.001
DEFAULT_MAX_RETRIES = 5
MAX_RETRIES_LIMIT = 100
DEFAULT_MAX_RETRY_WAIT = 60.0
DEFAULT_MAX_CONCURRENT_TENANTS = 8
# Spanning keeps a week of backup status (README, "Backup health").
MAX_BACKUP_DAYS = 7
MAX_CONCURRENT_TENANTS = 64
# The one-tenant form's tenant_id when none is set (README, "Settings").
DEFAULT_TENANT_ID = "default"
TENANT_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")

# What a failed tenant does to the run (README, "Many tenants"): the `failure_mode` values.
STRICT, ISOLATE, NIGHTLY = "strict", "isolate", "nightly"
FAILURE_MODES = (STRICT, ISOLATE, NIGHTLY)
# The longest API key accepted: a GUID has 36 characters; room for other token forms,
# none for a file pasted into the setting.
MAX_KEY_LENGTH = 256
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")

# The settings of the one-tenant form, which a fleet sets per tenant instead.
ONE_TENANT_SETTINGS = ("admin_email", "api_key", "base_url", "region", "tenant_id")
TENANT_ENTRY_SETTINGS = ("tenant_id", "admin_email", "api_key", "base_url", "region")


def _setting(
    kind: str, *, required: bool = False, secret: bool = False, **annotations: Any
) -> dict[str, Any]:
    """One setting's JSON schema, as singer_sdk.typing writes it.

    Written out here because the settings are checked before the SDK is loaded (the
    head start, head_start.py): importing any part of singer_sdk loads all of it.
    """
    schema: dict[str, Any] = {"type": [kind] if required else [kind, "null"], **annotations}
    if secret:  # what tools such as Meltano hide
        schema |= {"secret": True, "writeOnly": True}
    return schema


_TENANT_ENTRY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tenant_id": _setting(
            "string", required=True, description="Stable id, 1-64 of A-Z a-z 0-9 . _ -"
        ),
        "admin_email": _setting(
            "string", required=True, description="The tenant's Spanning admin"
        ),
        "region": _setting("string", enum=list(REGIONS)),
        "base_url": _setting("string"),
        "api_key": _setting("string", secret=True, description="Else from tenant_api_keys"),
    },
    "required": ["tenant_id", "admin_email"],
    "additionalProperties": True,
}

# The tap's settings, as `--about` shows them and Meltano declares them (meltano.yml,
# checked by tests/test_meltano_settings.py). The SDK adds its own (stream maps, BATCH...).
CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "admin_email": _setting(
            "string",
            title="Admin email",
            description=(
                "Email of the Spanning admin who owns the API token (Basic auth user). "
                "One-tenant form; a fleet sets it per tenant."
            ),
        ),
        "api_key": _setting(
            "string",
            secret=True,
            title="API key",
            description="Token from Settings > API Token in the Spanning admin console.",
        ),
        "base_url": _setting(
            "string",
            title="Base URL",
            description=(
                "https://o365-api-<region>.spanningbackup.com (a trailing / or /external is "
                "fine), or a loopback URL for the emulator. Required unless region is set."
            ),
        ),
        "region": _setting(
            "string",
            enum=list(REGIONS),
            description="Spanning region; builds base_url, and must agree with it if both are set.",
        ),
        "tenant_id": _setting(
            "string",
            description=(
                f"The one tenant's id in every record (default {DEFAULT_TENANT_ID!r}); "
                "1-64 of A-Z a-z 0-9 . _ -"
            ),
        ),
        "tenants": _setting(
            "array",
            items=_TENANT_ENTRY,
            # Secret as a whole: an entry may hold its key, and tools (Meltano) can only
            # hide a whole setting.
            secret=True,
            description=(
                "Many tenants in one run: {tenant_id, admin_email, region or base_url, "
                "api_key (else tenant_api_keys)}. Not with the one-tenant settings."
            ),
        ),
        "tenant_api_keys": _setting(
            "object",
            properties={},
            additionalProperties={"type": ["string"]},
            secret=True,
            description="The tenants' API keys: an object of tenant_id to key.",
        ),
        "max_concurrent_tenants": _setting(
            "integer",
            minimum=1,
            maximum=MAX_CONCURRENT_TENANTS,
            default=DEFAULT_MAX_CONCURRENT_TENANTS,
            description="Tenants fetched at once.",
        ),
        "tenants_file": _setting(
            "string",
            description=(
                "A JSON file holding the tenants list, instead of tenants: a fleet of any "
                "size (one environment variable holds at most 128 KiB)."
            ),
        ),
        "tenant_api_keys_file": _setting(
            "string",
            description=(
                "A JSON file holding the tenant_api_keys object (tenant_id to key), instead "
                "of tenant_api_keys."
            ),
        ),
        "failure_mode": _setting(
            "string",
            enum=list(FAILURE_MODES),
            default=STRICT,
            description=(
                "strict: a tenant whose credentials are refused stops the run before any "
                "record (so `meltano config test` fails, naming it), and any failed tenant "
                "exits 1. isolate: every failure fails its tenant alone; exit 1 when any "
                "failed. nightly: as isolate, but exit 0 while at least one tenant "
                'completed, so the loader and dbt run every night (README, "Many tenants").'
            ),
        ),
        "backup_days": _setting(
            "integer",
            minimum=1,
            maximum=MAX_BACKUP_DAYS,
            default=MAX_BACKUP_DAYS,
            description=(
                "The trailing days (today included, UTC) that backup_summaries and "
                "user_backups read each run; Spanning keeps 7."
            ),
        ),
        "page_size": _setting(
            "integer",
            minimum=1,
            maximum=MAX_PAGE_SIZE,
            default=MAX_PAGE_SIZE,
            description="Users per request.",
        ),
        "request_timeout": _setting(
            "number",
            minimum=MIN_REQUEST_TIMEOUT,
            default=DEFAULT_REQUEST_TIMEOUT,
            description=(
                "Seconds a whole response may take, connect to last byte, before it is "
                "retried."
            ),
        ),
        "max_retries": _setting(
            "integer",
            minimum=1,
            maximum=MAX_RETRIES_LIMIT,
            default=DEFAULT_MAX_RETRIES,
            description="Tries per request (the first included) before the tenant fails.",
        ),
        "max_retry_wait": _setting(
            "number",
            minimum=0,
            default=DEFAULT_MAX_RETRY_WAIT,
            description="Longest wait between tries, in seconds, whatever Retry-After asks.",
        ),
        "emit_activate_version_messages": _setting(
            "boolean",
            default=False,
            description=(
                "Send ACTIVATE_VERSION after each stream's last record, so that a loader "
                "with hard delete drops rows a full sync no longer holds (README, "
                '"Load into a warehouse").'
            ),
        ),
    },
    "$schema": "https://json-schema.org/draft/2020-12/schema",
}


def _json_kind(schema: Mapping[str, Any]) -> str | None:
    kinds = schema.get("type")
    if isinstance(kinds, str):
        return kinds
    if isinstance(kinds, list):
        return next((kind for kind in kinds if kind != "null"), None)
    return None


_PROPERTIES: dict[str, Any] = CONFIG_SCHEMA["properties"]
# Every setting `resolve_settings` checks itself (the others are the SDK's).
TAP_SETTINGS = tuple(_PROPERTIES)
# Numbers that may arrive as text (environment variables, Meltano) and are stored as
# numbers once checked, so that the SDK's schema check agrees.
NUMERIC_SETTINGS = tuple(
    name for name, schema in _PROPERTIES.items() if _json_kind(schema) in ("integer", "number")
)
BOOLEAN_SETTINGS = tuple(
    name for name, schema in _PROPERTIES.items() if _json_kind(schema) == "boolean"
)
SENSITIVE_SETTINGS = tuple(name for name, schema in _PROPERTIES.items() if schema.get("secret"))
# The settings resolve_settings reads from text itself (naming them, never echoing them).
RESOLVED_SETTINGS = (*ONE_TENANT_SETTINGS, "tenants", "tenant_api_keys", *NUMERIC_SETTINGS)


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
    # What a failed tenant does to the run: strict, isolate or nightly (FAILURE_MODES).
    failure_mode: str = STRICT
    # The trailing days the backup streams read.
    backup_days: int = MAX_BACKUP_DAYS
    # The one-tenant settings (no `tenants` list): the last line of a failure is its reason.
    one_tenant_form: bool = True
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
        value = self._string(config.get(name), name, required=required)
        if value is None:
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

    def _string(self, value: object, name: str, *, required: bool) -> str | None:
        """A non-blank string, else None (and a mistake, when it is required or not a
        string). Says the type, never the value: it may be the API key."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(f"{name} is required")
            return None
        if not isinstance(value, str):
            self.fail(f"{name} must be a string, not {type(value).__name__}")
            return None
        return value

    def api_key(self, config: Mapping[str, Any], *, required: bool = True) -> str:
        """An API key: printable ASCII, at most MAX_KEY_LENGTH characters. Never echoed:
        the message says what is wrong with it, not what it holds."""
        return self.key_text(config.get("api_key"), "api_key", required=required)

    def key_text(self, value: object, name: str, *, required: bool = True) -> str:
        text = self._string(value, name, required=required)
        if text is None:
            return ""
        key = text.strip()
        if len(key) > MAX_KEY_LENGTH:
            self.fail(
                f"{name} is {len(key)} characters long; an API key has at most "
                f"{MAX_KEY_LENGTH} (a GUID from Settings > API Token has 36)"
            )
            return ""
        if not _PRINTABLE_ASCII.fullmatch(key):
            self.fail(
                f"{name} holds a character that is not printable ASCII (a stray character "
                "pasted with it?); an API key is a GUID from Settings > API Token"
            )
            return ""
        return key

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
        if _json_kind(schema) in ("array", "object"):
            try:
                found[name] = json.loads(text)
            except ValueError:
                found[name] = text
        else:
            found[name] = text
    return found


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
        kind = _json_kind(schema)
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


def _parsed_keys_map(keys: object) -> object:
    """The keys map; as text (Meltano declares it a string, .env holds it so) it is parsed
    here, so that a malformed map is one line that never shows the keys."""
    if isinstance(keys, str):
        try:
            return json.loads(keys)
        except ValueError:
            return _MALFORMED
    return keys


_MALFORMED = object()


def _tenant_api_keys(
    config: Mapping[str, Any], check: _Checker, source: str
) -> dict[str, str] | None:
    """The keys map, checked; None when it is not JSON at all (every key is then unknown)."""
    keys = _parsed_keys_map(config.get("tenant_api_keys"))
    if keys is None:
        return {}
    if keys is _MALFORMED:
        check.fail(
            "tenant_api_keys is not valid JSON: it must be one JSON object of tenant_id to "
            'API key, such as {"acme": "<key>"} (check its braces, quotes and commas)'
        )
        return None
    if not isinstance(keys, Mapping):
        check.fail(
            f"tenant_api_keys must be an object of tenant_id to API key, not {type(keys).__name__}"
        )
        return {}
    good: dict[str, str] = {}
    for tenant_id, key in keys.items():
        if not isinstance(key, str) or not key.strip():
            check.fail(
                f"tenant_api_keys: the key of tenant {str(tenant_id)[:64]!r} must be a "
                "non-empty string"
            )
            continue
        entry_check = _Checker(check.errors, f"{source}[{str(tenant_id)[:64]!r}]: ")
        checked = entry_check.key_text(key, "the key")
        if checked:
            good[str(tenant_id)] = checked
    return good


def _fleet(
    config: Mapping[str, Any], errors: list[str], notes: list[str], sources: Mapping[str, str]
) -> list[Tenant]:
    """The tenants list, checked; `sources` names where the list and the keys came from
    (a setting, or the file a *_file setting named)."""
    entries = config.get("tenants")
    check = _Checker(errors, notes=notes)
    if not isinstance(entries, list) or not entries:
        check.fail("tenants must be a non-empty list of {tenant_id, admin_email, region|base_url}")
        return []
    parsed_keys = _tenant_api_keys(config, check, sources["tenant_api_keys"])
    keys = parsed_keys or {}
    tenants: list[Tenant] = []
    folded_seen: dict[str, int] = {}  # tenant ids are compared without case
    credentials_seen: dict[tuple[str, str], str] = {}
    source = sources["tenants"]
    for index, entry in enumerate(entries):
        label = f"{source}[{index}]"
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
        _check_unique(tenant_id, index, folded_seen, entry_check)
        admin_email = entry_check.admin_email(entry)
        api_key = entry_check.api_key(entry, required=False)
        mapped = keys.get(tenant_id) if tenant_id else None
        if api_key and mapped is not None and mapped != api_key:
            entry_check.fail(
                "api_key is set both in the entry and in tenant_api_keys, with different "
                "values; keep one"
            )
        api_key = api_key or mapped or ""
        if not api_key and tenant_id and parsed_keys is not None:
            entry_check.fail(f"api_key is missing: set it in tenant_api_keys[{tenant_id!r}]")
        origin = entry_check.origin(entry)
        if tenant_id and admin_email and api_key:
            # The same credentials twice would load one tenant's users under two ids.
            same = credentials_seen.setdefault((admin_email.casefold(), api_key), tenant_id)
            if same != tenant_id:
                entry_check.fail(
                    f"has the same admin_email and api_key as tenant {same!r}: two entries "
                    "for one tenant would load its users under both ids; remove one"
                )
        if tenant_id and admin_email and api_key and origin is not None:
            tenants.append(Tenant(tenant_id, admin_email, api_key, origin))
    named = {
        str(entry.get("tenant_id")).strip() for entry in entries if isinstance(entry, Mapping)
    }
    unknown = sorted(set(keys) - named)
    if unknown:
        # A client retired from tenants whose key is still in .env: its rows are kept
        # (offboarded, README "Many tenants"); the key is simply not used.
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        check.notes.append(
            "tenant_api_keys has keys for tenants that are not in tenants, not used: "
            + ", ".join(repr(name[:64]) for name in unknown[:10])
            + more
        )
    return tenants


def _check_unique(tenant_id: str, index: int, seen: dict[str, int], check: _Checker) -> None:
    """Each tenant_id once, compared without case: warehouses and file systems that ignore
    case would mix two tenants' rows."""
    if not tenant_id:
        return
    first = seen.setdefault(tenant_id.casefold(), index)
    if first != index:
        check.fail(
            f"tenant_id {tenant_id!r} is already used by tenants[{first}] (ids are compared "
            "without case); each tenant needs its own"
        )


def _one_tenant(config: Mapping[str, Any], errors: list[str], notes: list[str]) -> list[Tenant]:
    check = _Checker(errors, notes=notes)
    tenant_id = check.tenant_id(config, default=DEFAULT_TENANT_ID)
    admin_email = check.admin_email(config)
    api_key = check.api_key(config)
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
    keys = _parsed_keys_map(config.get("tenant_api_keys"))
    if isinstance(keys, Mapping):
        candidates += list(keys.values())
    for key in candidates:
        if isinstance(key, str) and key.strip():
            found += secret_forms("", key.strip())
    return sorted(set(found), key=len, reverse=True)


# Settings whose value may come from a JSON file instead (README, "Many tenants"): a fleet
# never rides in one environment variable, which Linux caps at 128 KiB.
FILE_SETTINGS = {"tenants_file": "tenants", "tenant_api_keys_file": "tenant_api_keys"}
# Each file is read once a process (the head start and the tap both check the settings),
# again only if it changed.
_read_files: dict[tuple[str, int, int], tuple[object, str | None]] = {}


def _with_files(
    config: Mapping[str, Any], check: _Checker, sources: dict[str, str]
) -> Mapping[str, Any]:
    """`config` with the settings that name a file replaced by that file's content;
    `sources` learns which setting came from which file, for the messages about its
    entries."""
    if not any(config.get(name) not in (None, "") for name in FILE_SETTINGS):
        return config
    merged = dict(config)
    for file_setting, setting in FILE_SETTINGS.items():
        path = merged.pop(file_setting, None)
        if path in (None, ""):
            continue
        if not isinstance(path, str):
            check.fail(f"{file_setting} must be a path, not {type(path).__name__}")
            continue
        if merged.get(setting) is not None:
            check.fail(f"{setting} and {file_setting} are both set; keep one")
            continue
        path = path.strip()
        parsed, error = _json_file_once(path, file_setting)
        shape = list if setting == "tenants" else dict
        if error is None and not isinstance(parsed, shape):
            what = "list of tenants" if shape is list else "object of tenant_id to key"
            error = f"{file_setting}: file {path} must hold a JSON {what}"
        if error is not None:
            check.fail(error)
            continue
        merged[setting] = parsed
        sources[setting] = path
    return merged


def _json_file_once(path: str, what: str) -> tuple[object, str | None]:
    try:
        stat = Path(path).stat()
    except OSError as exc:
        return None, f"{what} {path}: cannot be read ({exc.strerror or exc})"
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _read_files:
        if len(_read_files) >= len(FILE_SETTINGS):
            _read_files.clear()  # the files of an earlier run (the tests run many)
        _read_files[key] = json_file(path, f"{what}:")
    return _read_files[key]


def resolve_settings(config: Mapping[str, Any]) -> Settings:
    """Check every setting; raise SettingsError naming each one that is wrong."""
    errors: list[str] = []
    notes: list[str] = []
    check = _Checker(errors, notes=notes)
    sources = {setting: setting for setting in FILE_SETTINGS.values()}  # else the file
    config = _with_files(config, check, sources)
    if errors:  # a file that cannot be read: whatever else it would say is noise
        raise SettingsError(errors)
    fleet = config.get("tenants") is not None
    if fleet:
        both = [name for name in ONE_TENANT_SETTINGS if config.get(name) not in (None, "")]
        if both:
            check.fail(
                f"tenants is set, and so is {', '.join(both)}: use either the one-tenant "
                "settings or the tenants list, not both"
            )
        tenants = _fleet(config, errors, notes, sources)
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
    backup_days = check.number(
        config, "backup_days", MAX_BACKUP_DAYS, low=1, high=MAX_BACKUP_DAYS, integer=True
    )
    failure_mode = config.get("failure_mode") or STRICT
    if isinstance(failure_mode, str):
        failure_mode = failure_mode.strip().lower()
    if failure_mode not in FAILURE_MODES:
        check.fail(f"failure_mode must be one of {', '.join(FAILURE_MODES)}")
        failure_mode = STRICT
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
        failure_mode=str(failure_mode),
        backup_days=int(backup_days),
        one_tenant_form=not fleet,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class ConfigCheck:
    """What checking a config found: its settings, or every mistake in it."""

    settings: Settings | None
    errors: list[str]
    # Lines worth a warning: unknown settings, settings allowed but not used.
    warnings: list[str]


def check_config(config: dict[str, Any], properties: Mapping[str, Any]) -> ConfigCheck:
    """Check a whole config (the tap's settings and the SDK's), before any request.

    `properties` is every setting the tap accepts, its own and the SDK's. Values given
    as text (the environment, Meltano) are turned into their declared type in place, so
    that the SDK's own schema check that follows agrees.
    """
    warnings: list[str] = []
    unknown = unknown_settings(config, list(properties))
    if unknown:
        warnings.append(f"Unknown settings, ignored: {', '.join(unknown)}")
    # resolve_settings reads the connection settings and numbers itself; the others
    # (booleans, and the SDK's) are turned from text here.
    by_coercion = {k: v for k, v in properties.items() if k not in RESOLVED_SETTINGS}
    errors = coerce_text_settings(config, by_coercion)
    try:
        settings = resolve_settings(config)
    except SettingsError as exc:
        return ConfigCheck(None, exc.errors + errors + batch_errors(config), warnings)
    errors += batch_errors(config)
    if errors:
        return ConfigCheck(None, errors, warnings)
    for name in NUMERIC_SETTINGS:
        if name in config:
            config[name] = getattr(settings, name)
    if isinstance(config.get("tenant_api_keys"), str):
        # The map as text (Meltano, .env): checked above, now an object for the SDK.
        config["tenant_api_keys"] = _parsed_keys_map(config["tenant_api_keys"])
    return ConfigCheck(settings, [], warnings + list(settings.notes))


def batch_errors(config: dict[str, Any]) -> list[str]:
    """BATCH combinations the tap refuses rather than write files that break them.

    BATCH files hold records as the tap builds them, less deselected properties: a
    stream map or flattening would not reach them, and the SDK's JSONL files are always
    gzipped (README, "BATCH").
    """
    batch = config.get("batch_config")
    if not batch:
        return []
    errors: list[str] = []
    if config.get("stream_maps") or config.get("flattening_enabled"):
        errors.append(
            "batch_config cannot be combined with stream_maps or flattening_enabled: "
            "BATCH files would hold the records before the maps; use RECORD messages"
        )
    encoding = batch.get("encoding") if isinstance(batch, dict) else None
    if not isinstance(encoding, dict) or encoding.get("format") != "jsonl":
        errors.append("batch_config.encoding.format must be jsonl")
    elif encoding.get("compression", "gzip") != "gzip":
        errors.append(
            "batch_config.encoding.compression must be gzip: the SDK writes every JSONL "
            "batch file gzipped, whatever it is told"
        )
    return errors
