"""tap-spanning: settings and the stream list."""

from __future__ import annotations

import logging
import sys
from types import FrameType

from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from tap_spanning import redaction
from tap_spanning.client import SpanningError
from tap_spanning.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_REQUEST_TIMEOUT,
    MAX_PAGE_SIZE,
    SettingsError,
    resolve_settings,
)
from tap_spanning.streams import RoleMembershipsStream, RolesStream, UsersStream
from tap_spanning.urls import REGIONS
from tap_spanning.writer import BufferedMsgSpecWriter, OutputClosedError


class TapSpanning(Tap):
    """Singer tap for Kaseya Spanning Backup for Office 365."""

    name = "tap-spanning"
    message_writer_class = BufferedMsgSpecWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "admin_email",
            th.StringType,
            required=True,
            title="Admin email",
            description="Email of the Spanning admin who owns the API token (Basic auth user).",
        ),
        th.Property(
            "api_key",
            th.StringType,
            required=True,
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
            "page_size",
            th.IntegerType,
            default=MAX_PAGE_SIZE,
            description=f"Users per request, 1..{MAX_PAGE_SIZE}.",
        ),
        th.Property(
            "request_timeout",
            th.NumberType,
            default=DEFAULT_REQUEST_TIMEOUT,
            description=(
                "Seconds a whole response may take, connect to last byte, before it is retried."
            ),
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=DEFAULT_MAX_RETRIES,
            description="Tries per request (the first included) before the sync fails.",
        ),
        th.Property(
            "max_retry_wait",
            th.NumberType,
            default=DEFAULT_MAX_RETRY_WAIT,
            description="Longest wait between tries, in seconds, whatever Retry-After asks.",
        ),
    ).to_dict()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # Our own checks first: they name the setting and never echo the key.
        try:
            settings = resolve_settings(self.config)
        except SettingsError as exc:
            if raise_errors:
                raise ConfigValidationError("Config validation failed", errors=exc.errors) from None
            return exc.errors
        redaction.install(redaction.secret_forms(settings.admin_email, settings.api_key))
        # Numbers given as text (environment variables, hand-written JSON) pass the check
        # above; store them as numbers so that the SDK's schema check agrees.
        for name in ("page_size", "request_timeout", "max_retries", "max_retry_wait"):
            if name in self._config:
                self._config[name] = getattr(settings, name)
        return super()._validate_config(raise_errors=raise_errors)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # The SDK writes a STATE here and exits 0. There are no bookmarks to save, a
        # write from a signal handler could land inside one in progress, and a sync
        # stopped half-way did not succeed: exit 128 + signal, writing nothing.
        self.logger.error("Stopped by signal %d before the sync was complete", signum)
        sys.exit(128 + signum)

    def discover_streams(self) -> list[Stream]:
        return [UsersStream(self), RolesStream(self), RoleMembershipsStream(self)]


def main() -> None:
    """Console entry point: the SDK's CLI, with a one-line error for known failures."""
    try:
        TapSpanning.cli()
    except (SpanningError, OutputClosedError) as exc:
        logging.getLogger(TapSpanning.name).error("Sync failed: %s", exc)
        sys.exit(1)
