"""Deterministic Spanning tenants and the output the tap is expected to produce.

Everything here is independent ground truth: the tag table is written by hand
and the role rules are re-implemented from the contract, so tests of the tap
never compare the tap with itself.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from .hosts import split_location

Profile = Literal["torture", "realistic"]
PROFILES: tuple[Profile, ...] = ("torture", "realistic")
DEFAULT_TENANT_ID = "default"

ROLE_IDS: tuple[str, ...] = (
    "user",
    "shared_mailbox",
    "global_admin",
    "spanning_admin",
    "archived",
    "no_microsoft_license",
    "deleted_from_microsoft",
)

ROLE_NAMES: dict[str, str] = {
    "user": "User",
    "shared_mailbox": "Shared Mailbox",
    "global_admin": "Global Admin",
    "spanning_admin": "Spanning Admin",
    "archived": "Archived (read-only)",
    "no_microsoft_license": "No Microsoft License",
    "deleted_from_microsoft": "Deleted From Microsoft",
}

# Ground truth of the roles stream's `description`, written by hand (never import the tap's).
ROLE_DESCRIPTIONS: dict[str, str] = {
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

# Hand-written on purpose: never derive this from a normalisation function.
TAG_SPELLINGS: dict[str, str | None] = {
    "User": "user",
    "USER": "user",
    "user": "user",
    "user ": "user",
    " User": "user",
    "Shared Mailbox": "shared_mailbox",
    "SHARED_MAILBOX": "shared_mailbox",
    "shared_mailbox": "shared_mailbox",
    "shared-mailbox": "shared_mailbox",
    "shared  mailbox": "shared_mailbox",
    "SharedMailbox": "shared_mailbox",
    "Global Admin": "global_admin",
    "GLOBAL_ADMIN": "global_admin",
    "global_admin": "global_admin",
    "global-admin": "global_admin",
    "Global  Admin": "global_admin",
    "global admin": "global_admin",
    "Spanning Admin": "spanning_admin",
    "SPANNING_ADMIN": "spanning_admin",
    "spanning_admin": "spanning_admin",
    "spanning-admin": "spanning_admin",
    "Spanning_Admin": "spanning_admin",
    "spanning admin ": "spanning_admin",
    "Archived (read-only)": "archived",
    "ARCHIVED": "archived",
    "archived": "archived",
    "archived (read-only)": "archived",
    "Archive": "archived",
    "Archived": "archived",
    "ARCHIVE": "archived",
    "ARCHIVED (READ-ONLY)": "archived",
    "archived(read-only)": "archived",
    "Archived (Read-Only)": "archived",
    "No Microsoft License": "no_microsoft_license",
    "NO_MICROSOFT_LICENSE": "no_microsoft_license",
    "no_microsoft_license": "no_microsoft_license",
    "no-microsoft-license": "no_microsoft_license",
    "no microsoft  license": "no_microsoft_license",
    "No-Microsoft-License": "no_microsoft_license",
    "Deleted From Microsoft": "deleted_from_microsoft",
    "DELETED_FROM_MICROSOFT": "deleted_from_microsoft",
    "deleted_from_microsoft": "deleted_from_microsoft",
    "deleted-from-microsoft": "deleted_from_microsoft",
    "deleted from  microsoft": "deleted_from_microsoft",
    "Deleted From-Microsoft": "deleted_from_microsoft",
    "VIP": None,
    "Finance": None,
    "Contractor": None,
    "Legacy Import": None,
    "Admin": None,
    "Users": None,
    "Shared": None,
    "Read-Only": None,
    "Équipe Paris": None,
}

_KNOWN_TAGS = [tag for tag, role in TAG_SPELLINGS.items() if role is not None]
_UNKNOWN_TAGS = [tag for tag, role in TAG_SPELLINGS.items() if role is None]
_FLAG_ROLES = {
    "isAdmin": "spanning_admin",
    "isArchive": "archived",
    "isDeleted": "deleted_from_microsoft",
}
_ALL_TAGS = list(TAG_SPELLINGS)
_FORCED_TAGS_PER_USER = 2

_FIRST_NAMES = (
    "Anna", "José", "Zoë", "Łukasz", "Siobhán", "Mohammed", "Wei", "Priya",
    "Olga", "John", "Mary", "Jean-Luc", "Åsa", "Kenji", "Fatima", "Liam",
    "Noah", "Emma", "Sofía", "Björn",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "O'Brien", "Müller", "García", "Nguyen", "Kowalski", "Dubois",
    "Andersson", "Ødegaard", "Khan", "Tanaka", "Rossi", "Silva",
    "Van der Berg", "Lee", "D'Angelo",
)  # fmt: skip
_DISPLAY_DECORATIONS = (" 🚀", " 👩‍💻", " (𠮷野)", " (🏖️ OOO)")


def sort_key(user: Mapping[str, object]) -> tuple[str, str]:
    """The server's order: userPrincipalName, then msId (plain str comparison)."""
    return str(user.get("userPrincipalName", "")), str(user.get("msId", ""))


