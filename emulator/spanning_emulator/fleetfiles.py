"""What `spanning-emulator --tenants K --write-fleet DIR` writes: a tap config without
keys, the keys in a .env file of their own, and the ground truth of a correct tap."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .backup_history import as_day, utc_today
from .emulated import EmulatedTenant
from .hostile import hostile_case, reason_names
from .tenant import expected_output, expected_roles_stream, expected_tenant_record

TENANT_KEYS_ENV = "TAP_SPANNING_TENANT_API_KEYS"
FLEET_PAGE_SIZE = 1000
TENANT_STREAMS = ("users", "role_memberships", "tenants", "backup_summaries", "user_backups")
HOSTILE_FILE = "hostile.json"
_HOSTILE_ABOUT = (
    "Tenants serving hostile values (spanning_emulator.hostile). fails=true: a correct tap "
    "fails that tenant alone (tenant_syncs status failed, its reason naming one of "
    "reason_names), so its expected files are empty: none of its rows may be current, and "
    "no backup row of it may hold the hostile value (rows written before the failure hold "
    "its true values, or nothing). fails=false: the tenant completes and its files hold "
    "its rows as for any other tenant."
)


def write_jsonl(path: Path, records: Iterable[object]) -> None:
    """One JSON record a line."""
    lines = (json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    path.write_text("".join(lines), encoding="utf-8")


def base_url(host: str, port: int) -> str:
    """http://host:port, brackets around an IPv6 address."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def client_name(tenant_id: str) -> str:
    """The client's name in the fleet's config: its id's words after the number, in title
    case ("t0007-fourth-coffee" is "Fourth Coffee (t0007)"), so reports show names."""
    number, _, words = tenant_id.partition("-")
    return f"{words.replace('-', ' ').title()} ({number})" if words else tenant_id


def write_fleet(directory: Path, tenants: Sequence[EmulatedTenant], port: int) -> None:
    """tap-config.json (no keys), tenant-keys.env (the keys, mode 0600) and expected/
    (per tenant: users, role_memberships, tenants, and the backup streams of the 7 days
    ending the tenant's today; empty for a tenant a correct tap fails, described with
    every hostile tenant in expected/hostile.json)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "tenants": [
            {
                "tenant_id": tenant.tenant_id,
                "name": client_name(tenant.tenant_id),
                "admin_email": tenant.admin_email,
                "base_url": base_url(tenant.host, port),
            }
            for tenant in tenants
        ],
        "page_size": FLEET_PAGE_SIZE,
    }
    (directory / "tap-config.json").write_text(json.dumps(config, indent=2) + "\n", "utf-8")
    keys = json.dumps({tenant.tenant_id: tenant.api_key for tenant in tenants})
    if "'" in keys:
        raise ValueError("a tenant id or key holds a single quote: cannot write the .env line")
    env_path = directory / "tenant-keys.env"
    descriptor = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as env_file:
        env_file.write(f"{TENANT_KEYS_ENV}='{keys}'\n")
    expected = directory / "expected"
    expected.mkdir(exist_ok=True)
    write_jsonl(expected / "roles.jsonl", expected_roles_stream())
    for tenant in tenants:
        folder = expected / tenant.tenant_id
        folder.mkdir(exist_ok=True)
        for stream, records in expected_records(tenant, base_url(tenant.host, port)).items():
            write_jsonl(folder / f"{stream}.jsonl", records)
    hostile = {
        tenant.tenant_id: hostile_entry(tenant) for tenant in tenants if tenant.hostile is not None
    }
    if hostile:
        document = {"about": _HOSTILE_ABOUT, "tenants": hostile}
        (expected / HOSTILE_FILE).write_text(json.dumps(document, indent=2) + "\n", "utf-8")


def expected_records(tenant: EmulatedTenant, url: str) -> dict[str, list[dict[str, object]]]:
    """What a correct tap writes of the tenant, per tenant-data stream (without
    sync_version): nothing when its hostile case fails it."""
    if tenant.fails:
        return {stream: [] for stream in TENANT_STREAMS}
    output = expected_output(tenant.users, tenant.tenant_id)
    record = expected_tenant_record(
        tenant.tenant_id, tenant.served_counters(), url, client_name(tenant.tenant_id)
    )
    return {
        "users": output["users"],
        "role_memberships": output["role_memberships"],
        "tenants": [record],
        **tenant.expected_backups(),
    }


def hostile_entry(tenant: EmulatedTenant, today: dt.date | None = None) -> dict[str, object]:
    """A hostile tenant's entry of hostile.json: its case, what it sends, whether a
    correct tap fails it, and what the reason must name (one of them)."""
    assert tenant.hostile is not None
    row = hostile_case(tenant.hostile)
    newest = as_day(today or tenant.today or utc_today())
    return {
        "case": row.name,
        "description": row.description,
        "fails": row.fails,
        "reason_names": list(reason_names(row.name, newest)),
    }
