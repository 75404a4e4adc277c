"""Property tests of the role rules: tags name exactly their roles, flags add theirs.

Expected values come from the contract (docs/streams.md), written out here by hand;
nothing below calls the tap's own normaliser to decide what it should return. Every
property is derandomised with no example database, so CI runs the same examples.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from tap_spanning.roles import roles_for_user
from tests.fuzzing import (
    CONTRACT_ROLES,
    FUZZ,
    ORDER,
)

FLAG_ROLES = {
    "is_admin": "spanning_admin",
    "is_archive": "archived",
    "is_deleted": "deleted_from_microsoft",
}
# Every role tag with case, separators and the "(read-only)" suffix taken away.
FOLDED_ROLE_TAGS = {"".join(words) for _, spellings in CONTRACT_ROLES for words in spellings}
SEPARATORS = ["", " ", "_", "-", "  ", "__", "--", " _", "- ", "\t"]
NEAR_MISSES = [
    "Admin",
    "Users",
    "Shared",
    "Global",
    "Mailbox",
    "Archiveds",
    "read-only",
    "(read-only)",
    "Global Admin Team",
    "No License",
    "Deleted",
    "Microsoft",
    "Spanning",
    "VIP",
    "Finance",
    "Global Admin (read-write)",
    "user.",
    "user/admin",
    "",
]


def might_name_a_role(tag: str) -> bool:
    """Conservatively: could the contract's rule read this tag as a role?

    Case (lower() or casefold()), whitespace, "_" and "-" are ignored, and so is one
    trailing "(read-only)". Used only to keep random "unknown" tags unknown.
    """
    for cased in (tag.lower(), tag.casefold()):
        folded = "".join(c for c in cased if not (c.isspace() or c in "_-"))
        if folded in FOLDED_ROLE_TAGS or folded.removesuffix("(readonly)") in FOLDED_ROLE_TAGS:
            return True
    return False


@st.composite
def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def role_tag(draw: st.DrawFn, role_id: str) -> str:
    """A spelling of the role's tag: any case, any separators, maybe "(read-only)"."""
    words = draw(st.sampled_from(dict(CONTRACT_ROLES)[role_id]))
    parts = []
    for index, word in enumerate(words):
        if index:
            parts.append(draw(st.sampled_from(SEPARATORS)))
        parts.append(draw(random_case(word)))
    tag = "".join(parts)
    if draw(st.booleans()):
        hyphen = draw(st.sampled_from(["-", " ", "_", "--", ""]))
        suffix = draw(random_case(f"(read{hyphen}only)"))
        tag += draw(st.sampled_from(["", " ", "  ", "_"])) + suffix
    edges = st.sampled_from(["", "", " ", "  ", "\t", "_"])
    return draw(edges) + tag + draw(edges)


unknown_tag = st.one_of(st.sampled_from(NEAR_MISSES), st.text(max_size=24)).filter(
    lambda tag: not might_name_a_role(tag)
)


@st.composite
def tagged_user(draw: st.DrawFn) -> tuple[list[str], list[str], list[str]]:
    """(tags, the role ids they name in ORDER, the unknown tags in their order)."""
    roles = draw(st.sets(st.sampled_from(ORDER)))
    pieces: list[tuple[str, bool]] = []
    for role_id in roles:
        for _ in range(draw(st.integers(1, 2))):  # a role may be tagged twice
            pieces.append((draw(role_tag(role_id)), True))
    pieces += [(tag, False) for tag in draw(st.lists(unknown_tag, max_size=4))]
    pieces = draw(st.permutations(pieces))
    tags = [tag for tag, _ in pieces]
    unknown = [tag for tag, known in pieces if not known]
    return tags, [role_id for role_id in ORDER if role_id in roles], unknown


# ---------------------------------------------------------------- tags to roles


@FUZZ
@given(tagged_user())
@example(
    (["Archived (Read-Only)", "shared__mailbox", "VIP"], ["shared_mailbox", "archived"], ["VIP"])
)
@example((["GLOBAL-ADMIN(read-only)", " user "], ["user", "global_admin"], []))
def test_tags_name_exactly_their_roles(case: tuple[list[str], list[str], list[str]]) -> None:
    tags, roles, unknown = case
    assert roles_for_user(tags, is_admin=False, is_archive=False, is_deleted=False) == (
        roles,
        unknown,
    )


@FUZZ
@given(
    st.one_of(st.none(), tagged_user()),
    st.fixed_dictionaries({flag: st.booleans() for flag in FLAG_ROLES}),
)
def test_flags_add_their_roles_whatever_the_tags(
    case: tuple[list[str], list[str], list[str]] | None, flags: dict[str, bool]
) -> None:
    tags: list[str] | None
    unknown: list[str]
    if case is None:  # no tags key, or tags: null: a plain user
        tags, roles, unknown = None, ["user"], []
    else:
        tags, roles, unknown = case
    wanted = set(roles) | {role for flag, role in FLAG_ROLES.items() if flags[flag]}
    assert roles_for_user(tags, **flags) == ([r for r in ORDER if r in wanted], unknown)