def expected_roles(user: Mapping[str, object]) -> list[str]:
    """Role ids of one user per the contract, in ROLE_IDS order.

    Raises KeyError for a tag missing from TAG_SPELLINGS.
    """
    tags = user.get("tags")
    roles: set[str] = set()
    if tags is None:
        roles.add("user")
    elif isinstance(tags, list):
        roles.update(role for tag in tags if (role := TAG_SPELLINGS[tag]) is not None)
    else:
        raise TypeError(f"tags must be a list or null, not {type(tags).__name__}")
    roles.update(role for flag, role in _FLAG_ROLES.items() if user.get(flag) is True)
    return [role for role in ROLE_IDS if role in roles]


def _forced_tags(index: int) -> list[str] | None:
    """Spread every table spelling over the first users so each tenant has them all."""
    start = index * _FORCED_TAGS_PER_USER
    chunk = _ALL_TAGS[start : start + _FORCED_TAGS_PER_USER]
    return chunk or None


def _random_tags(rng: random.Random) -> tuple[bool, list[str] | None]:
    """(key present, value): ~10% absent, ~2% null, ~3% empty, else 1-3 tags."""
    draw = rng.random()
    if draw < 0.10:
        return False, None
    if draw < 0.12:
        return True, None
    if draw < 0.15:
        return True, []
    tags = rng.sample(_KNOWN_TAGS, rng.randint(1, 3))
    if rng.random() < 0.06:
        tags.insert(rng.randrange(len(tags) + 1), rng.choice(_UNKNOWN_TAGS))
    return True, tags


def _principal_name(rng: random.Random, first: str, last: str, index: int) -> str:
    """A unique UPN; some with mixed case, '+', '#EXT#', other domains."""
    local = f"{first}.{last}".replace(" ", "")
    if rng.random() >= 0.06:
        local = local.lower()
    if rng.random() < 0.04:
        local += "+archive"
    local = f"{local}.{index}"
    draw = rng.random()
    if draw < 0.02:
        # A guest account: the '#' must be percent-encoded in any URL.
        return f"{local}_gmail.com#EXT#@contoso.onmicrosoft.example"
    if draw < 0.07:
        return f"{local}@Fabrikam.example"
    return f"{local}@contoso.example"


def _email(rng: random.Random, upn: str) -> str:
    """Usually the UPN; sometimes an alias on another domain or lower-cased."""
    draw = rng.random()
    if draw < 0.06:
        return upn.partition("@")[0].lower() + "@contoso-mail.example"
    if draw < 0.09:
        return upn.lower()
    return upn


def _display_fields(rng: random.Random, first: str, last: str) -> dict[str, object]:
    """displayName, or (~10%) the older userDisplayName spelling."""
    name = f"{first} {last}"
    if rng.random() < 0.03:
        name += rng.choice(_DISPLAY_DECORATIONS)
    key = "userDisplayName" if rng.random() < 0.10 else "displayName"
    return {key: name}


def _extra_fields(rng: random.Random) -> dict[str, object]:
    """Fields the tap must ignore; the API may add some at any time."""
    extra: dict[str, object] = {"inActiveDirectory": rng.random() < 0.92}
    if rng.random() < 0.05:
        extra["lastSeen"] = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T08:15:00.000Z"
    if rng.random() < 0.03:
        extra["extra"] = {"a": 1}
    return extra


