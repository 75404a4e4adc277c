"""The tap's typed settings, checked before any request is made.

`resolve_settings` turns the raw config mapping into a typed `Settings`, or raises
`SettingsError` listing every mistake. Each message names its setting, and the tenant
when there are several; none echoes a value that could be an API key. The settings are
declared once, with their bounds and defaults, in config_schema.py; the semantic checks
(tenants, hosts, keys) are setting_checks.py's.

Two forms (README, "Configure a real tenant"; docs/many-tenants.md):
- one tenant: `admin_email`, `api_key`, `base_url` and/or `region`, optional `tenant_id`;
- a fleet: `tenants`, a list of `{tenant_id, admin_email, region | base_url, api_key?}`,
  with keys from each entry or from the secret `tenant_api_keys` map.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tap_spanning.config_schema import (
    BACKUP_DAYS_KEPT,
    FAILURE_MODES,
    NUMERIC_SETTINGS,
    STRICT,
    json_kind,
)
from tap_spanning.redaction import redact, secret_forms
from tap_spanning.setting_checks import (
    FILE_SETTINGS,
    ONE_TENANT_SETTINGS,
    Checker,
    SettingsError,
    Tenant,
    all_keys,
    closest_setting,
    fleet_tenants,
    one_tenant,
    parsed_keys_map,
    with_files,
)
from tap_spanning.shards import shard_of

__all__ = ["ConfigCheck", "Settings", "SettingsError", "Tenant", "check_config", "resolve_settings"]

# The settings resolve_settings reads from text itself (naming them, never echoing them).
RESOLVED_SETTINGS = (*ONE_TENANT_SETTINGS, "tenants", "tenant_api_keys", *NUMERIC_SETTINGS)


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
    backup_days: int = BACKUP_DAYS_KEPT
    # Every day of the backup window sent, whatever the state says.
    full_refresh: bool = False
    # This run's part of the fleet (docs/many-tenants.md, "Shards"): 1 and 0 unsharded.
    shard_count: int = 1
    shard_index: int = 0
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
        if json_kind(schema) in ("array", "object"):
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
        kind = json_kind(schema)
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


def resolve_settings(config: Mapping[str, Any]) -> Settings:
    """Check every setting; raise SettingsError naming each one that is wrong."""
    errors: list[str] = []
    notes: list[str] = []
    check = Checker(errors, notes=notes)
    sources = {setting: setting for setting in FILE_SETTINGS.values()}  # else the file
    config = with_files(config, check, sources)
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
        tenants = fleet_tenants(config, errors, notes, sources)
    else:
        if config.get("tenant_api_keys") is not None:
            check.fail("tenant_api_keys goes with tenants; one tenant's key is api_key")
        tenants = one_tenant(config, errors, notes)
    page_size = check.number(config, "page_size")
    timeout = check.number(config, "request_timeout")
    retries = check.number(config, "max_retries")
    max_wait = check.number(config, "max_retry_wait")
    concurrency = check.number(config, "max_concurrent_tenants")
    backup_days = check.number(config, "backup_days")
    tenants = _this_shard(config, tenants, check)
    failure_mode = config.get("failure_mode") or STRICT
    if isinstance(failure_mode, str):
        failure_mode = failure_mode.strip().lower()
    if failure_mode not in FAILURE_MODES:
        check.fail(f"failure_mode must be one of {', '.join(FAILURE_MODES)}")
        failure_mode = STRICT
    if errors or not tenants:
        # A key pasted into the wrong setting would be echoed by that setting's message.
        secrets = all_keys(config)
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
        full_refresh=config.get("full_refresh") is True,
        shard_count=int(check.number(config, "shard_count")),
        shard_index=int(check.number(config, "shard_index")),
        one_tenant_form=not fleet,
        notes=tuple(notes),
    )


def _this_shard(config: Mapping[str, Any], tenants: list[Tenant], check: Checker) -> list[Tenant]:
    """The tenants of this run's shard (all of them, unsharded), after checking the shard
    settings: an index within the count, no activation (a shard's ACTIVATE_VERSION would
    delete the other shards' rows), and at least one tenant."""
    count = int(check.number(config, "shard_count"))
    index = int(check.number(config, "shard_index"))
    if index >= count:
        check.fail(f"shard_index must be below shard_count ({count}), got {index}")
        return tenants
    if count == 1:
        return tenants
    if _is_true(config.get("emit_activate_version_messages")):
        check.fail(
            "shard_count is above 1, so emit_activate_version_messages must be false: a "
            "shard's ACTIVATE_VERSION would delete the rows of the other shards' tenants"
        )
    mine = [tenant for tenant in tenants if shard_of(tenant.tenant_id, count) == index]
    if tenants and not mine:
        check.fail(
            f"shard {index} of {count} holds none of the {len(tenants)} tenants: use fewer "
            "shards"
        )
    return mine


def _is_true(value: object) -> bool:
    """A boolean setting as the SDK reads it (Meltano and the environment send text)."""
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1"))


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
        config["tenant_api_keys"] = parsed_keys_map(config["tenant_api_keys"])
    return ConfigCheck(settings, [], warnings + list(settings.notes))


def batch_errors(config: dict[str, Any]) -> list[str]:
    """BATCH combinations the tap refuses rather than write files that break them.

    BATCH files hold records as the tap builds them, less deselected properties: a
    stream map or flattening would not reach them, and the SDK's JSONL files are always
    gzipped (docs/streams.md, "What a sync emits").
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
