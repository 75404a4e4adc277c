"""Tenants whose pages are odd but valid: the tap must accept each and emit it exactly
(tests/hostile_pages.py lists them among its cases as "accept").

Each function is given the emulator and the plain tenant it serves, makes the tenant odd,
and returns the users the records must match (`expected_of` turns them into the ground
truth of every stream).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

from spanning_emulator import TAG_SPELLINGS, SpanningEmulator, expected_output

from tests.hostile_server import by_users_request

Users = list[dict[str, Any]]
OddTenant = Callable[[SpanningEmulator, Users], Users]


def guid() -> str:
    return str(uuid.uuid4())


def tenant_of(emulator: SpanningEmulator, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    emulator.set_users(users)
    return users


# Hand-written: the spellings the tap accepts for a boolean, and what they mean.
BOOLEAN_SPELLINGS: dict[object, bool] = {
    "true": True,
    "TRUE": True,
    "True": True,
    "1": True,
    "yes": True,
    "false": False,
    "FALSE": False,
    "0": False,
    "no": False,
    "No": False,
}


def booleans_as_strings(emulator: SpanningEmulator, tenant: Users) -> Users:
    spellings = list(BOOLEAN_SPELLINGS)
    flags = ("assigned", "isAdmin", "isDeleted", "isArchive")
    sent, meant = [], []
    for index, user in enumerate(copy.deepcopy(tenant)):
        user["tags"] = ["Shared Mailbox"]
        for offset, flag in enumerate(flags):
            user[flag] = spellings[(index * len(flags) + offset) % len(spellings)]
        sent.append(user)
        meant.append({**user, **{flag: BOOLEAN_SPELLINGS[user[flag]] for flag in flags}})
    emulator.set_users(sent)
    # Every spelling is used, and both values reach every flag somewhere.
    assert {u[f] for u in sent for f in flags} == set(spellings)
    for flag in flags:
        assert {u[flag] for u in meant} == {True, False}
    return meant


def nulls_everywhere(emulator: SpanningEmulator, tenant: Users) -> Users:
    nulls = dict.fromkeys(
        (
            "userPrincipalName",
            "email",
            "displayName",
            "assigned",
            "isAdmin",
            "isDeleted",
            "isArchive",
            "tags",
        )
    )
    users: list[dict[str, Any]] = [
        {**nulls, "msId": guid()},  # everything null: a plain `user`
        {"msId": guid()},  # everything absent: the same
        {**nulls, "msId": guid(), "isArchive": True},  # user + archived, disabled
        {**nulls, "msId": guid(), "tags": []},  # no role at all
        {**nulls, "msId": guid(), "userDisplayName": None, "tags": ["Global Admin"]},
        *copy.deepcopy(tenant[:1]),
    ]
    return tenant_of(emulator, users)


def display_name_of_5_mb(emulator: SpanningEmulator, tenant: Users) -> Users:
    users = copy.deepcopy(tenant)
    unit = "Zoë 𠮷 🚀 "
    users[3]["displayName"] = (unit * (5 * 2**20 // len(unit.encode())))[: 5 * 2**20]
    return tenant_of(emulator, users)


CONTROL_TEXT = "nul\u0000 esc\u001b[31mred\u001b[0m ls\u2028 nel\u0085 fs\u001c emoji😀👩‍💻 ext𠮷"


def control_and_astral_text(emulator: SpanningEmulator, tenant: Users) -> Users:
    users = copy.deepcopy(tenant)
    for index, user in enumerate(users):
        user["displayName"] = f"{index} {CONTROL_TEXT}"
        user["email"] = f"{index}\u2028😀@contoso.example"
        user["userPrincipalName"] = f"{index}.𠮷😀\u2028{user['userPrincipalName']}"
        user["tags"] = ["Global Admin", f"team {CONTROL_TEXT}", "𠮷野家 😀"]
    return tenant_of(emulator, users)


def unknown_extra_fields(emulator: SpanningEmulator, tenant: Users) -> Users:
    def decorate(number: int, page: dict[str, Any]) -> dict[str, Any]:
        for user in page["users"]:
            user["department"] = "Finance"
            user["backupSummary"] = [{"type": "mail", "status": "success"}]
            user["nested"] = {"deep": [1, {"x": None}], "msId": "not-this-one"}
            user["isArchived"] = True  # a misspelling: not isArchive, so it means nothing
            if user.get("displayName") is not None:
                user["userDisplayName"] = "ignored while displayName is set"
        return {"@odata.context": "x", "total": 6, "meta": {"users": "no"}, **page}

    emulator.page_hook = by_users_request(emulator, decorate)
    return tenant


ODD_TENANTS: dict[str, OddTenant] = {
    "booleans-as-strings": booleans_as_strings,
    "nulls-everywhere": nulls_everywhere,
    "display-name-of-5-mb": display_name_of_5_mb,
    "control-and-astral-text": control_and_astral_text,
    "unknown-extra-fields": unknown_extra_fields,
}


def expected_of(users: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The emulator's ground truth, also for tags its hand-written table does not list.

    A tag outside TAG_SPELLINGS is computed as "VIP" (a tag naming no role) and put
    back in the `users` record, where it must appear as sent.
    """
    stand_ins = copy.deepcopy(users)
    for user in stand_ins:
        if isinstance(user.get("tags"), list):
            user["tags"] = [tag if tag in TAG_SPELLINGS else "VIP" for tag in user["tags"]]
    expected = expected_output(stand_ins)
    by_msid = {user["msId"]: user for user in users}
    for record in expected["users"]:
        tags = by_msid[record["msId"]].get("tags")
        record["tags"] = list(tags) if isinstance(tags, list) else None
    return expected
