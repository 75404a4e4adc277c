"""The JSON files the tap reads: --config, --catalog, --state, and the settings that
name a file (tenants_file, tenant_api_keys_file: setting_checks.py).

The SDK would read the command line's files with a traceback that names no file; the
SDK's command hands each path to these checks first (tap_spanning/sdk_seam/), which say in
one line which file is wrong and how, never what it holds (a config file may hold a key).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tap_spanning.day_digests import state_problem


class JsonFileError(Exception):
    """Files given on the command line that the tap refuses: one line each, naming the file."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def _file_text(path: str, what: str) -> tuple[str, str | None]:
    """(the file's text, None) or ("", one line saying why it cannot be read)."""
    try:
        return Path(path).read_text(encoding="utf-8"), None
    except OSError as exc:
        return "", f"{what} file {path}: cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError:
        return "", f"{what} file {path}: not UTF-8 text"


def _parsed(text: str, path: str, what: str) -> tuple[object, str | None]:
    """(the parsed text, None) or (None, one line saying why it is not JSON)."""
    try:
        return json.loads(text), None
    except ValueError as exc:
        # Say where, never what: the line may hold a key.
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        return None, f"{what} file {path}: not valid JSON{where}"
    except RecursionError:
        return None, f"{what} file {path}: its JSON is nested too deep to read"


def json_file(path: str, what: str) -> tuple[object, str | None]:
    """(the parsed file, None) or (None, one line saying what is wrong with it)."""
    text, error = _file_text(path, what)
    if error is not None:
        return None, error
    return _parsed(text, path, what)


def _object(must: str) -> Callable[[object], str | None]:
    return lambda parsed: None if isinstance(parsed, dict) else must


MUST_BE_A_STATE = (
    'must be a Singer state, a JSON object whose "bookmarks" (if any) is an object of objects'
)
# What to do about a malformed digest of the days sent (docs/backup-health.md).
CLEAR_THE_STATE = "the tap wrote it; clear the state (meltano state clear) to send every day again"


def _state_problem(state: object) -> str | None:
    if not isinstance(state, dict):
        return MUST_BE_A_STATE
    bookmarks = state.get("bookmarks", {})
    if not (isinstance(bookmarks, dict) and all(isinstance(b, dict) for b in bookmarks.values())):
        return MUST_BE_A_STATE
    problem = state_problem(state)  # the histories' digests (day_digests.py)
    return None if problem is None else f"{problem} ({CLEAR_THE_STATE})"


# The command line's files: what is wrong with one, if anything, in words that quote none of it.
SHAPES: dict[str, Callable[[object], str | None]] = {
    "config": _object("must be a JSON object of settings"),
    "catalog": _object("must be a JSON object with 'streams'"),
    "state": _state_problem,
}


def command_line_file(path: str, what: str) -> str:
    """The text of a `--config`, `--catalog` or `--state` file (`what`: config, catalog
    or state) once it is read, parsed and of the right shape; else JsonFileError."""
    text, error = _file_text(path, what)
    if error is None:
        parsed, error = _parsed(text, path, what)
        problem = None if error is not None else SHAPES[what](parsed)
        if problem is not None:
            error = f"{what} file {path}: {problem}"
    if error is not None:
        raise JsonFileError([error])
    return text
