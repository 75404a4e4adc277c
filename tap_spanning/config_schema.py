"""The tap's settings, declared once: their types, bounds, defaults and descriptions.

`CONFIG_SCHEMA` is what `--about` shows, what Meltano declares (meltano.yml, checked by
tests/unit/test_meltano_settings.py) and what the SDK checks; the tap's own checks
(setting_checks.py, settings.py) read every bound and default from it (`bounds`), so
that a bound is written here and nowhere else. The SDK adds its own settings (stream
maps, BATCH...) to the tap's copy of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from singer_sdk import typing as th

from tap_spanning.urls import REGIONS

# Settings from the environment: TAP_SPANNING_<NAME> (with --config=ENV).
ENV_PREFIX = "TAP_SPANNING_"
# What a failed tenant does to the run (docs/many-tenants.md): the `failure_mode` values.
STRICT, ISOLATE, NIGHTLY = "strict", "isolate", "nightly"
FAILURE_MODES = (STRICT, ISOLATE, NIGHTLY)
# The one-tenant form's tenant_id when none is set (README, "Configure a real tenant").
DEFAULT_TENANT_ID = "default"
# The longest API key accepted: a GUID has 36 characters; room for other token forms,
# none for a file pasted into the setting. Not a JSON schema bound: the key's message
# must never say what the key holds, which the SDK's schema check would.
MAX_KEY_LENGTH = 256
# Spanning keeps a week of backup status (docs/backup-health.md).
BACKUP_DAYS_KEPT = 7
# The most shards a fleet is split into.
MAX_SHARDS = 1024
# The API's largest users page.
MAX_PAGE_SIZE = 1000

_TENANT_ID_RULE = "1-64 of A-Z a-z 0-9 . _ -"
# The longest client name accepted (a name is shown, never used as a key).
MAX_NAME_LENGTH = 200
_NAME_RULE = (
    "The client's display name, beside tenant_id in the tenants and tenant_syncs streams "
    f"and every mart and report; at most {MAX_NAME_LENGTH} characters"
)
# singer_sdk types a number's bound as int; JSON Schema takes any number.
_SHORTEST_TIMEOUT: Any = 0.001

_TENANT_ENTRY = th.ObjectType(
    th.Property(
        "tenant_id", th.StringType, required=True, description=f"Stable id, {_TENANT_ID_RULE}"
    ),
    th.Property(
        "admin_email", th.StringType, required=True, description="The tenant's Spanning admin"
    ),
    th.Property("region", th.StringType, allowed_values=list(REGIONS)),
    th.Property("base_url", th.StringType),
    th.Property("api_key", th.StringType, secret=True, description="Else from tenant_api_keys"),
    th.Property("name", th.StringType, description=_NAME_RULE),
    additional_properties=True,
)

SETTINGS = th.PropertiesList(
    th.Property(
        "admin_email",
        th.StringType,
        title="Admin email",
        description=(
            "Email of the Spanning admin who owns the API token (Basic auth user). "
            "One-tenant form; a fleet sets it per tenant."
        ),
    ),
    th.Property(
        "api_key",
        th.StringType,
        secret=True,
        title="API key",
        description="Token from Settings > API Token in the Spanning admin console.",
    ),
    th.Property(
        "base_url",
        th.StringType,
        title="Base URL",
        description=(
            "https://o365-api-<region>.spanningbackup.com (a trailing / or /external is "
            "fine), or a loopback URL for the emulator. Required unless region is set."
        ),
    ),
    th.Property(
        "region",
        th.StringType,
        allowed_values=list(REGIONS),
        description="Spanning region; builds base_url, and must agree with it if both are set.",
    ),
    th.Property(
        "tenant_id",
        th.StringType,
        description=(
            f"The one tenant's id in every record (default {DEFAULT_TENANT_ID!r}); "
            f"{_TENANT_ID_RULE}"
        ),
    ),
    th.Property("tenant_name", th.StringType, description=f"The one tenant's name. {_NAME_RULE}"),
    th.Property(
        "tenants",
        th.ArrayType(_TENANT_ENTRY),
        # Secret as a whole: an entry may hold its key, and tools (Meltano) can only
        # hide a whole setting.
        secret=True,
        description=(
            "Many tenants in one run: {tenant_id, admin_email, region or base_url, "
            "api_key (else tenant_api_keys), name}. Not with the one-tenant settings."
        ),
    ),
    th.Property(
        "tenant_api_keys",
        th.ObjectType(additional_properties=th.StringType(nullable=False)),
        secret=True,
        description="The tenants' API keys: an object of tenant_id to key.",
    ),
    th.Property(
        "max_concurrent_tenants",
        th.IntegerType(minimum=1, maximum=64),
        default=8,
        description="Tenants fetched at once.",
    ),
    th.Property(
        "tenants_file",
        th.StringType,
        description=(
            "A JSON file holding the tenants list, instead of tenants: a fleet of any "
            "size (one environment variable holds at most 128 KiB)."
        ),
    ),
    th.Property(
        "tenant_api_keys_file",
        th.StringType,
        description=(
            "A JSON file holding the tenant_api_keys object (tenant_id to key), instead "
            "of tenant_api_keys."
        ),
    ),
    th.Property(
        "failure_mode",
        th.StringType,
        allowed_values=list(FAILURE_MODES),
        default=STRICT,
        description=(
            "strict: a tenant whose credentials are refused stops the run before any "
            "record (so `meltano config test` fails, naming it), and any failed tenant "
            "exits 1. isolate: every failure fails its tenant alone; exit 1 when any "
            "failed. nightly: as isolate, but exit 0 while at least one tenant "
            "completed, so the loader and dbt run every night (docs/many-tenants.md)."
        ),
    ),
    th.Property(
        "backup_days",
        th.IntegerType(minimum=1, maximum=BACKUP_DAYS_KEPT),
        default=BACKUP_DAYS_KEPT,
        description=(
            "The trailing days (today included, UTC) that backup_summaries and "
            "user_backups read each run; Spanning keeps 7."
        ),
    ),
    th.Property(
        "full_refresh",
        th.BooleanType,
        default=False,
        description=(
            "Send every day of the backup window, as a first run does, though the state "
            "says it was sent unchanged (the state is written all the same). Without it, "
            "backup_summaries and user_backups send only the days that changed "
            '(docs/backup-health.md, "Only what changed").'
        ),
    ),
    th.Property(
        "shard_count",
        th.IntegerType(minimum=1, maximum=MAX_SHARDS),
        default=1,
        description=(
            "Split the tenants over this many runs (shards), each with its own shard_index: "
            "a tenant's shard is a hash of its tenant_id, stable while the count stays. With "
            "more than 1, emit_activate_version_messages must be false "
            '(docs/many-tenants.md, "Shards").'
        ),
    ),
    th.Property(
        "shard_index",
        th.IntegerType(minimum=0, maximum=MAX_SHARDS - 1),
        default=0,
        description="This run's shard: 0 to shard_count - 1.",
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
        default=MAX_PAGE_SIZE,
        description="Users per request.",
    ),
    th.Property(
        "request_timeout",
        th.NumberType(minimum=_SHORTEST_TIMEOUT),
        default=60.0,
        description=(
            "Seconds a whole response may take, connect to last byte, before it is retried."
        ),
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=1, maximum=100),
        default=5,
        description="Tries per request (the first included) before the tenant fails.",
    ),
    th.Property(
        "max_retry_wait",
        th.NumberType(minimum=0),
        default=60.0,
        description="Longest wait between tries, in seconds, whatever Retry-After asks.",
    ),
    th.Property(
        "emit_activate_version_messages",
        th.BooleanType,
        default=False,
        description=(
            "Send ACTIVATE_VERSION after each stream's last record, so that a loader "
            "with hard delete drops rows a full sync no longer holds "
            '(docs/warehouse.md, "Load into a warehouse").'
        ),
    ),
)

# The tap's settings as a JSON schema. The tap hands the SDK a copy: the SDK adds its own
# settings to it in place.
CONFIG_SCHEMA: dict[str, Any] = SETTINGS.to_dict()
_PROPERTIES: dict[str, Any] = CONFIG_SCHEMA["properties"]
# The settings of a tenant's entry in `tenants`.
TENANT_ENTRY_SETTINGS = tuple(_PROPERTIES["tenants"]["items"]["properties"])


def json_kind(schema: Mapping[str, Any]) -> str | None:
    """The JSON type a setting's schema declares, null aside."""
    kinds = schema.get("type")
    if isinstance(kinds, str):
        return kinds
    if isinstance(kinds, list):
        return next((kind for kind in kinds if kind != "null"), None)
    return None


@dataclass(frozen=True)
class Bounds:
    """A number setting's declared default, bounds and kind."""

    default: float
    low: float
    high: float | None
    integer: bool


def bounds(name: str) -> Bounds:
    """The declared default and bounds of number setting `name`."""
    schema = _PROPERTIES[name]
    return Bounds(
        default=schema["default"],
        low=schema["minimum"],
        high=schema.get("maximum"),
        integer=json_kind(schema) == "integer",
    )


# Every setting of the tap's own (the others are the SDK's).
TAP_SETTINGS = tuple(_PROPERTIES)
# Numbers that may arrive as text (environment variables, Meltano) and are stored as
# numbers once checked, so that the SDK's schema check agrees.
NUMERIC_SETTINGS = tuple(
    name for name, schema in _PROPERTIES.items() if json_kind(schema) in ("integer", "number")
)