def _user(rng: random.Random, index: int) -> dict[str, object]:
    """One user payload as /external/users sends it (without backupSummary)."""
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    upn = _principal_name(rng, first, last, index)
    user: dict[str, object] = {"userPrincipalName": upn, "email": _email(rng, upn)}
    user.update(_display_fields(rng, first, last))
    user["msId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    user["assigned"] = rng.random() < 0.80
    user["isAdmin"] = rng.random() < 0.05
    user["isDeleted"] = rng.random() < 0.03
    user["isArchive"] = rng.random() < 0.05
    forced = _forced_tags(index)
    present, tags = (True, forced) if forced is not None else _random_tags(rng)
    if present:
        user["tags"] = tags
    user.update(_extra_fields(rng))
    return user


# ---------------------------------------------------------------- the realistic profile

_PLAIN_FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
    "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy",
    "Anthony", "Betty", "Mark", "Sandra", "Paul", "Ashley", "Steven", "Emily",
    "Andrew", "Donna", "Kevin", "Michelle", "Brian", "Carol", "George", "Amanda",
    "Edward", "Melissa", "Ronald", "Deborah", "Timothy", "Stephanie", "Jason", "Rebecca",
    "Jeffrey", "Laura", "Ryan", "Helen", "Jacob", "Sharon", "Gary", "Cynthia",
    "Nicholas", "Kathleen", "Eric", "Amy", "Jonathan", "Angela", "Larry", "Anna",
    "Priya", "Wei", "Omar", "Sofia", "Lucas", "Emma", "Noah", "Olivia",
    "Liam", "Mia", "Ethan", "Grace", "Aaron", "Chloe", "Ian", "Hannah",
)  # fmt: skip
_PLAIN_LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas",
    "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
    "Carter", "Roberts", "Patel", "Chen", "Kim", "Singh", "Murphy", "Cook",
    "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Bell", "Howard",
    "Ward", "Cox", "Richardson", "Wood", "Watson", "Brooks", "Bennett", "Gray",
    "Hughes", "Price", "Sanders", "Myers", "Long", "Ross", "Foster", "Powell",
)  # fmt: skip
_SHARED_MAILBOXES = (
    "Support", "Sales", "Info", "Reception", "Billing", "HR", "Marketing", "Helpdesk",
    "Careers", "Press", "Events", "Facilities", "Accounts Payable", "IT Service Desk",
    "Orders", "Bookings", "Office Manager", "Compliance", "Legal", "Payroll",
)  # fmt: skip
_REALISTIC_UNKNOWN_TAGS = ("VIP", "Finance", "Contractor", "Legacy Import")
# Cumulative thresholds of one draw: which kind of account a user is.
_REALISTIC_KINDS: tuple[tuple[float, str], ...] = (
    (0.015, "global_admin"),
    (0.020, "spanning_admin"),
    (0.095, "shared_mailbox"),
    (0.115, "archived"),
    (0.135, "deleted"),
    (0.145, "no_license"),
)
_REALISTIC_TAGS = {
    "global_admin": "Global Admin",
    "spanning_admin": "Spanning Admin",
    "shared_mailbox": "Shared Mailbox",
    "archived": "Archived (read-only)",
    "deleted": "Deleted From Microsoft",
    "no_license": "No Microsoft License",
    "user": "User",
}
DEFAULT_DOMAIN = "contoso.example"


def _realistic_kind(rng: random.Random, index: int) -> str:
    if index == 0:
        return "global_admin"  # every tenant has someone who set it up
    draw = rng.random()
    return next((kind for limit, kind in _REALISTIC_KINDS if draw < limit), "user")


def _unique_local(used: set[str], base: str) -> str:
    """base, else base2, base3, ... as an admin would name a second John Smith."""
    local, number = base, 1
    while local in used:
        number += 1
        local = f"{base}{number}"
    used.add(local)
    return local


