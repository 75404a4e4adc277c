"""The seam: the only place that touches a private member of singer-sdk, requests or urllib3.

Everything else in the tap uses public APIs. Each private member used here is listed
in `PRIVATE_MEMBERS` with the behaviour it changes and why, and tests/unit/test_sdk_seam.py
pins each one's existence and call shape, so an upgrade that changes one fails in the
tests rather than in production. docs/development.md's table is `seam_table_markdown()`.

The tap's classes that override them: `SeamTap` and `SeamStream` (singer-sdk; the command
line's part of `SeamTap` is `CommandTap`, in command.py), and the HTTP client's hooks
(`set_content`, `LendingPool`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar

import requests
from singer_sdk import Stream, Tap
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_spanning.sdk_seam.command import CommandTap
from tap_spanning.settings import SettingsError
from tap_spanning.writer import BufferedMsgSpecWriter

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Record


@dataclass(frozen=True)
class PrivateMember:
    """A private member of a library the tap depends on, and why the tap touches it."""

    library: str  # the distribution: singer-sdk, requests or urllib3
    owner: str  # the class (or module) that defines it
    reason: str  # the behaviour it changes, and why

    def test_name(self, member: str) -> str:
        """The test in tests/unit/test_sdk_seam.py that pins it: test_<owner>_<member>."""
        return f"test_{self.owner.removesuffix('Base')}_{member.lstrip('_')}".lower()


# member -> where it lives and why. tests/unit/test_sdk_seam.py pins each one (its test is
# named after it) and checks that no other module touches one; docs/development.md's table is
# made from this one.
PRIVATE_MEMBERS: dict[str, PrivateMember] = {
    "_validate_config": PrivateMember(
        "singer-sdk",
        "PluginBase",
        "runs the tap's own settings check first: its messages name the setting and the "
        "tenant and never echo a key, where the SDK's schema errors quote values",
    ),
    "_config": PrivateMember(
        "singer-sdk",
        "PluginBase",
        "stores numbers given as text (environment, Meltano) as numbers, so that the "
        "SDK's schema check that follows agrees with the tap's",
    ),
    "_env_var_config": PrivateMember(
        "singer-sdk",
        "PluginBase",
        "the SDK parses TAP_SPANNING_* with int() and a traceback that echoes the value, "
        "and reads any other boolean than 'true' as false; the tap reads them as text and "
        "checks them like settings from a file",
    ),
    "_ConfigInput": PrivateMember(
        "singer-sdk",
        "plugin_base",
        "what the SDK's --config callback (cb_config) hands to every mode; the tap checks "
        "each --config file first and names the file in one line, where the SDK's read is "
        "a traceback that names none",
    ),
    # The one public method listed: the seam relies on what it builds, not on its name.
    "get_singer_command": PrivateMember(
        "singer-sdk",
        "Tap",
        "the --catalog and --state options it builds read their file with click.File (a "
        "missing one is click's usage text and exit 2, a bad one the SDK's traceback); "
        "the seam gives them a type that checks the file first, one line naming it",
    ),
    "_handle_termination": PrivateMember(
        "singer-sdk",
        "PluginBase",
        "the SDK writes a STATE and exits 0 on SIGTERM/SIGINT; a sync stopped half-way "
        "did not succeed, so exit 128 + signal with the reason as the last line",
    ),
    "_write_activate_version_message": PrivateMember(
        "singer-sdk",
        "Stream",
        "the SDK sends ACTIVATE_VERSION before the first record; a loader with hard delete "
        "would then drop the old rows of a sync that later fails. Held back until every "
        "tenant's data is written",
    ),
    "_stream_version": PrivateMember(
        "singer-sdk",
        "Stream",
        "the SDK's table version is whole seconds, so two runs in one second share it "
        "and the second deletes nothing; set to the run's start in milliseconds",
    ),
    "_write_record_message": PrivateMember(
        "singer-sdk",
        "Stream",
        "skips the SDK's per-record steps (property pop, type conformance, mapping) "
        "when they cannot change the record: half the tap's time at 100,000 users",
    ),
    "_write_schema_message": PrivateMember(
        "singer-sdk",
        "Stream",
        "role_memberships is fed a page at a time, not synced per parent record: "
        "one SCHEMA per run, not one per user",
    ),
    "_content": PrivateMember(
        "requests",
        "Response",
        "a body read in chunks under a size bound (an endless or huge body would fill the "
        "memory of the whole fleet run) is handed back as the response's content, so that "
        ".content, .text and .json() work as usual",
    ),
    "_get_conn": PrivateMember(
        "urllib3",
        "HTTPConnectionPool",
        "the one point where a request takes its connection: the deadline watchdog "
        "(tap_spanning/transport.py) must know the socket to shut when a response "
        "trickles past request_timeout, which requests' per-read timeout never ends",
    ),
}


def seam_table_markdown() -> str:
    """docs/development.md's table of private members (tests/unit/test_sdk_seam.py compares
    them)."""
    rows = [
        "| member | library | why |",
        "|---|---|---|",
        *(
            f"| `{m.owner}.{name}` | {m.library} | {m.reason} |"
            for name, m in PRIVATE_MEMBERS.items()
        ),
    ]
    return "\n".join(rows)


def set_content(response: requests.Response, body: bytes) -> None:
    """Make `body`, read by the caller under its own bounds, the response's content."""
    response._content = body


