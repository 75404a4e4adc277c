"""What a run of the tap is given: the catalog it discovers, with streams and properties
selected or not, and the config an MSP writes for a fleet of emulated tenants."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tests.tapdriver import run_in_process


def discovered_catalog() -> dict[str, Any]:
    """What `tap-spanning --discover` prints, parsed: a catalog to edit and pass back."""
    run = run_in_process(None, None, "--discover")
    assert run.returncode == 0, run.stderr[-2000:]
    catalog: dict[str, Any] = json.loads(run.stdout)
    return catalog


def set_selected(catalog: dict[str, Any], stream: str, breadcrumb: list[str], on: bool) -> None:
    """Select or deselect a stream (breadcrumb []) or one of its properties."""
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == stream:
            for item in entry["metadata"]:
                if item["breadcrumb"] == breadcrumb:
                    item["metadata"]["selected"] = on


def catalog_with_backups() -> dict[str, Any]:
    """The discovered catalog with the histories (off by default) selected too: the backup
    status and role_membership_history."""
    found = discovered_catalog()
    for stream in ("backup_summaries", "user_backups", "role_membership_history"):
        set_selected(found, stream, [], True)
    return found


def fleet_config(emulator: Any, tenants: Sequence[Any], **overrides: Any) -> dict[str, Any]:
    """The config an MSP writes for a FleetEmulator's tenants: the list in the config, the
    keys in tenant_api_keys, activation on; `overrides` on top (page_size, ...)."""
    config: dict[str, Any] = {
        "tenants": [
            {
                "tenant_id": t.tenant_id,
                "admin_email": t.admin_email,
                "base_url": emulator.base_url(t.tenant_id),
            }
            for t in tenants
        ],
        "tenant_api_keys": {t.tenant_id: t.api_key for t in tenants},
        "max_retry_wait": 0.01,
        "emit_activate_version_messages": True,
    }
    config.update(overrides)
    return config
