"""`tap-spanning --about` from the console script, as Meltano runs it."""

from __future__ import annotations

import json

import pytest

from tests.tapdriver import run_tap

pytestmark = pytest.mark.process


def test_about_lists_the_settings() -> None:
    about = run_tap(None, None, "--about", "--format=json")
    assert about.returncode == 0, about.stderr[-2000:]
    settings = json.loads(about.stdout)["settings"]["properties"]
    assert {
        "admin_email",
        "api_key",
        "base_url",
        "region",
        "tenant_id",
        "tenants",
        "tenant_api_keys",
        "max_concurrent_tenants",
        "page_size",
        "request_timeout",
        "max_retries",
        "max_retry_wait",
    } <= set(settings)
    assert settings["api_key"].get("secret") is True
    assert settings["tenant_api_keys"].get("secret") is True
    assert settings["tenants"]["items"]["properties"]["api_key"].get("secret") is True
