"""The floor: the least work that produces the tap's output, with no SDK.

A plain loop with `requests` and `json`: fetch `/external/tenant` for the `tenants`
record (the tap proves the credentials with it first), then `/external/users` page by page
(following `nextLink`), turn each user into its `users` record and its
`role_memberships` records by the contract's tag rules, and write the same Singer
messages as the tap (one SCHEMA per stream, the RECORDs, the seven roles, the
`tenant_syncs` record, one STATE) to stdout, one buffered write per page. Records carry the
run's `sync_version`. Every users, role_memberships and tenants record carries the config's
`tenant_id` ("default" when unset), as the tap's one-tenant form does.

With `--user-backups` the users pages are asked with `status=true` and the 7 days ending
the server's today (the `Date` header of `/external/tenant`), and each user's
`backupSummary` items become `user_backups` records too (docs/backup-health.md).

It deliberately imports nothing from `tap_spanning` (nor from the rest of `bench` but its
own copy of the contract, bench/floor_contract.py), so the bench compares the tap with an
independent implementation. It has none of the tap's safety checks (URL pinning,
retries, validation): it is a yardstick, not a second tap.

Run: python -m bench.floor --config config.json [--user-backups]   (the tap's config file)
"""

from __future__ import annotations

import argparse
import email.utils
import json
import re
import sys
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from bench.floor_contract import (
    BACKUP_DAYS,
    DEFAULT_TENANT_ID,
    LICENSE_COLUMNS,
    READ_ONLY,
    REGION_HOST,
    ROLE_ORDER,
    ROLES,
    SCHEMAS,
    SEPARATORS,
    TAG_ROLE,
    TENANT_COUNTERS,
    USER_BACKUPS_SCHEMA,
)

_MONTH_FIRST = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_EPOCH_MS = re.compile(r"-?\d+")


def role_ids(user: dict[str, Any]) -> list[str]:
    """The contract's rules 1-3, minimally: tags ignoring case and separators, then flags."""
    tags = user.get("tags")
    found: set[str] = set()
    if tags is None:
        found.add("user")
    else:
        for tag in tags:
            role_id = TAG_ROLE.get(SEPARATORS.sub("", tag.casefold()).removesuffix(READ_ONLY))
            if role_id is not None:
                found.add(role_id)
    if user.get("isAdmin"):
        found.add("spanning_admin")
    if user.get("isArchive"):
        found.add("archived")
    if user.get("isDeleted"):
        found.add("deleted_from_microsoft")
    return sorted(found, key=ROLE_ORDER.__getitem__)


def utc_date(value: Any) -> str:
    """A backup item's `date` as YYYY-MM-DD (UTC), in the shapes the emulator sends: an ISO
    date, an ISO date-time with an offset, MM/DD/YYYY, epoch milliseconds (number or text)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, timezone.utc).date().isoformat()
    text = value.strip()
    if _EPOCH_MS.fullmatch(text):
        return datetime.fromtimestamp(int(text) / 1000, timezone.utc).date().isoformat()
    month_first = _MONTH_FIRST.fullmatch(text)
    if month_first:
        month, day, year = map(int, month_first.groups())
        return date(year, month, day).isoformat()
    if len(text) == 10:
        return date.fromisoformat(text).isoformat()
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).date().isoformat()


def count(value: Any) -> int | None:
    """A count, sent as a number or as text."""
    return None if value is None else int(value)


def backup_records(user: dict[str, Any], tenant_id: str, version: int) -> list[dict[str, Any]]:
    """The `user_backups` records of one user's `backupSummary` (none when absent)."""
    found = []
    msid, upn = user["msId"], user.get("userPrincipalName")
    for item in user.get("backupSummary") or ():
        backup = item.get("backup") or {}
        data = backup.get("data") or {}
        user_id = item.get("userId")
        found.append(
            {
                "tenant_id": tenant_id,
                "msId": msid,
                "userPrincipalName": upn,
                "userId": None if user_id is None else str(user_id),
                "date": utc_date(item["date"]),
                "type": item["type"],
                "total": count(backup.get("total")),
                "successful": count(backup.get("successful")),
                "partial": count(backup.get("partial")),
                "failed": count(backup.get("failed")),
                "items_created": count(data.get("created")),
                "items_deleted": count(data.get("deleted")),
                "items_failed": count(data.get("failed")),
                "items_total": count(data.get("total")),
                "attempts": count(data.get("attempts")),
                "sync_version": version,
            }
        )
    return found


