"""The emulator's generated tenants (the torture and realistic profiles) and their ground
truth: the roles each user holds, expected_output and the tenants record.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from spanning_emulator import (
    ROLE_DESCRIPTIONS,
    ROLE_IDS,
    ROLE_NAMES,
    TAG_SPELLINGS,
    expected_output,
    expected_roles,
    expected_tenant_record,
    generate_users,
    sort_key,
)

# ------------------------------------------------------------------ tenant generation


def test_every_tag_spelling_appears() -> None:
    seen = {tag for user in generate_users(300) for tag in user.get("tags") or []}  # type: ignore[attr-defined]
    assert seen == set(TAG_SPELLINGS)


def test_generated_tenant_shape() -> None:
    users = generate_users(2000)
    upns = [str(u["userPrincipalName"]) for u in users]
    assert len({upn.casefold() for upn in upns}) == len(users)
    assert all(isinstance(u["inActiveDirectory"], bool) for u in users)
    assert all(("displayName" in u) != ("userDisplayName" in u) for u in users)
    assert 100 < sum("userDisplayName" in u for u in users) < 300
    assert 100 < sum("tags" not in u for u in users) < 300
    assert any(u.get("tags", ...) is None for u in users)
    assert any(u.get("tags") == [] for u in users)
    assert any(u["email"] != u["userPrincipalName"] for u in users)
    assert any(any(ord(c) > 0xFFFF for c in str(u.get("displayName", ""))) for u in users)
    for marker in ("+", "'", "-", "é", "#EXT#"):
        assert any(marker in upn for upn in upns), marker
    assert any(upn != upn.lower() for upn in upns)
    assert any("extra" in u or "lastSeen" in u for u in users)
    for user in users:
        expected_roles(user)  # every tag is in the table


def test_generate_users_is_deterministic() -> None:
    assert generate_users(50, seed=4) == generate_users(50, seed=4)
    assert generate_users(50, seed=4) != generate_users(50, seed=5)
    assert generate_users(10, seed=4) == generate_users(50, seed=4)[:10]


def _flags(admin: bool = False, archive: bool = False, deleted: bool = False) -> dict[str, object]:
    return {"isAdmin": admin, "isArchive": archive, "isDeleted": deleted}


@pytest.mark.parametrize(
    ("user", "roles"),
    [
        ({"tags": ["GLOBAL_ADMIN", "VIP"], **_flags(archive=True)}, ["global_admin", "archived"]),
        (_flags(), ["user"]),
        ({"tags": None, **_flags()}, ["user"]),
        ({"tags": [], **_flags()}, []),
        ({"tags": ["VIP", "Legacy Import"], **_flags()}, []),
        (_flags(admin=True), ["user", "spanning_admin"]),
        ({"tags": ["Spanning Admin"], **_flags(admin=True)}, ["spanning_admin"]),
        (
            {"tags": ["Archive", "shared-mailbox"], **_flags(deleted=True)},
            ["shared_mailbox", "archived", "deleted_from_microsoft"],
        ),
        (
            {"tags": ["Deleted From Microsoft", "No Microsoft License", "User"]},
            ["user", "no_microsoft_license", "deleted_from_microsoft"],
        ),
        ({"tags": ["archived(read-only)", "ARCHIVED (READ-ONLY)", "Archived"]}, ["archived"]),
        ({"tags": ["Global  Admin"], "isAdmin": "true", "isArchive": 1}, ["global_admin"]),
    ],
)  # fmt: skip
def test_expected_roles_hand_written(user: dict[str, object], roles: list[str]) -> None:
    assert expected_roles(user) == roles


def test_expected_roles_rejects_tags_missing_from_the_table() -> None:
    with pytest.raises(KeyError):
        expected_roles({"tags": ["Not In The Table"]})


def test_tag_table_covers_every_role_by_its_display_name() -> None:
    assert all(TAG_SPELLINGS[ROLE_NAMES[role]] == role for role in ROLE_IDS)
    assert {role for role in TAG_SPELLINGS.values() if role} == set(ROLE_IDS)


def test_expected_output_shape() -> None:
    users = generate_users(300)
    output = expected_output(users)
    assert output["roles"] == [
        {"id": role, "name": ROLE_NAMES[role], "description": ROLE_DESCRIPTIONS[role]}
        for role in ROLE_IDS
    ]
    records = output["users"]
    assert [r["msId"] for r in records] == [u["msId"] for u in sorted(users, key=sort_key)]
    assert all(len(r) == 11 and r["displayName"] is not None for r in records)
    assert all(r["tenant_id"] == "default" for r in records + output["role_memberships"])
    roles_of = {
        r["msId"]: [m["roleId"] for m in output["role_memberships"] if m["msId"] == r["msId"]]
        for r in records
    }
    for record in records:
        roles = roles_of[record["msId"]]
        assert record["disabled"] is ("archived" in roles or "deleted_from_microsoft" in roles)
    no_tags = next(u for u in users if "tags" not in u)
    assert next(r for r in records if r["msId"] == no_tags["msId"])["tags"] is None


# ------------------------------------------------------------------ profiles

# Computed from the generator as it was before profiles existed: "torture" must not move.
TORTURE_SHA256 = {
    (300, 1): "d8c4156fd8356876206369d144d583225be9efa7cbfdefc9bb5446d4b33da890",
    (2500, 1): "ac114553e66ca7a9064ba8cfc15fed4f5f003a312e900fed284854613d394c8e",
    (120, 2): "298d9b004ce7fe0f6567a75040df94c6efe6ca289b192095f57b79b0cb102ba5",
}
TORTURE_SEED_5_FIRST = {
    "userPrincipalName": "björn.ødegaard.0@contoso.example",
    "email": "björn.ødegaard.0@contoso.example",
    "userDisplayName": "Björn Ødegaard",
    "msId": "3fc1ea36-f17f-4374-86a5-387777330bdb",
    "assigned": True,
    "isAdmin": False,
    "isDeleted": False,
    "isArchive": False,
    "tags": ["User", "USER"],
    "inActiveDirectory": True,
}


@pytest.mark.parametrize(("count", "seed"), list(TORTURE_SHA256))
def test_torture_profile_is_unchanged(count: int, seed: int) -> None:
    for users in (generate_users(count, seed), generate_users(count, seed, "torture")):
        encoded = json.dumps(users, ensure_ascii=False).encode()
        assert hashlib.sha256(encoded).hexdigest() == TORTURE_SHA256[count, seed]


def test_torture_profile_fixed_record() -> None:
    first = generate_users(3, seed=5)[0]
    assert first == TORTURE_SEED_5_FIRST
    assert list(first) == list(TORTURE_SEED_5_FIRST)  # key order too


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="profile"):
        generate_users(3, 1, "chaos")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="domain"):
        generate_users(3, 1, "torture", domain="x.example")


@pytest.mark.parametrize("seed", [1, 2])
def test_realistic_profile_proportions(seed: int) -> None:
    users = generate_users(3000, seed, "realistic")
    count = len(users)

    def share(predicate: Any) -> float:
        return sum(1 for user in users if predicate(user)) / count

    def tags(user: dict[str, object]) -> list[str]:
        return user.get("tags") or []  # type: ignore[return-value]

    assert 0.01 <= share(lambda u: "Global Admin" in tags(u)) <= 0.03
    assert 0.05 <= share(lambda u: "Shared Mailbox" in tags(u)) <= 0.10
    assert 0.005 <= share(lambda u: u["isArchive"] is True) <= 0.05
    assert 0.005 <= share(lambda u: u["isDeleted"] is True) <= 0.05
    assert 0.01 <= share(lambda u: u["isAdmin"] is True) <= 0.03
    assert share(lambda u: u.get("tags") == ["User"]) >= 0.70
    assert 0.03 <= share(lambda u: "tags" not in u) <= 0.07
    unknown = {tag for user in users for tag in tags(user) if TAG_SPELLINGS[tag] is None}
    assert unknown
    assert unknown <= {"VIP", "Finance", "Contractor", "Legacy Import"}
    assert 0 < share(lambda u: any(TAG_SPELLINGS[t] is None for t in tags(u))) <= 0.05
    known = {tag for user in users for tag in tags(user) if TAG_SPELLINGS[tag] is not None}
    assert known <= set(ROLE_NAMES.values())  # the console's display strings only
    # Every Global Admin is a Spanning admin.
    assert all(u["isAdmin"] is True for u in users if "Global Admin" in tags(u))
    # Plain names and UPNs on one domain, no emoji, no duplicates.
    upns = [str(u["userPrincipalName"]) for u in users]
    assert {upn.partition("@")[2] for upn in upns} == {"contoso.example"}
    assert len({upn.casefold() for upn in upns}) == count
    assert all(re.fullmatch(r"[a-z0-9.-]+@contoso\.example", upn) for upn in upns)
    assert all(str(u["displayName"]).isascii() and "userDisplayName" not in u for u in users)
    for user in users:
        expected_roles(user)  # every tag is in the hand-written table


def test_realistic_profile_is_deterministic_and_takes_a_domain() -> None:
    assert generate_users(40, 3, "realistic") == generate_users(40, 3, "realistic")
    assert generate_users(40, 3, "realistic") != generate_users(40, 4, "realistic")
    users = generate_users(40, 3, "realistic", domain="fabrikam.example")
    assert all(str(u["userPrincipalName"]).endswith("@fabrikam.example") for u in users)


# ------------------------------------------------------------------ ground truth


ROLE_DESCRIPTIONS_BY_HAND = {
    "user": "A standard backed-up user mailbox.",
    "shared_mailbox": "A shared mailbox backed up by Spanning.",
    "global_admin": "A Microsoft 365 Global Administrator.",
    "spanning_admin": (
        "An administrator of the Spanning Backup console (every Global Admin is one)."
    ),
    "archived": "Holds an archive license: the backup is kept read-only, no new backups.",
    "no_microsoft_license": "Has no Microsoft 365 license that Spanning can back up.",
    "deleted_from_microsoft": (
        "Deleted from Microsoft Entra ID; the backup is still held in Spanning."
    ),
}


def test_expected_output_carries_tenant_id_first() -> None:
    users = generate_users(40, seed=6)
    output = expected_output(users, tenant_id="t0042-fabrikam")
    assert list(output["users"][0]) == [
        "tenant_id", "msId", "userPrincipalName", "email", "displayName", "assigned",
        "isAdmin", "isDeleted", "isArchive", "tags", "disabled",
    ]  # fmt: skip
    assert list(output["role_memberships"][0]) == [
        "tenant_id", "roleId", "msId", "userPrincipalName",
    ]  # fmt: skip
    assert {r["tenant_id"] for r in output["users"] + output["role_memberships"]} == {
        "t0042-fabrikam"
    }
    assert output["roles"] == [
        {"id": role, "name": ROLE_NAMES[role], "description": ROLE_DESCRIPTIONS_BY_HAND[role]}
        for role in ROLE_IDS
    ]
    default = expected_output(users)
    assert {r["tenant_id"] for r in default["users"]} == {"default"}


def test_expected_tenant_record() -> None:
    named = expected_tenant_record("t1", {}, "http://127.0.0.2:41234", "Contoso & Co")
    assert named["name"] == "Contoso & Co"
    counters = {"licenses": 15, "users": 26, "status": "paid", "unknown": 1}
    record = expected_tenant_record("t0001-contoso", counters, "http://127.0.0.2:41234")
    assert record == {
        "tenant_id": "t0001-contoso",
        "name": None,
        "region": None,
        "base_url": "http://127.0.0.2:41234",
        "licenses": 15,
        "archivedLicenses": None,
        "users": 26,
        "assigned": None,
        "assignedStandard": None,
        "assignedArchive": None,
        "status": "paid",
    }
    assert list(record) == [
        "tenant_id", "name", "region", "base_url", "licenses", "archivedLicenses", "users",
        "assigned", "assignedStandard", "assignedArchive", "status",
    ]  # fmt: skip
    for location in ("eu", "https://o365-api-eu.spanningbackup.com/external/"):
        eu = expected_tenant_record("x", counters, location)
        assert (eu["region"], eu["base_url"]) == ("eu", "https://o365-api-eu.spanningbackup.com")
    with pytest.raises(ValueError, match="loopback"):
        expected_tenant_record("x", counters, "https://example.com")