def _realistic_user(
    rng: random.Random, index: int, domain: str, used: set[str]
) -> dict[str, object]:
    kind = _realistic_kind(rng, index)
    if kind == "shared_mailbox":
        name = rng.choice(_SHARED_MAILBOXES)
        local = _unique_local(used, name.lower().replace(" ", "-"))
    else:
        first, last = rng.choice(_PLAIN_FIRST_NAMES), rng.choice(_PLAIN_LAST_NAMES)
        name = f"{first} {last}"
        local = _unique_local(used, f"{first}.{last}".lower())
    upn = f"{local}@{domain}"
    user: dict[str, object] = {"userPrincipalName": upn, "email": upn, "displayName": name}
    user["msId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    user["assigned"] = kind not in ("no_license", "deleted") and rng.random() < 0.93
    user["isAdmin"] = kind in ("global_admin", "spanning_admin")
    user["isDeleted"] = kind == "deleted"
    user["isArchive"] = kind == "archived"
    tags = [_REALISTIC_TAGS[kind]]
    if kind == "user":
        draw = rng.random()
        if draw < 0.06:
            tags = []  # marker: no tags key at all
        elif draw < 0.09:
            tags.append(rng.choice(_REALISTIC_UNKNOWN_TAGS))
    if tags:
        user["tags"] = tags
    user["inActiveDirectory"] = kind != "deleted"
    return user


def _realistic_users(count: int, seed: int, domain: str) -> list[dict[str, object]]:
    rng = random.Random(f"realistic-{seed}")
    used: set[str] = set()
    return [_realistic_user(rng, index, domain, used) for index in range(count)]


def generate_users(
    count: int, seed: int = 1, profile: Profile = "torture", *, domain: str | None = None
) -> list[dict[str, object]]:
    """A deterministic tenant of `count` users, in generation (not API) order.

    profile "torture" (the default) crams every hard case into the tenant: every tag
    spelling, missing and null tags, userDisplayName, emoji, guests, several domains.
    profile "realistic" looks like a real company on one `domain` (default
    contoso.example): mostly "User", a few admins, shared mailboxes, archived and
    deleted users, a few unknown tags, some users without a tags key.
    """
    if profile == "torture":
        if domain is not None:
            raise ValueError("the torture profile has fixed domains: domain= is for 'realistic'")
        rng = random.Random(seed)
        return [_user(rng, index) for index in range(count)]
    if profile == "realistic":
        return _realistic_users(count, seed, domain or DEFAULT_DOMAIN)
    raise ValueError(f"unknown profile {profile!r}: use torture or realistic")


def load_users(path: str | Path) -> list[dict[str, object]]:
    """Users from a JSON file: a list of payloads, or a saved {"users": [...]} page."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = data.get("users")
    if not isinstance(data, list) or not all(isinstance(user, dict) for user in data):
        raise ValueError(f"{path}: expected a JSON list of user objects")
    return data


# ---------------------------------------------------------------- expected output


def tenant_summary(users: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """What GET /external/tenant answers for these users (unless a tenant overrides it)."""
    assigned = [user for user in users if user.get("assigned") is True]
    archived = sum(1 for user in assigned if user.get("isArchive") is True)
    return {
        "licenses": len(assigned) + 4 + len(users) % 5,
        "archivedLicenses": archived + 3,
        "users": len(users),
        "assigned": len(assigned),
        "assignedStandard": len(assigned) - archived,
        "assignedArchive": archived,
        "status": "paid",
    }


def _display_name(user: Mapping[str, object]) -> object:
    if "displayName" in user:
        return user["displayName"]
    return user.get("userDisplayName")


def _user_record(tenant_id: str, user: Mapping[str, object], roles: list[str]) -> dict[str, object]:
    tags = user.get("tags")
    return {
        "tenant_id": tenant_id,
        "msId": user.get("msId"),
        "userPrincipalName": user.get("userPrincipalName"),
        "email": user.get("email"),
        "displayName": _display_name(user),
        "assigned": user.get("assigned"),
        "isAdmin": user.get("isAdmin"),
        "isDeleted": user.get("isDeleted"),
        "isArchive": user.get("isArchive"),
        "tags": list(tags) if isinstance(tags, list) else None,
        "disabled": "archived" in roles or "deleted_from_microsoft" in roles,
    }


def expected_roles_stream() -> list[dict[str, object]]:
    """The roles stream: always the same seven records, in ROLE_IDS order."""
    return [
        {"id": role, "name": ROLE_NAMES[role], "description": ROLE_DESCRIPTIONS[role]}
        for role in ROLE_IDS
    ]


def expected_output(
    users: Sequence[Mapping[str, object]], tenant_id: str = DEFAULT_TENANT_ID
) -> dict[str, list[dict[str, object]]]:
    """Records of the users, roles and role_memberships streams, in API order.

    Every users and role_memberships record starts with `tenant_id` (the one-tenant
    tap's is "default").
    """
    records: list[dict[str, object]] = []
    memberships: list[dict[str, object]] = []
    for user in sorted(users, key=sort_key):
        roles = expected_roles(user)
        records.append(_user_record(tenant_id, user, roles))
        memberships.extend(
            {
                "tenant_id": tenant_id,
                "roleId": role,
                "msId": user.get("msId"),
                "userPrincipalName": user.get("userPrincipalName"),
            }
            for role in roles
        )
    return {"users": records, "roles": expected_roles_stream(), "role_memberships": memberships}


TENANT_COUNTERS: tuple[str, ...] = (
    "licenses",
    "archivedLicenses",
    "users",
    "assigned",
    "assignedStandard",
    "assignedArchive",
    "status",
)


def expected_tenant_record(
    tenant_id: str, counters: Mapping[str, object], location: str, name: str | None = None
) -> dict[str, object]:
    """The tenants stream's record of one tenant.

    `counters` is what GET /external/tenant answers (a missing counter is None);
    `location` is the tenant's base URL (e.g. http://127.0.0.2:41234: region None) or
    its region code or https://o365-api-<region>.spanningbackup.com (region set);
    `name` the client's name as configured (None: unset).
    """
    region, base_url = split_location(location)
    record: dict[str, object] = {
        "tenant_id": tenant_id,
        "name": name,
        "region": region,
        "base_url": base_url,
    }
    record.update((counter, counters.get(counter)) for counter in TENANT_COUNTERS)
    return record