def server_today(server_date: str | None) -> date:
    """The server's today (its `Date` header; this machine's clock without one), UTC."""
    moment = email.utils.parsedate_to_datetime(server_date) if server_date else None
    return (moment or datetime.now(timezone.utc)).astimezone(timezone.utc).date()


def backup_window(server_date: str | None) -> dict[str, str]:
    """`start` and `end` (epoch ms, both inclusive) of the BACKUP_DAYS days ending the
    server's today."""
    today = server_today(server_date)
    first = datetime.combine(today - timedelta(days=BACKUP_DAYS - 1), time.min, timezone.utc)
    after = datetime.combine(today + timedelta(days=1), time.min, timezone.utc)
    return {
        "start": str(int(first.timestamp()) * 1000),
        "end": str(int(after.timestamp()) * 1000 - 1),
    }


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def page_lines(
    users: list[dict[str, Any]],
    extracted: str,
    tenant_id: str,
    version: int,
    *,
    with_backups: bool = False,
) -> tuple[list[str], int]:
    """The RECORD lines of one page (its users, their memberships, then with
    `with_backups` their backups), and how many memberships."""
    lines: list[str] = []
    memberships: list[str] = []
    backups: list[str] = []
    for user in users:
        roles = role_ids(user)
        msid = user["msId"]
        upn = user.get("userPrincipalName")
        display = user.get("displayName")
        record = {
            "tenant_id": tenant_id,
            "msId": msid,
            "userPrincipalName": upn,
            "email": user.get("email"),
            "displayName": user.get("userDisplayName") if display is None else display,
            "assigned": user.get("assigned"),
            "isAdmin": user.get("isAdmin"),
            "isDeleted": user.get("isDeleted"),
            "isArchive": user.get("isArchive"),
            "tags": user.get("tags"),
            "disabled": "archived" in roles or "deleted_from_microsoft" in roles,
            "sync_version": version,
        }
        lines.append(
            dumps(
                {
                    "type": "RECORD",
                    "stream": "users",
                    "record": record,
                    "time_extracted": extracted,
                }
            )
        )
        memberships.extend(
            dumps(
                {
                    "type": "RECORD",
                    "stream": "role_memberships",
                    "record": {
                        "tenant_id": tenant_id,
                        "roleId": role_id,
                        "msId": msid,
                        "userPrincipalName": upn,
                        "sync_version": version,
                    },
                    "time_extracted": extracted,
                }
            )
            for role_id in roles
        )
        if with_backups:
            backups.extend(
                dumps(
                    {
                        "type": "RECORD",
                        "stream": "user_backups",
                        "record": backup,
                        "time_extracted": extracted,
                    }
                )
                for backup in backup_records(user, tenant_id, version)
            )
    lines.extend(memberships)
    lines.extend(backups)
    return lines, len(memberships)


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def origin(base_url: str) -> tuple[str, str | None]:
    """(scheme://host[:port] of a base URL, the Spanning region its host names, if any)."""
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme)
    shown = f"[{host}]" if ":" in host else host
    text = f"{parts.scheme}://{shown}" + ("" if port in (None, default) else f":{port}")
    match = REGION_HOST.fullmatch(host)
    return text, match.group(1) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--config", required=True, help="the tap's config JSON file")
    parser.add_argument(
        "--user-backups",
        action="store_true",
        help="also the user_backups stream (status=true and the last 7 days)",
    )
    args = parser.parse_args(argv)
    schemas = dict(SCHEMAS)
    if args.user_backups:
        schemas["user_backups"] = USER_BACKUPS_SCHEMA
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    base, region = origin(config["base_url"])
    tenant_id = config.get("tenant_id") or DEFAULT_TENANT_ID
    out = sys.stdout.buffer

    def write(text: str) -> None:
        out.write(text.encode("utf-8"))

    header = [
        dumps({"type": "SCHEMA", "stream": name, "schema": schema, "key_properties": keys})
        for name, (schema, keys) in schemas.items()
    ]
    write("\n".join(header) + "\n")

    version = int(datetime.now(timezone.utc).timestamp() * 1000)
    started = now()
    session = requests.Session()
    session.auth = (config["admin_email"], config["api_key"])
    session.headers["Accept"] = "application/json"
    timeout = float(config.get("request_timeout", 60))
    response = session.get(f"{base}/external/tenant", timeout=timeout, allow_redirects=False)
    response.raise_for_status()
    counters = json.loads(response.content)
    name = config.get("tenant_name")
    tenant: dict[str, Any] = {"tenant_id": tenant_id, "name": name, "region": region}
    tenant["base_url"] = base
    tenant.update((name, counters.get(name)) for name in TENANT_COUNTERS)
    tenant["sync_version"] = version
    requests_made, users, memberships = 1, 0, 0

    url: str | None = f"{base}/external/users"
    params: dict[str, Any] | None = {"size": config.get("page_size", 1000), "status": "false"}
    last_day = None  # tenant_syncs.backup_last_day: the window's last day, if one was asked
    server_date = response.headers.get("Date")
    day = (
        (
            email.utils.parsedate_to_datetime(server_date)
            if server_date
            else datetime.now(timezone.utc)
        )
        .astimezone(timezone.utc)
        .date()
        .isoformat()
    )
    if args.user_backups:
        window = backup_window(response.headers.get("Date"))
        params = {"size": config.get("page_size", 1000), "status": "true", **window}
        end = datetime.fromtimestamp(int(window["end"]) / 1000, timezone.utc)
        last_day = end.date().isoformat()
    while url:
        response = session.get(url, params=params, timeout=timeout, allow_redirects=False)
        requests_made += 1
        response.raise_for_status()
        page = json.loads(response.content)
        written, page_memberships = page_lines(
            page["users"], now(), tenant_id, version, with_backups=args.user_backups
        )
        users += len(page["users"])
        memberships += page_memberships
        write("\n".join(written) + "\n")
        link = page.get("nextLink")
        url = urljoin(f"{base}/", link) if link else None
        params = None

    extracted = now()
    lines = [
        dumps(
            {"type": "RECORD", "stream": "tenants", "record": tenant, "time_extracted": extracted}
        )
    ]
    lines.extend(
        dumps(
            {
                "type": "RECORD",
                "stream": "roles",
                "record": {"id": role_id, "name": name, "description": description},
                "time_extracted": extracted,
            }
        )
        for role_id, name, description in ROLES
    )
    sync = {
        "tenant_id": tenant_id,
        "sync_version": version,
        "started_at": started,
        "finished_at": now(),
        "status": "complete",
        "reason": None,
        "users": users,
        "role_memberships": memberships,
        "requests": requests_made,
        "retries": 0,
        "backup_last_day": last_day,
        "name": name,
        "day": day,
        **{column: counters.get(counter) for column, counter in LICENSE_COLUMNS.items()},
        "role_set_sent": None,  # role_membership_history is not selected
    }
    lines.append(
        dumps({"type": "RECORD", "stream": "tenant_syncs", "record": sync, "time_extracted": now()})
    )
    bookmarks: dict[str, dict[str, Any]] = {name: {} for name in schemas}
    lines.append(dumps({"type": "STATE", "value": {"bookmarks": bookmarks}}))
    write("\n".join(lines) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
