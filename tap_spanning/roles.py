"""The seven Spanning role tiers, and the rules that turn a user's tags into roles.

Pure functions only: no I/O, no logging, so the rules can be unit- and fuzz-tested
on their own. The rules are those of the tap's contract (spanning.md, Part 2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    """One role tier as the `roles` stream emits it."""

    id: str
    name: str
    description: str


ROLES: tuple[Role, ...] = (
    Role("user", "User", "A standard backed-up user mailbox."),
    Role("shared_mailbox", "Shared Mailbox", "A shared mailbox backed up by Spanning."),
    Role("global_admin", "Global Admin", "A Microsoft 365 Global Administrator."),
    Role(
        "spanning_admin",
        "Spanning Admin",
        "An administrator of the Spanning Backup console (every Global Admin is one).",
    ),
    Role(
        "archived",
        "Archived (read-only)",
        "Holds an archive license: the backup is kept read-only, no new backups.",
    ),
    Role(
        "no_microsoft_license",
        "No Microsoft License",
        "Has no Microsoft 365 license that Spanning can back up.",
    ),
    Role(
        "deleted_from_microsoft",
        "Deleted From Microsoft",
        "Deleted from Microsoft Entra ID; the backup is still held in Spanning.",
    ),
)

ROLE_IDS: tuple[str, ...] = tuple(role.id for role in ROLES)
_ROLE_ORDER = {role_id: index for index, role_id in enumerate(ROLE_IDS)}

# Whitespace, "_" and "-" carry no meaning in a tag; neither does a trailing
# "(read-only)" (after the separators are gone it reads "(readonly)").
_SEPARATORS = re.compile(r"[\s_\-]+")
_READ_ONLY_SUFFIX = "(readonly)"

_KEY_TO_ROLE: dict[str, str] = {
    _SEPARATORS.sub("", role.name.casefold()).removesuffix(_READ_ONLY_SUFFIX): role.id
    for role in ROLES
}
# The console has been seen to say "Archive" as well as "Archived".
_KEY_TO_ROLE["archive"] = "archived"


def tag_key(tag: str) -> str:
    """Fold a tag to the form the rules compare: no case, separators or suffix."""
    return _SEPARATORS.sub("", tag.casefold()).removesuffix(_READ_ONLY_SUFFIX)


# A tenant uses a handful of distinct tags on thousands of users: fold each once.
_ROLE_OF_TAG: dict[str, str | None] = {}
_ROLE_OF_TAG_LIMIT = 10_000


def role_for_tag(tag: str) -> str | None:
    """The role id a tag names, or None for a tag that names no role."""
    try:
        return _ROLE_OF_TAG[tag]
    except KeyError:
        role_id = _KEY_TO_ROLE.get(tag_key(tag))
        if len(_ROLE_OF_TAG) < _ROLE_OF_TAG_LIMIT:
            _ROLE_OF_TAG[tag] = role_id
        return role_id


def roles_for_user(
    tags: Iterable[str] | None,
    *,
    is_admin: bool,
    is_archive: bool,
    is_deleted: bool,
) -> tuple[list[str], list[str]]:
    """Return (role ids in ROLES order, tags that matched no role) for one user.

    `tags` is None when the user has no `tags` key or `tags: null`: such a user is a
    plain `user` (contract rule 3). The flags add their role whatever the tags say.
    """
    found: set[str] = set()
    unmatched: list[str] = []
    if tags is None:
        found.add("user")
    else:
        for tag in tags:
            role_id = role_for_tag(tag)
            if role_id is None:
                unmatched.append(tag)
            else:
                found.add(role_id)
    if is_admin:
        found.add("spanning_admin")
    if is_archive:
        found.add("archived")
    if is_deleted:
        found.add("deleted_from_microsoft")
    return sorted(found, key=_ROLE_ORDER.__getitem__), unmatched


def is_disabled(role_ids: Iterable[str]) -> bool:
    """A user is disabled when archived or deleted from Microsoft (contract rule 4)."""
    return any(role_id in ("archived", "deleted_from_microsoft") for role_id in role_ids)
