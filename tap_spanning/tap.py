"""tap-spanning: wires the settings, the run and the streams to the SDK's CLI."""

from __future__ import annotations

import copy
import logging
import os
import sys
from functools import cached_property
from typing import Any, ClassVar

from singer_sdk import Stream
from typing_extensions import override

from tap_spanning import redaction
from tap_spanning.config_schema import CONFIG_SCHEMA, ENV_PREFIX
from tap_spanning.day_digests import SENT_DAYS
from tap_spanning.json_files import JsonFileError
from tap_spanning.run import RunFailed, SyncRun
from tap_spanning.sdk_seam import SeamTap
from tap_spanning.settings import (
    Settings,
    SettingsError,
    check_config,
    resolve_settings,
    settings_from_environment,
)
from tap_spanning.shards import shard_version
from tap_spanning.signals import STOPPED
from tap_spanning.streams import STREAM_TYPES, history_streams, run_plan, sync_order, tallies
from tap_spanning.writer import BufferedMsgSpecWriter, OutputClosedError


class TapSpanning(SeamTap):
    """Singer tap for Kaseya Spanning Backup for Office 365."""

    name = "tap-spanning"
    message_writer_class = BufferedMsgSpecWriter
    # A copy: the SDK adds its own settings to the tap's schema in place.
    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)
    # The runs this process made, for main() to close with their summary and failures.
    runs: ClassVar[list[SyncRun]] = []

    @cached_property
    def settings(self) -> Settings:
        """The checked settings (check_settings sets them when it checks the config)."""
        return resolve_settings(self.config)

    @cached_property
    def sync_run(self) -> SyncRun:
        """This run: its tenants, failures and counters, handed to every stream."""
        run = SyncRun(
            lambda: self.settings,
            self.logger,
            f"{self.name}/{self.plugin_version}",  # the User-Agent of every request
            version=self.run_version(),
            # Read when the run begins: by then the catalog has said what is wanted.
            plan=lambda: run_plan(self.streams.values()),
            tallies=tallies(),
        )
        TapSpanning.runs.append(run)
        return run

    def run_version(self) -> int:
        """The run's sync_version: its start in milliseconds, apart from every other
        shard's (shards.py); the start itself where there are no settings (--discover)."""
        try:
            settings = self.settings
        except SettingsError:
            return self.initialized_at
        return shard_version(self.initialized_at, settings.shard_count, settings.shard_index)

    @override
    def check_settings(self, config: dict[str, Any]) -> list[str]:
        self.append_builtin_config(self.config_jsonschema)
        checked = check_config(config, self.config_jsonschema["properties"])
        for warning in checked.warnings:
            self.logger.warning("%s", warning)
        if checked.settings is None:
            return checked.errors
        redaction.install(checked.settings.secret_forms)
        self.settings = checked.settings
        return []

    @override
    def environment_settings(self) -> dict[str, Any]:
        self.append_builtin_config(self.config_jsonschema)
        return settings_from_environment(
            os.environ, self.config_jsonschema["properties"], ENV_PREFIX
        )

    @override
    def stopped_by_signal(self, signum: int) -> None:
        self.logger.error("%s", STOPPED.format(signum))

    @override
    def load_state(self, state: dict[str, Any]) -> None:
        # What the tap keeps in the state is each history's digests of the days it sent
        # (streams/history.py): nothing else of the state given is kept, nor written back.
        histories = history_streams()
        bookmarks = state.get("bookmarks")
        kept = {
            name: {SENT_DAYS: bookmark[SENT_DAYS]}
            for name, bookmark in (bookmarks.items() if isinstance(bookmarks, dict) else ())
            if name in histories and isinstance(bookmark, dict) and SENT_DAYS in bookmark
        }
        super().load_state({"bookmarks": kept})

    @override
    def discover_streams(self) -> list[Stream]:
        run = self.sync_run
        return [stream_type(self, run) for stream_type in STREAM_TYPES]

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        # The SDK syncs streams in name order, so `roles` would write its records before
        # any request: the streams' own order instead (docs/streams.md, "What a sync emits").
        return sync_order(super().streams)


def main() -> None:
    """Console entry point: the SDK's CLI, closed by the run's summary and failures."""
    logger = logging.getLogger(TapSpanning.name)
    # One process may call main() more than once (the tests): nothing from a run before.
    TapSpanning.runs.clear()
    redaction.install([])  # none from a run before (the tests run many)
    code: int | str | None = 0
    try:
        TapSpanning.cli()
    except SystemExit as done:
        code = done.code
    except RunFailed:
        code = 1  # the run's failure line follows
    except JsonFileError as refused:
        # A --config, --catalog or --state file, before the SDK reads it: one line each, for
        # every --config file, or the first --catalog or --state file that is wrong.
        for line in refused.lines:
            print(line, file=sys.stderr)
        sys.exit(1)
    except SettingsError as refused:
        # Before any request. One line, the last: Meltano's connection test shows it.
        logger.error("Config validation failed: %s", "; ".join(refused.errors))
        sys.exit(1)
    except OutputClosedError as exc:
        logger.error("Sync failed: %s", exc)
        sys.exit(1)
    finally:
        for run in TapSpanning.runs:
            run.close()  # workers of a sync that stopped early stop at their next item
    runs = [run for run in TapSpanning.runs if run.begun]
    for run in runs:
        logger.info("%s", run.summary_line())
    for run in runs:
        if run.failures:
            logger.error("%s", run.failure_line())
    failed = any(run.exits_failed() for run in runs)
    sys.exit(1 if failed else code)
