"""The semantic checks of the settings: tenants, hosts, keys, and the files that hold them.

Each mistake is collected by a `Checker` and says which setting is wrong (and the
tenant's entry, in a fleet); none echoes a value that could be an API key. Every
number's bounds and default come from the declaration (config_schema.py).
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

from tap_spanning.config_schema import (
    DEFAULT_TENANT_ID,
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    TENANT_ENTRY_SETTINGS,
    bounds,
)
from tap_spanning.json_files import json_file
from tap_spanning.redaction import secret_forms
from tap_spanning.urls import (
    REGIONS,
    Origin,
    UrlError,
    parse_base_url,
    region_base_url,
    region_of_host,
)

TENANT_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
# The settings of the one-tenant form, which a fleet sets per tenant instead.
ONE_TENANT_SETTINGS = ("admin_email", "api_key", "base_url", "region", "tenant_id", "tenant_name")
# A name holds no control character (it is printed in logs, reports and HTML).
_NAME_TEXT = re.compile(r"[^\x00-\x1f\x7f]+")


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
    name: str | None = None  # the client's display name, when set

    @property
    def region(self) -> str | None:
        """The Spanning region of the tenant's host; None for a loopback host."""
        return region_of_host(self.origin.host)


def closest_setting(name: str, known: Sequence[str]) -> str | None:
    """The known setting a misspelt name most likely meant, if any is close."""
    folded = {candidate.replace("_", "").lower(): candidate for candidate in known}
    match = difflib.get_close_matches(name.replace("_", "").lower(), list(folded), n=1, cutoff=0.7)
    return folded[match[0]] if match else None


class Checker:
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

    def name(self, config: Mapping[str, Any], setting: str) -> str | None:
        """A client's display name: optional; one line of at most MAX_NAME_LENGTH
        characters. Says what is wrong, never what it holds (a key pasted in the wrong
        place must not be echoed)."""
        text = self._string(config.get(setting), setting, required=False)
        if text is None:
            return None
        name = text.strip()
        if len(name) > MAX_NAME_LENGTH or not _NAME_TEXT.fullmatch(name):
            self.fail(
                f"{setting} must be one line of at most {MAX_NAME_LENGTH} characters, with no "
                f"control character (got {len(name)} characters)"
            )
            return None
        return name

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

    def number(self, config: Mapping[str, Any], name: str) -> float:
        """Number setting `name`, within its declared bounds; its declared default when
        it is not set (or wrong: the mistake is collected)."""
        declared = bounds(name)
        low, high, integer = declared.low, declared.high, declared.integer
        default = declared.default
        value = config.get(name)
        if value is None:
            return default
        kind = "a whole number" if integer else "a number"
        between = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            self.fail(f"{name} must be {kind} {between}, got {type(value).__name__}")
            return default
        try:
            number = float(value)  # settings from the environment arrive as text
        except (ValueError, OverflowError):
            number = math.nan
        if not math.isfinite(number) or (integer and not number.is_integer()):
            # Never the value itself: a key pasted into the wrong setting would show.
            self.fail(f"{name} must be {kind} {between}")
            return default
        if number < low or (high is not None and number > high):
            self.fail(f"{name} must be {between}, got {number:g}")
            return default
        return int(number) if integer else number


def parsed_keys_map(keys: object) -> object:
    """The keys map; as text (Meltano declares it a string, .env holds it so) it is parsed
    here, so that a malformed map is one line that never shows the keys."""
    if isinstance(keys, str):
        try:
            return json.loads(keys)
        except ValueError:
            return MALFORMED
    return keys


MALFORMED = object()


def _tenant_api_keys(
    config: Mapping[str, Any], check: Checker, source: str
) -> dict[str, str] | None:
    """The keys map, checked; None when it is not JSON at all (every key is then unknown)."""
    keys = parsed_keys_map(config.get("tenant_api_keys"))
    if keys is None:
        return {}
    if keys is MALFORMED:
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
        entry_check = Checker(check.errors, f"{source}[{str(tenant_id)[:64]!r}]: ")
        checked = entry_check.key_text(key, "the key")
        if checked:
            good[str(tenant_id)] = checked
    return good


def fleet_tenants(
    config: Mapping[str, Any], errors: list[str], notes: list[str], sources: Mapping[str, str]
) -> list[Tenant]:
    """The tenants list, checked; `sources` names where the list and the keys came from
    (a setting, or the file a *_file setting named)."""
    entries = config.get("tenants")
    check = Checker(errors, notes=notes)
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
        entry_check = Checker(errors, f"{label}: ", notes)
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
        name = entry_check.name(entry, "name")
        if tenant_id and admin_email and api_key:
            # The same credentials twice would load one tenant's users under two ids.
            same = credentials_seen.setdefault((admin_email.casefold(), api_key), tenant_id)
            if same != tenant_id:
                entry_check.fail(
                    f"has the same admin_email and api_key as tenant {same!r}: two entries "
                    "for one tenant would load its users under both ids; remove one"
                )
        if tenant_id and admin_email and api_key and origin is not None:
            tenants.append(Tenant(tenant_id, admin_email, api_key, origin, name))
    named = {str(entry.get("tenant_id")).strip() for entry in entries if isinstance(entry, Mapping)}
    unknown = sorted(set(keys) - named)
    if unknown:
        # A client retired from tenants whose key is still in .env: its rows are kept
        # (offboarded, docs/many-tenants.md); the key is simply not used.
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        check.notes.append(
            "tenant_api_keys has keys for tenants that are not in tenants, not used: "
            + ", ".join(repr(name[:64]) for name in unknown[:10])
            + more
        )
    return tenants


def _check_unique(tenant_id: str, index: int, seen: dict[str, int], check: Checker) -> None:
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


def one_tenant(config: Mapping[str, Any], errors: list[str], notes: list[str]) -> list[Tenant]:
    check = Checker(errors, notes=notes)
    tenant_id = check.tenant_id(config, default=DEFAULT_TENANT_ID)
    admin_email = check.admin_email(config)
    api_key = check.api_key(config)
    origin = check.origin(config)
    name = check.name(config, "tenant_name")
    if tenant_id and admin_email and api_key and origin is not None:
        return [Tenant(tenant_id, admin_email, api_key, origin, name)]
    return []


def all_keys(config: Mapping[str, Any]) -> list[str]:
    """Every key in the config, wherever it sits: used to scrub messages."""
    found: list[str] = []
    candidates: list[Any] = [config.get("api_key")]
    entries = config.get("tenants")
    if isinstance(entries, list):
        candidates += [entry.get("api_key") for entry in entries if isinstance(entry, Mapping)]
    keys = parsed_keys_map(config.get("tenant_api_keys"))
    if isinstance(keys, Mapping):
        candidates += list(keys.values())
    for key in candidates:
        if isinstance(key, str) and key.strip():
            found += secret_forms("", key.strip())
    return sorted(set(found), key=len, reverse=True)


FILE_SETTINGS = {"tenants_file": "tenants", "tenant_api_keys_file": "tenant_api_keys"}
# Each file is read once a process, again only if it changed: the tap checks its settings
# more than once (the SDK's config check, then the sync's).
_read_files: dict[tuple[str, int, int], tuple[object, str | None]] = {}


def with_files(
    config: Mapping[str, Any], check: Checker, sources: dict[str, str]
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
