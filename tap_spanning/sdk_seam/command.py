"""The seam's part of the command line: the SDK's click command alone parses argv, and
the tap checks each file it names before the SDK reads it.

`cb_config` gets the --config paths; the --catalog and --state options get a type of the
tap's. The SDK would read the files with a traceback that names no file, and click would
refuse a missing --catalog or --state with its usage text and exit 2. Each file is
checked first (one line naming it, never what it holds; exit 1 in `tap.main`), before any
request, in every mode.
"""

from __future__ import annotations

import io
from typing import IO, TYPE_CHECKING, Any

import click
from singer_sdk import Tap
from typing_extensions import override

from tap_spanning.json_files import JsonFileError, command_line_file

if TYPE_CHECKING:
    from singer_sdk.plugin_base import _ConfigInput

# The options of the SDK's command whose files the tap checks, by click's name for them
# (the keyword `invoke` receives): catalog and state.
CHECKED_FILE_OPTIONS = ("catalog", "state")


class CheckedJsonFile(click.File):
    """click.File (its name in --help, a file handed on as is), but a path is read and
    checked first (tap_spanning/json_files.py) and handed on as an open file: the SDK
    reads it with `.read()`."""

    @override
    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what  # config, catalog or state: the file's kind in its messages

    @override
    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> IO[Any]:
        if isinstance(value, str):
            return io.StringIO(command_line_file(value, self.what))
        return super().convert(value, param, ctx)


class CommandTap(Tap):
    """The SDK's command, its --config, --catalog and --state checked before they are read."""

    @classmethod
    @override
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        for option in command.params:
            if option.name in CHECKED_FILE_OPTIONS:
                option.type = CheckedJsonFile(option.name)
                # Checked before --discover and --test run, as --config is, so that a bad
                # file is refused in every mode, wherever it stands on the command line.
                option.is_eager = True
        return command

    @classmethod
    @override
    def cb_config(
        cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]
    ) -> _ConfigInput:
        # --discover and --test build the tap from what this returns (ctx.params), and
        # --config is eager: every mode reads the config through here, first.
        errors: list[str] = []
        for path in value:
            if path == "ENV":
                continue
            try:
                command_line_file(path, "config")
            except JsonFileError as refused:
                errors += refused.lines
        if errors:
            raise JsonFileError(errors)
        return super().cb_config(ctx, param, value)
