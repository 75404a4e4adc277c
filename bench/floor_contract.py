"""The floor's copy of the contract (bench/floor.py): the seven roles and their tag names,
the streams' SCHEMAs, the tenant counters. Written out here, never imported from
tap_spanning, so that the floor stays an independent implementation."""

from __future__ import annotations

import re
from typing import Any

ROLES: tuple[tuple[str, str, str], ...] = (
    ("user", "User", "A standard backed-up user mailbox."),
    ("shared_mailbox", "Shared Mailbox", "A shared mailbox backed up by Spanning."),
    ("global_admin", "Global Admin", "A Microsoft 365 Global Administrator."),
    (
        "spanning_admin",
        "Spanning Admin",
        "An administrator of the Spanning Backup console (every Global Admin is one).",
    ),
    (
        "archived",
        "Archived (read-only)",
        "Holds an archive license: the backup is kept read-only, no new backups.",
    ),
    (
        "no_microsoft_license",
        "No Microsoft License",
        "Has no Microsoft 365 license that Spanning can back up.",
    ),
    (
        "deleted_from_microsoft",
        "Deleted From Microsoft",
        "Deleted from Microsoft Entra ID; the backup is still held in Spanning.",
    ),
)
ROLE_ORDER = {role_id: index for index, (role_id, _, _) in enumerate(ROLES)}
SEPARATORS = re.compile(r"[\s_\-]+")
READ_ONLY = "(readonly)"
TAG_ROLE = {
    SEPARATORS.sub("", name.casefold()).removesuffix(READ_ONLY): role_id
    for role_id, name, _ in ROLES
}
TAG_ROLE["archive"] = "archived"
DEFAULT_TENANT_ID = "default"
REGION_HOST = re.compile(r"o365-api-([a-z]+)\.spanningbackup\.com")
TENANT_COUNTERS = (
    "licenses",
    "archivedLicenses",
    "users",
    "assigned",
    "assignedStandard",
    "assignedArchive",
    "status",
)

# tenant_syncs' license counters: its column, and the counter of GET /external/tenant.
LICENSE_COLUMNS = {
    "licenses": "licenses",
    "archived_licenses": "archivedLicenses",
    "assigned_standard": "assignedStandard",
    "assigned_archive": "assignedArchive",
}
STRING = {"type": ["string", "null"]}
BOOLEAN = {"type": ["boolean", "null"]}
INTEGER = {"type": ["integer", "null"]}
SCHEMAS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "users": (
        {
            "type": "object",
            "properties": {
                "tenant_id": STRING,
                "msId": STRING,
                "userPrincipalName": STRING,
                "email": STRING,
                "displayName": STRING,
                "assigned": BOOLEAN,
                "isAdmin": BOOLEAN,
                "isDeleted": BOOLEAN,
                "isArchive": BOOLEAN,
                "tags": {"type": ["array", "null"], "items": {"type": ["string"]}},
                "disabled": BOOLEAN,
            },
        },
        ["tenant_id", "msId"],
    ),
    "role_memberships": (
        {
            "type": "object",
            "properties": {
                "tenant_id": STRING,
                "roleId": STRING,
                "msId": STRING,
                "userPrincipalName": STRING,
            },
        },
        ["tenant_id", "roleId", "msId"],
    ),
    "tenants": (
        {
            "type": "object",
            "properties": {
                "tenant_id": STRING,
                "name": STRING,
                "region": STRING,
                "base_url": STRING,
                **{name: INTEGER for name in TENANT_COUNTERS[:-1]},
                "status": STRING,
            },
        },
        ["tenant_id"],
    ),
    "roles": (
        {"type": "object", "properties": {"id": STRING, "name": STRING, "description": STRING}},
        ["id"],
    ),
    "tenant_syncs": (
        {
            "type": "object",
            "properties": {
                "tenant_id": STRING,
                "sync_version": INTEGER,
                "started_at": STRING,
                "finished_at": STRING,
                "status": STRING,
                "reason": STRING,
                "users": INTEGER,
                "role_memberships": INTEGER,
                "requests": INTEGER,
                "retries": INTEGER,
                "backup_last_day": STRING,
                "name": STRING,
                "day": STRING,
                **{column: INTEGER for column in LICENSE_COLUMNS},
                "role_set_sent": {"type": ["boolean", "null"]},
            },
        },
        ["tenant_id", "sync_version"],
    ),
}
for _name in ("users", "role_memberships", "tenants"):
    SCHEMAS[_name][0]["properties"]["sync_version"] = INTEGER

BACKUP_DAYS = 7  # the tap's default backup_days: today and the 6 days before it, UTC
BACKUP_FIELDS = (  # the counts, then backup.data's as the record names them
    "total",
    "successful",
    "partial",
    "failed",
    "items_created",
    "items_deleted",
    "items_failed",
    "items_total",
    "attempts",
)
USER_BACKUPS_SCHEMA: tuple[dict[str, Any], list[str]] = (
    {
        "type": "object",
        "properties": {
            "tenant_id": STRING,
            "msId": STRING,
            "userPrincipalName": STRING,
            "userId": STRING,
            "date": STRING,
            "type": STRING,
            **{name: INTEGER for name in BACKUP_FIELDS},
            "sync_version": INTEGER,
        },
    },
    ["tenant_id", "msId", "date", "type"],
)
