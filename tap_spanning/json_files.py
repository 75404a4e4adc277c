"""The JSON files the tap reads: --config, --catalog, --state, and the settings that
name a file (tenants_file, tenant_api_keys_file: settings.py).

The SDK reads the command line's files before the tap starts, with a traceback that names
no file; these checks run first and say in one line which file is wrong and how, never
what it holds (a config file may hold a key).
"""

from __future__ import annotations

import json
from pathlib import Path


def _option_values(argv: list[str], option: str) -> list[str]:
    """The values of `--option VALUE` and `--option=VALUE` in argv."""
    values: list[str] = []
    for index, arg in enumerate(argv):
        if arg == option and index + 1 < len(argv):
            values.append(argv[index + 1])
        elif arg.startswith(f"{option}="):
            values.append(arg.partition("=")[2])
    return values


def json_file(path: str, what: str) -> tuple[object, str | None]:
    """(the parsed file, None) or (None, one line saying what is wrong with it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return None, f"{what} file {path}: cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError:
        return None, f"{what} file {path}: not UTF-8 text"
    try:
        return json.loads(text), None
    except ValueError as exc:
        # Say where, never what: the line may hold a key.
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        return None, f"{what} file {path}: not valid JSON{where}"
    except RecursionError:
        return None, f"{what} file {path}: its JSON is nested too deep to read"


def argv_file_errors(argv: list[str]) -> list[str]:
    """One line per `--config`, `--catalog` or `--state` file that cannot be read or has
    the wrong shape.

    The SDK reads these files before the tap starts, with a traceback that names no file.
    """
    errors: list[str] = []
    for path in _option_values(argv, "--config"):
        if path == "ENV":
            continue
        parsed, error = json_file(path, "config")
        if error is None and not isinstance(parsed, dict):
            error = f"config file {path}: must be a JSON object of settings"
        errors += [error] if error else []
    for option in ("--catalog", "--properties"):
        for path in _option_values(argv, option):
            parsed, error = json_file(path, "catalog")
            if error is None and not isinstance(parsed, dict):
                error = f"catalog file {path}: must be a JSON object with 'streams'"
            errors += [error] if error else []
    for path in _option_values(argv, "--state"):
        parsed, error = json_file(path, "state")
        if error is None and not _is_singer_state(parsed):
            error = (
                f"state file {path}: must be a Singer state, a JSON object whose "
                '"bookmarks" (if any) is an object of objects'
            )
        errors += [error] if error else []
    return errors


def _is_singer_state(state: object) -> bool:
    if not isinstance(state, dict):
        return False
    bookmarks = state.get("bookmarks", {})
    return isinstance(bookmarks, dict) and all(isinstance(b, dict) for b in bookmarks.values())


def without_state(argv: list[str]) -> list[str]:
    """argv without `--state`: the tap keeps no bookmarks, so it starts from none and
    writes only the state it means to keep, never an echo of what it was given."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--state":
            skip = True
        elif not arg.startswith("--state="):
            kept.append(arg)
    return kept
