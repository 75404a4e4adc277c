"""The head start: every tenant's credentials are asked while the SDK loads.

Loading singer-sdk costs about 0.45 s of CPU before the tap can make its first request,
and the first pass of a run (every tenant's `GET /external/tenant`) is almost all
waiting. So `begin` starts the run's passes (run.py) in their worker threads before the
SDK is imported, and the tap, once built, adopts the run (`adopt`) if it would have
begun the very same one: the same settings and the same user agent. The tap checks the
streams wanted when it syncs its first stream: a run begun for others is dropped and
begun again (`SyncRun.start`). Nothing is written before every tenant has answered,
as always, so the output is the same, a few hundred milliseconds sooner (README,
"Performance").

Only a plain sync gets a head start: `--config FILE...` (no `ENV`) with `--catalog`,
`--properties` or `--state`, a config of the tap's own settings only, that passes the
tap's own check. Anything else (another mode, a stream map or BATCH setting, which the
SDK checks, a mistake) is left to the usual path, which reports it before any request.

This module, and all it imports, load without singer_sdk (tests/test_house.py).
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
from collections.abc import Callable
from typing import Any

from typing_extensions import override

from tap_spanning import redaction
from tap_spanning.json_files import catalog_path, plain_sync_config, read_json_file
from tap_spanning.run import SyncRun
from tap_spanning.settings import CONFIG_SCHEMA, TAP_SETTINGS, Settings, check_config

# The tap's name: its logger, its package, its user agent (tap.py's TapSpanning.name).
TAP_NAME = "tap-spanning"
# The children that make a parent wanted (streams.py: role_memberships and user_backups
# are children of users), and the streams a sync without a catalog leaves out (their
# selected_by_default; tests/test_house.py compares both with streams.py).
CHILDREN = {"users": ("role_memberships", "user_backups")}
OFF_BY_DEFAULT = frozenset({"backup_summaries", "user_backups"})

# The run begun here, until the tap adopts or drops it, and its logger's propagate.
_begun: SyncRun | None = None
_propagate = True
# Log records of the run's workers before the SDK set up logging: replayed then.
_held: list[logging.LogRecord] = []


class _Hold(logging.Handler):
    """Keeps the head start's log records until the tap's logging is set up."""

    @override
    def emit(self, record: logging.LogRecord) -> None:
        _held.append(record)


_hold = _Hold()


def user_agent(version: str) -> str:
    """The User-Agent of every request: the tap's name and version."""
    return f"{TAP_NAME}/{version}"


def plugin_version() -> str:
    """The tap's version as the SDK finds it (PluginBase.get_plugin_version)."""
    try:
        return importlib.metadata.version(TAP_NAME)
    except importlib.metadata.PackageNotFoundError:
        return "[could not be detected]"


def selected_streams(catalog: object) -> set[str] | None:
    """The streams a Singer catalog selects (and their wanted parents), or None if it is
    not one. Selection as the SDK reads it: `inclusion` first, then `selected`, then
    `selected-by-default`, on the stream's own (empty-breadcrumb) metadata."""
    if not isinstance(catalog, dict) or not isinstance(catalog.get("streams"), list):
        return None
    selected: set[str] = set()
    for entry in catalog["streams"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("tap_stream_id"), str):
            return None
        own: dict[str, Any] = next(
            (
                m.get("metadata", {})
                for m in entry.get("metadata", [])
                if isinstance(m, dict) and m.get("breadcrumb") == []
            ),
            {},
        )
        inclusion = own.get("inclusion")
        chosen = own.get("selected")
        if chosen is None:
            chosen = own.get("selected-by-default")
        if inclusion != "unsupported" and (inclusion == "automatic" or chosen is True):
            selected.add(entry["tap_stream_id"])
    for parent, children in CHILDREN.items():
        if selected & set(children):
            selected.add(parent)
    return selected


def begin(argv: list[str]) -> SyncRun | None:
    """Start the run's passes now, if `argv` is a plain sync with good settings."""
    global _begun, _propagate  # noqa: PLW0603  # one run per process, handed to the tap
    drop()  # one begun before and never adopted (a process runs main() once; tests more)
    config = plain_sync_config(argv)
    if config is None or not set(config) <= set(TAP_SETTINGS):
        return None
    checked = check_config(config, CONFIG_SCHEMA["properties"])
    if checked.settings is None:
        return None
    catalog = catalog_path(argv)
    wanted = None if catalog is None else selected_streams(read_json_file(catalog))
    if catalog is not None and wanted is None:
        return None
    settings = checked.settings
    redaction.install(settings.secret_forms)
    logger = logging.getLogger(TAP_NAME)
    logger.addHandler(_hold)
    _propagate, logger.propagate = logger.propagate, False
    run = SyncRun(
        lambda: settings,
        logger,
        user_agent(plugin_version()),
        version=int(time.time() * 1000),
        wanted=(lambda name: name not in OFF_BY_DEFAULT) if wanted is None else wanted.__contains__,
    )
    run.start()
    _begun = run
    return run


def secret_forms() -> list[str]:
    """The secrets the run begun here masks (none when nothing was begun)."""
    return [] if _begun is None else _begun.settings.secret_forms


def adopt(settings: Callable[[], Settings], agent: str) -> SyncRun | None:
    """The run begun here, if it is the one the tap would begin; else None (dropped).

    Called once the tap has checked its settings (`settings()`) and set up logging: the
    records the workers logged so far are handed to it.
    """
    run = _release()
    if run is None:
        return None
    if run.user_agent != agent or run.settings != settings():
        run.close()
        return None
    return run


def drop() -> None:
    """End a run begun here that the tap did not adopt (it stopped before its sync)."""
    run = _release()
    if run is not None:
        run.close()


def _release() -> SyncRun | None:
    """The run begun here (None if none), its logger's records handed to the tap's."""
    global _begun
    run, _begun = _begun, None
    if run is None:
        return None
    logger = run.logger
    logger.removeHandler(_hold)
    logger.propagate = _propagate
    held, _held[:] = list(_held), []
    for record in held:
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)
    return run
