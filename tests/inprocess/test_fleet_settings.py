"""A fleet's settings (docs/many-tenants.md): every tenant checked before any request, each
mistake naming the tenant and the setting, and no key ever echoed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tap_spanning.settings import SettingsError, resolve_settings
from tests.fleet_helpers import (
    fleet_config,
    make_tenants,
)
from tests.tapdriver import run_in_process

# -- settings: every tenant checked before any request


BASE_TENANT = {"tenant_id": "acme", "admin_email": "admin@acme.example", "region": "us"}


def errors_of(config: dict[str, Any]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        resolve_settings(config)
    return caught.value.errors


def test_a_fleet_takes_keys_from_the_entry_or_the_map() -> None:
    settings = resolve_settings(
        {
            "tenants": [
                {**BASE_TENANT, "api_key": "key-in-entry"},
                {"tenant_id": "globex", "admin_email": "a@globex.example", "region": "eu"},
            ],
            "tenant_api_keys": {"globex": "key-in-map"},
        }
    )
    assert [(t.tenant_id, t.api_key, t.region) for t in settings.tenants] == [
        ("acme", "key-in-entry", "us"),
        ("globex", "key-in-map", "eu"),
    ]
    assert settings.max_concurrent_tenants == 8


def test_the_one_tenant_form_has_a_default_tenant_id() -> None:
    settings = resolve_settings({"admin_email": "a@b.example", "api_key": "k", "region": "us"})
    assert [t.tenant_id for t in settings.tenants] == ["default"]
    named = resolve_settings(
        {"admin_email": "a@b.example", "api_key": "k", "region": "us", "tenant_id": "hq"}
    )
    assert [t.tenant_id for t in named.tenants] == ["hq"]


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (
            {"tenants": [BASE_TENANT], "api_key": "secret-key-1", "tenant_api_keys": {"acme": "k"}},
            "not both",
        ),
        ({"tenants": [BASE_TENANT]}, "tenants[0] (acme): api_key is missing"),
        (
            {"tenants": [BASE_TENANT, BASE_TENANT], "tenant_api_keys": {"acme": "k"}},
            "tenants[1] (acme): tenant_id 'acme' is already used by tenants[0]",
        ),
        (
            {
                "tenants": [BASE_TENANT, {**BASE_TENANT, "tenant_id": "ACME"}],
                "tenant_api_keys": {"acme": "k1", "ACME": "k2"},
            },
            "tenants[1] (ACME): tenant_id 'ACME' is already used by tenants[0] (ids are "
            "compared without case)",
        ),
        (
            {
                "tenants": [
                    BASE_TENANT,
                    {**BASE_TENANT, "tenant_id": "acme-eu", "admin_email": "Admin@ACME.example"},
                ],
                "tenant_api_keys": {"acme": "same-key-1", "acme-eu": "same-key-1"},
            },
            "tenants[1] (acme-eu): has the same admin_email and api_key as tenant 'acme'",
        ),
        (
            {"tenants": [{**BASE_TENANT, "tenant_id": "a b"}], "tenant_api_keys": {"a b": "k"}},
            "tenant_id must be 1 to 64 letters",
        ),
        (
            {"tenants": [{**BASE_TENANT, "tenant_id": "x" * 65}], "tenant_api_keys": {}},
            "tenant_id must be 1 to 64",
        ),
        (
            {
                "tenants": [{**BASE_TENANT, "base_url": "https://evil.example"}],
                "tenant_api_keys": {"acme": "k"},
            },
            "tenants[0] (acme): base_url host 'evil.example' is not a Spanning API host",
        ),
        (
            {"tenants": [{**BASE_TENANT, "regoin": "eu"}], "tenant_api_keys": {"acme": "k"}},
            "tenants[0] (acme): unknown setting 'regoin' (did you mean region?)",
        ),
        ({"tenants": []}, "tenants must be a non-empty list"),
        (
            {"tenants": [{**BASE_TENANT, "name": "A" * 201}], "tenant_api_keys": {"acme": "k"}},
            "tenants[0] (acme): name must be one line of at most 200 characters, with no "
            "control character (got 201 characters)",
        ),
        (
            {"tenants": [{**BASE_TENANT, "name": "Acme\nCorp"}], "tenant_api_keys": {"acme": "k"}},
            "tenants[0] (acme): name must be one line",
        ),
        (
            {"tenants": [{**BASE_TENANT, "name": 17}], "tenant_api_keys": {"acme": "k"}},
            "tenants[0] (acme): name must be a string, not int",
        ),
        (
            {"tenants": [BASE_TENANT], "tenant_api_keys": {"acme": "k"}, "tenant_name": "Acme"},
            "tenants is set, and so is tenant_name",
        ),
        (
            {"admin_email": "a@b.example", "api_key": "k", "region": "us", "tenant_name": "HQ\x07"},
            "tenant_name must be one line",
        ),
        (
            {
                "tenants": [BASE_TENANT],
                "tenant_api_keys": {"acme": "k"},
                "max_concurrent_tenants": 65,
            },
            "max_concurrent_tenants must be between 1 and 64",
        ),
        (
            {
                "admin_email": "a@b.example",
                "api_key": "k",
                "region": "us",
                "tenant_api_keys": {"x": "k"},
            },
            "tenant_api_keys goes with tenants",
        ),
    ],
)
def test_fleet_setting_mistakes_name_the_tenant_and_the_setting(
    config: dict[str, Any], says: str
) -> None:
    errors = errors_of(config)
    assert any(says in error for error in errors), errors


def test_a_client_name_is_kept_trimmed_and_optional() -> None:
    settings = resolve_settings(
        {
            "tenants": [
                {**BASE_TENANT, "name": "  Acme Corp & Söhne  "},
                {**BASE_TENANT, "tenant_id": "globex"},
            ],
            "tenant_api_keys": {"acme": "k1", "globex": "k2"},
        }
    )
    assert [(t.tenant_id, t.name) for t in settings.tenants] == [
        ("acme", "Acme Corp & Söhne"),
        ("globex", None),
    ]
    one = resolve_settings(
        {"admin_email": "a@b.example", "api_key": "k", "region": "us", "tenant_name": "HQ"}
    )
    assert [(t.tenant_id, t.name) for t in one.tenants] == [("default", "HQ")]


def test_a_key_pasted_into_a_tenant_setting_is_never_echoed() -> None:
    key = "d3adbeef-1234-4321-aaaa-0123456789ab"
    errors = errors_of(
        {
            "tenants": [{**BASE_TENANT, "admin_email": key, "base_url": key, "name": key * 9}],
            "tenant_api_keys": {"acme": key},
        }
    )
    assert errors
    assert not any(key in error for error in errors), errors


def test_a_config_mistake_in_one_tenant_stops_the_run_before_any_request(
    fleet_of: Any, tmp_path: Path
) -> None:
    tenants = make_tenants(3)
    emulator = fleet_of(tenants)
    config = fleet_config(emulator, tenants)
    del config["tenant_api_keys"][tenants[2].tenant_id]
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert f"tenants[2] ({tenants[2].tenant_id}): api_key is missing" in run.stderr
    assert "Traceback" not in run.stderr
    assert emulator.requests == []
    assert run.messages == []


def test_a_region_beside_a_loopback_base_url_is_not_used_and_says_so() -> None:
    settings = resolve_settings(
        {
            "admin_email": "a@b.example",
            "api_key": "k",
            "region": "eu",
            "base_url": "http://127.0.0.1:8765",
        }
    )
    assert [str(t.origin) for t in settings.tenants] == ["http://127.0.0.1:8765"]
    assert settings.notes == (
        "base_url 'http://127.0.0.1:8765' is a loopback address (the emulator): "
        "region 'eu' is not used",
    )
    errors = errors_of(
        {
            "admin_email": "a@b.example",
            "api_key": "k",
            "region": "eu",
            "base_url": "https://o365-api-us.spanningbackup.com",
        }
    )
    assert any("region 'eu' does not agree with base_url" in error for error in errors)
