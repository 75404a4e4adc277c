"""tap-spanning: settings and the stream list."""

from __future__ import annotations

import json
import logging
import os
import sys
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from singer_sdk import Stream
from singer_sdk import typing as th
from typing_extensions import override

from tap_spanning import redaction
from tap_spanning.run import RunFailed, SyncRun
from tap_spanning.sdk_seam import SeamTap, SettingsRefused
from tap_spanning.settings import (
    DEFAULT_MAX_CONCURRENT_TENANTS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_TENANT_ID,
    MAX_CONCURRENT_TENANTS,
    MAX_PAGE_SIZE,
    MAX_RETRIES_LIMIT,
    MIN_REQUEST_TIMEOUT,
    TAP_SETTINGS,
    Settings,
    SettingsError,
    coerce_text_settings,
    resolve_settings,
    settings_from_environment,
    unknown_settings,
)
from tap_spanning.streams import RoleMembershipsStream, RolesStream, TenantsStream, UsersStream
from tap_spanning.urls import REGIONS
from tap_spanning.writer import BufferedMsgSpecWriter, OutputClosedError

# Numbers that may arrive as text (environment variables, Meltano) and are stored as
# numbers once checked, so that the SDK's schema check agrees.
_NUMERIC_SETTINGS = (
    "page_size",
    "request_timeout",
    "max_retries",
    "max_retry_wait",
    "max_concurrent_tenants",
)

_TENANT_ENTRY = th.ObjectType(
    th.Property(
        "tenant_id",
        th.StringType,
        required=True,
        description="Stable id, 1-64 of A-Z a-z 0-9 . _ -",
    ),
    th.Property(
        "admin_email", th.StringType, required=True, description="The tenant's Spanning admin"
    ),
    th.Property("region", th.StringType, allowed_values=list(REGIONS)),
    th.Property("base_url", th.StringType),
    th.Property("api_key", th.StringType, secret=True, description="Else from tenant_api_keys"),
)


# Settings from the environment: TAP_SPANNING_<NAME>.
ENV_PREFIX = "TAP_SPANNING_"
SYNC_ORDER = ("users", "role_memberships", "tenants", "roles")