class LendingPool:
    """Mixed into urllib3's connection pools: `lent` sees each connection a request takes."""

    def lent(self, connection: Any) -> None:
        """Called with the connection the pool just handed to a request."""

    # urllib3's HTTPConnectionPool._get_conn: every request takes its connection here.
    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        self.lent(connection)
        return connection


class SeamTap(CommandTap):
    """The tap-level private members: command line, settings check and signals."""

    # The tap's own check, run before the SDK's schema check: it returns the errors it
    # found (an empty list when the settings are good) and may normalise values.
    def check_settings(self, config: dict[str, Any]) -> list[str]:
        """Check and normalise `config` in place; return the mistakes found."""
        raise NotImplementedError

    def stopped_by_signal(self, signum: int) -> None:
        """Say why the run stops; called before the process exits on a signal."""

    def environment_settings(self) -> dict[str, Any]:
        """The settings given in the environment (with `--config=ENV`)."""
        raise NotImplementedError

    @property
    @override
    def _env_var_config(self) -> dict[str, Any]:
        # The SDK's parse loads a .env file into the environment first: keep that, and
        # ignore what it makes of the values (it may fail on them, with a traceback).
        with contextlib.suppress(Exception):
            _ = super()._env_var_config
        return self.environment_settings()

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = self.check_settings(self._config)
        if errors:
            if raise_errors:
                raise SettingsError(errors)
            return errors
        return super()._validate_config(raise_errors=raise_errors)

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # No bookmarks to save: hand over the records written so far (the writer ends a
        # message the signal cut), say why, and exit 128 + signal at once. sys.exit would
        # unwind through the SDK's timers, which log after the reason.
        writer = self.message_writer
        if isinstance(writer, BufferedMsgSpecWriter):
            writer.flush_at_exit()
        self.stopped_by_signal(signum)
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        sys.stderr.flush()
        os._exit(128 + signum)


class SeamStream(Stream):
    """The stream-level private members: when ACTIVATE_VERSION goes, how RECORDs go.

    ACTIVATE_VERSION is held back and sent by `activate_version()`, which the streams
    call once every tenant's data is written (docs/streams.md, "What a sync emits"). The version is
    the run's start in milliseconds.

    RECORDs skip the SDK's per-record steps when those cannot change them: our records
    are built field by field from the schema, so with every property selected and no
    stream map or flattening, removing deselected properties, conforming types and
    mapping all hand the record back as it was. Otherwise the SDK's path runs.
    """

    # The time the records being written were fetched: their time_extracted.
    extracted_at: datetime | None = None
    # False for a history (tenant_syncs, the backup days): never an ACTIVATE_VERSION,
    # which would delete what the earlier runs wrote.
    activates: ClassVar[bool] = True

    @override
    def __init__(self, tap: Tap, *args: Any, **kwargs: Any) -> None:
        super().__init__(tap, *args, **kwargs)
        self.tap = tap
        self._version_held = False
        self._schema_written = False

    @property
    def run_version(self) -> int:
        """The table version of this run: its start, in milliseconds."""
        return self.tap.initialized_at

    def hold_version(self) -> None:
        """Start a table version, to be activated later, as the SDK's sync() would."""
        if self.selected and self.emit_activate_version_messages:
            self._write_activate_version_message(self.run_version)

    @override
    def _write_activate_version_message(self, full_table_version: int) -> None:
        self._stream_version = self.run_version
        self._version_held = self.activates

    def activate_version(self) -> None:
        """Send the ACTIVATE_VERSION held back during the run, if any (once)."""
        if self._version_held and self._stream_version is not None:
            self._version_held = False
            super()._write_activate_version_message(self._stream_version)

    @override
    def _write_schema_message(self) -> None:
        if not self._schema_written:
            self._schema_written = True
            super()._write_schema_message()

    def write_schema(self) -> None:
        """Write this stream's SCHEMA, once per run."""
        if self.selected:
            self._write_schema_message()

    @cached_property
    def records_pass_through(self) -> bool:
        """True when the SDK's per-record steps would hand every record back unchanged."""
        maps = self.stream_maps
        return (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and all(self.mask[("properties", name)] for name in self.schema["properties"])
        )

    def write_record(self, record: Record) -> None:
        """Write one RECORD (through maps and selection when they apply)."""
        self._write_record_message(record)

    @override
    def _write_record_message(self, record: Record) -> None:
        if not self.records_pass_through:
            super()._write_record_message(record)
            return
        stream = self.stream_maps[0].stream_alias
        extracted_at = self.extracted_at or datetime.now(timezone.utc)
        writer = self.tap.message_writer
        if isinstance(writer, BufferedMsgSpecWriter):
            writer.write_record(stream, record, self._stream_version, extracted_at)
        else:
            self.tap.write_message(
                RecordMessage(
                    stream, record, version=self._stream_version, time_extracted=extracted_at
                )
            )
        self.state_manager.is_flushed = False  # as the SDK's path does: STATE follows
