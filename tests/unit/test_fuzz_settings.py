"""Property tests of settings validation: any config resolves or says which setting is wrong,
and never echoes the key.

Every property is derandomised with no example database, so CI runs the same examples.
"""

from __future__ import annotations

import math
import re
import string
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tap_spanning.config_schema import CONFIG_SCHEMA
from tap_spanning.settings import Settings, SettingsError, resolve_settings
from tests.fuzzing import (
    FUZZ,
    json_values,
)

# ---------------------------------------------------------------- settings

KEY = "RECOGNISABLE-api-key-7d1b4c3e9a6f"
KNOWN_SETTINGS = (
    "admin_email",
    "api_key",
    "base_url",
    "region",
    "tenant_id",
    "page_size",
    "request_timeout",
    "max_retries",
    "max_retry_wait",
    "max_concurrent_tenants",
)
# Every setting the tap declares: random extra keys leave them out (the fleet's among them, to
# stay in the one-tenant form).
DECLARED_SETTINGS = frozenset(CONFIG_SCHEMA["properties"])
TENANT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
numbers = st.one_of(
    st.integers(-5, 2000),
    st.floats(-5, 2000, allow_nan=False),
    st.sampled_from(["10", " 5 ", "1e3", "0.5", "-1", "abc", "", "1_000", "3.0"]),
)
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "admin_email": st.sampled_from(
        ["admin@contoso.example", "a@b", "no-at-sign", "a:b@c.example", " x@y.example ", ""]
    ),
    "api_key": st.sampled_from([KEY, f"  {KEY}  ", [KEY], {"key": KEY}]),
    "base_url": st.sampled_from(
        [
            "http://127.0.0.1:8765",
            "http://localhost/external/",
            "http://[::1]:9000",
            "https://o365-api-eu.spanningbackup.com",
            "https://o365-api-us.spanningbackup.com/external",
            "http://o365-api-us.spanningbackup.com",
            "https://evil.example",
            "https://127.0.0.1:99999",
            "ftp://127.0.0.1",
            "http://u:p@127.0.0.1",
            "http://127.0.0.1/external/users",
            "",
        ]
    ),
    "region": st.sampled_from(["us", "eu", "ap", "ca", "uk", "af", "US", "mars", ""]),
    "tenant_id": st.sampled_from(
        ["contoso", "a.b_c-1", " padded ", "x" * 64, "x" * 65, "with space", "é", ""]
    ),
    "page_size": numbers,
    "request_timeout": numbers,
    "max_retries": numbers,
    "max_retry_wait": numbers,
    "max_concurrent_tenants": numbers,
}
ABSENT = object()
VALID_CONFIG: dict[str, Any] = {
    "admin_email": "admin@contoso.example",
    "api_key": KEY,
    "base_url": "http://127.0.0.1:8765",
    "page_size": 100,
    "request_timeout": 30,
    "max_retries": 3,
    "max_retry_wait": 1.5,
}


def _apply(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    changed = {**config, **changes}
    return {name: value for name, value in changed.items() if value is not ABSENT}


# A valid config with up to four settings changed (to a plausible value, any JSON value,
# or removed), or a config made of nothing but random settings; plus unknown keys.
mutated_configs = st.lists(st.sampled_from(KNOWN_SETTINGS), unique=True, max_size=4).flatmap(
    lambda names: st.fixed_dictionaries(
        {name: st.one_of(PLAUSIBLE[name], json_values, st.just(ABSENT)) for name in names}
    ).map(lambda changes: _apply(VALID_CONFIG, changes))
)
random_configs = st.fixed_dictionaries(
    {}, optional={name: st.one_of(PLAUSIBLE[name], json_values) for name in KNOWN_SETTINGS}
)
configs = st.tuples(
    st.one_of(mutated_configs, random_configs),
    st.dictionaries(
        # Extra keys are names the tap does not declare: a declared one (tenants_file, say)
        # is checked, and its message names it.
        st.text(max_size=12).filter(lambda name: name not in DECLARED_SETTINGS),
        json_values,
        max_size=3,
    ),
).map(lambda pair: {**pair[1], **pair[0]})


@FUZZ
@given(configs)
@example({"admin_email": "admin@contoso.example", "api_key": KEY, "region": "eu"})
@example({"admin_email": "a@b.example", "api_key": KEY, "base_url": "http://127.0.0.1:1"})
def test_settings_resolve_or_say_which_setting_is_wrong(config: dict[str, Any]) -> None:
    # Anything but Settings or SettingsError escapes here and fails the property.
    resolved: Settings | SettingsError
    try:
        resolved = resolve_settings(config)
    except SettingsError as error:
        resolved = error
    if isinstance(resolved, SettingsError):
        assert resolved.errors
        for message in resolved.errors:
            assert any(name in message for name in KNOWN_SETTINGS), message
            assert KEY not in message
        assert KEY not in str(resolved)
        return
    (tenant,) = resolved.tenants
    assert tenant.api_key == str(config["api_key"]).strip()
    assert tenant.api_key not in repr(resolved)
    assert tenant.admin_email == str(config["admin_email"]).strip()
    wanted_id = config.get("tenant_id")
    assert tenant.tenant_id == ("default" if wanted_id is None else str(wanted_id).strip())
    assert TENANT_ID.fullmatch(tenant.tenant_id)
    assert 1 <= resolved.page_size <= 1000
    assert resolved.request_timeout > 0
    assert math.isfinite(resolved.request_timeout)
    assert 1 <= resolved.max_retries <= 100
    assert resolved.max_retry_wait >= 0
    assert 1 <= resolved.max_concurrent_tenants <= 64


@pytest.mark.parametrize("name", ["request_timeout", "max_retry_wait"])
def test_a_huge_integer_setting_is_a_settings_error(name: str) -> None:
    config = {"admin_email": "a@b.example", "api_key": KEY, "base_url": "http://127.0.0.1:1"}
    with pytest.raises(SettingsError) as caught:
        resolve_settings({**config, name: 10**400})
    assert name in str(caught.value)


def test_a_printable_key_is_recognisable() -> None:
    # The fuzzed configs rely on KEY never being produced by chance.
    assert set(KEY) <= set(string.ascii_letters + string.digits + "-")
