"""What the property tests share: their hypothesis settings, the contract's roles in their
order, and any JSON value.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The number of examples comes from the profile tests/conftest.py loads: 200 in the whole
# suite, fewer in `make check`.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# ---------------------------------------------------------------- the contract's tables

# Role ids in the order the tap must return them, and the words of each role's tag.
CONTRACT_ROLES: list[tuple[str, list[list[str]]]] = [
    ("user", [["user"]]),
    ("shared_mailbox", [["shared", "mailbox"]]),
    ("global_admin", [["global", "admin"]]),
    ("spanning_admin", [["spanning", "admin"]]),
    ("archived", [["archived"], ["archive"]]),  # "Archive" and "Archived" both mean it
    ("no_microsoft_license", [["no", "microsoft", "license"]]),
    ("deleted_from_microsoft", [["deleted", "from", "microsoft"]]),
]
ORDER = [role_id for role_id, _ in CONTRACT_ROLES]

# Any JSON value; integers stay within what a float can hold.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**1000), max_value=2**1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