class TapSpanning(SeamTap):
    """Singer tap for Kaseya Spanning Backup for Office 365."""

    name = "tap-spanning"
    message_writer_class = BufferedMsgSpecWriter
    # The runs this process made, for main() to close with their summary and failures.
    runs: ClassVar[list[SyncRun]] = []

    config_jsonschema = th.PropertiesList(
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
                "1-64 of A-Z a-z 0-9 . _ -"
            ),
        ),
        th.Property(
            "tenants",
            th.ArrayType(_TENANT_ENTRY),
            description=(
                "Many tenants in one run: {tenant_id, admin_email, region or base_url, "
                "api_key (else tenant_api_keys)}. Not with the one-tenant settings."
            ),
        ),
        th.Property(
            "tenant_api_keys",
            th.ObjectType(additional_properties=th.StringType),
            secret=True,
            description="The tenants' API keys: an object of tenant_id to key.",
        ),
        th.Property(
            "max_concurrent_tenants",
            th.IntegerType(minimum=1, maximum=MAX_CONCURRENT_TENANTS),
            default=DEFAULT_MAX_CONCURRENT_TENANTS,
            description="Tenants fetched at once.",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
            default=MAX_PAGE_SIZE,
            description="Users per request.",
        ),
        th.Property(
            "request_timeout",
            th.NumberType(minimum=MIN_REQUEST_TIMEOUT),  # type: ignore[arg-type]
            default=DEFAULT_REQUEST_TIMEOUT,
            description=(
                "Seconds a whole response may take, connect to last byte, before it is retried."
            ),
        ),
        th.Property(
            "max_retries",
            th.IntegerType(minimum=1, maximum=MAX_RETRIES_LIMIT),
            default=DEFAULT_MAX_RETRIES,
            description="Tries per request (the first included) before the tenant fails.",
        ),
        th.Property(
            "max_retry_wait",
            th.NumberType(minimum=0),
            default=DEFAULT_MAX_RETRY_WAIT,
            description="Longest wait between tries, in seconds, whatever Retry-After asks.",
        ),
        th.Property(
            "emit_activate_version_messages",
            th.BooleanType,
            default=False,
            description=(
                "Send ACTIVATE_VERSION after each stream's last record, so that a loader "
                "with hard delete drops rows a full sync no longer holds (README, "
                '"Load into a warehouse").'
            ),
        ),
    ).to_dict()

    @cached_property
    def settings(self) -> Settings:
        """The checked settings."""
        return resolve_settings(self.config)

    @cached_property
    def sync_run(self) -> SyncRun:
        """This run's tenants, failures and counters, shared by the streams."""
        run = SyncRun(
            self.settings,
            self.logger,
            f"{self.name}/{self.plugin_version}",
            one_tenant_form=self.config.get("tenants") is None,
        )
        TapSpanning.runs.append(run)
        return run

    @override
    def check_settings(self, config: dict[str, Any]) -> list[str]:
        self.append_builtin_config(self.config_jsonschema)
        properties: dict[str, Any] = self.config_jsonschema["properties"]
        unknown = unknown_settings(config, list(properties))
        if unknown:
            self.logger.warning("Unknown settings, ignored: %s", ", ".join(unknown))
        sdk_settings = {k: v for k, v in properties.items() if k not in TAP_SETTINGS}
        errors = coerce_text_settings(config, sdk_settings)
        try:
            settings = resolve_settings(config)
        except SettingsError as exc:
            return exc.errors + errors + batch_errors(config)
        errors += batch_errors(config)
        if errors:
            return errors
        redaction.install(settings.secret_forms)
        for note in settings.notes:
            self.logger.warning("%s", note)
        for name in _NUMERIC_SETTINGS:
            if name in config:
                config[name] = getattr(settings, name)
        return []

    @override
    def environment_settings(self) -> dict[str, Any]:
        self.append_builtin_config(self.config_jsonschema)
        return settings_from_environment(
            os.environ, self.config_jsonschema["properties"], ENV_PREFIX
        )

    @override
    def stopped_by_signal(self, signum: int) -> None:
        self.logger.error("Stopped by signal %d before the sync was complete", signum)

    @override
    def discover_streams(self) -> list[Stream]:
        return [
            UsersStream(self),
            RoleMembershipsStream(self),
            TenantsStream(self),
            RolesStream(self),
        ]

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        # The SDK orders streams by name and syncs them in that order, so `roles` would
        # write its records before any request. Streams that read tenants go first: no
        # record is written before a tenant has answered well (README, "Output rules").
        by_name = super().streams
        return {name: by_name[name] for name in SYNC_ORDER if name in by_name}


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


def config_file_errors(argv: list[str]) -> list[str]:
    """One line per `--config` file that is missing, not JSON, or not a JSON object.

    The SDK reads these files before the tap starts, with a traceback that names no file.
    """
    paths: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            paths.append(argv[index + 1])
        elif arg.startswith("--config="):
            paths.append(arg.partition("=")[2])
    errors: list[str] = []
    for path in paths:
        if path == "ENV":
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            errors.append(f"config file {path}: cannot be read ({exc.strerror or exc})")
            continue
        except UnicodeDecodeError:
            errors.append(f"config file {path}: not UTF-8 text")
            continue
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            # Say where, never what: the line may hold a key.
            where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
            errors.append(f"config file {path}: not valid JSON{where}")
            continue
        if not isinstance(parsed, dict):
            errors.append(f"config file {path}: must be a JSON object of settings")
    return errors


def main() -> None:
    """Console entry point: the SDK's CLI, closed by the run's summary and failures."""
    logger = logging.getLogger(TapSpanning.name)
    mistakes = config_file_errors(sys.argv[1:])
    if mistakes:
        for mistake in mistakes:
            print(mistake, file=sys.stderr)
        sys.exit(1)
    code: int | str | None = 0
    try:
        TapSpanning.cli()
    except SystemExit as done:
        code = done.code
    except RunFailed:
        code = 1  # the run's failure line follows
    except SettingsRefused as refused:
        # Before any request. One line, the last: Meltano's connection test shows it.
        logger.error("Config validation failed: %s", "; ".join(refused.errors))
        sys.exit(1)
    except OutputClosedError as exc:
        logger.error("Sync failed: %s", exc)
        sys.exit(1)
    failed = False
    for run in TapSpanning.runs:
        logger.info("%s", run.summary_line())
        failed = failed or bool(run.failures)
    for run in TapSpanning.runs:
        if run.failures:
            logger.error("%s", run.failure_line())
    sys.exit(1 if failed else code)
