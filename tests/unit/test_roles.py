"""Unit tests of the tag-to-role rules (contract, Part 2, "From a user to its roles")."""

from __future__ import annotations

import pytest

from tap_spanning.roles import ROLE_IDS, ROLES, is_disabled, role_for_tag, roles_for_user

# The contract's table, written out by hand.
CONTRACT_ROLES = [
    ("user", "User"),
    ("shared_mailbox", "Shared Mailbox"),
    ("global_admin", "Global Admin"),
    ("spanning_admin", "Spanning Admin"),
    ("archived", "Archived (read-only)"),
    ("no_microsoft_license", "No Microsoft License"),
    ("deleted_from_microsoft", "Deleted From Microsoft"),
]


def test_roles_are_the_contract_seven() -> None:
    assert [(role.id, role.name) for role in ROLES] == CONTRACT_ROLES
    for role in ROLES:
        assert role.description.strip()
        assert "\n" not in role.description


@pytest.mark.parametrize(
    ("tag", "role_id"),
    [
        ("User", "user"),
        ("Shared Mailbox", "shared_mailbox"),
        ("SHARED_MAILBOX", "shared_mailbox"),
        ("shared-mailbox", "shared_mailbox"),
        ("Global Admin", "global_admin"),
        ("GLOBAL_ADMIN", "global_admin"),
        ("global  admin", "global_admin"),
        ("Spanning Admin", "spanning_admin"),
        ("Archived (read-only)", "archived"),
        ("ARCHIVED (READ-ONLY)", "archived"),
        ("archived(read-only)", "archived"),
        ("Archived", "archived"),
        ("Archive", "archived"),
        ("archive", "archived"),
        ("No Microsoft License", "no_microsoft_license"),
        ("no_microsoft_license", "no_microsoft_license"),
        ("Deleted From Microsoft", "deleted_from_microsoft"),
        ("DELETED-FROM-MICROSOFT", "deleted_from_microsoft"),
        (" User ", "user"),
        ("Global Admin (read-only)", "global_admin"),
    ],
)
def test_tag_spellings_map_to_their_role(tag: str, role_id: str) -> None:
    assert role_for_tag(tag) == role_id


@pytest.mark.parametrize(
    "tag", ["VIP", "", "Admin", "Global", "Users", "Archiveds", "read-only", "(read-only)"]
)
def test_other_tags_name_no_role(tag: str) -> None:
    assert role_for_tag(tag) is None


def test_no_tags_key_means_user() -> None:
    assert roles_for_user(None, is_admin=False, is_archive=False, is_deleted=False) == (
        ["user"],
        [],
    )


def test_empty_tags_mean_no_role() -> None:
    assert roles_for_user([], is_admin=False, is_archive=False, is_deleted=False) == ([], [])


def test_flags_add_roles_whatever_the_tags_say() -> None:
    roles, unmatched = roles_for_user(
        ["VIP", "GLOBAL_ADMIN", "Global Admin"], is_admin=True, is_archive=True, is_deleted=True
    )
    assert roles == ["global_admin", "spanning_admin", "archived", "deleted_from_microsoft"]
    assert unmatched == ["VIP"]


def test_no_tags_key_with_flags() -> None:
    roles, _ = roles_for_user(None, is_admin=True, is_archive=False, is_deleted=False)
    assert roles == ["user", "spanning_admin"]


def test_roles_come_in_contract_order() -> None:
    tags = list(reversed([name for _, name in CONTRACT_ROLES]))
    roles, _ = roles_for_user(tags, is_admin=False, is_archive=False, is_deleted=False)
    assert roles == list(ROLE_IDS)


@pytest.mark.parametrize(
    ("roles", "disabled"),
    [
        ([], False),
        (["user", "global_admin"], False),
        (["archived"], True),
        (["deleted_from_microsoft"], True),
        (["user", "no_microsoft_license"], False),
    ],
)
def test_disabled(roles: list[str], disabled: bool) -> None:
    assert is_disabled(roles) is disabled
