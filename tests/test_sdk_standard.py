"""The SDK's standard tap tests, run against the emulator, and catalog.json kept true."""

from __future__ import annotations

import atexit
import json
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from spanning_emulator import SpanningEmulator, generate_users

from tap_spanning.tap import TapSpanning
from tests.tapdriver import ADMIN_EMAIL, discovered_catalog, new_api_key, run_tap

# The standard suite takes its config when the module is imported, so the emulator
# starts here and stops when the test process exits.
_API_KEY = new_api_key()
_EMULATOR = SpanningEmulator(
    generate_users(120, seed=29), admin_email=ADMIN_EMAIL, api_key=_API_KEY
)
_EMULATOR.start()
atexit.register(_EMULATOR.stop)

SAMPLE_CONFIG = {
    "base_url": _EMULATOR.base_url,
    "admin_email": ADMIN_EMAIL,
    "api_key": _API_KEY,
    "page_size": 50,
}


def _every_stream_selected() -> dict[str, Any]:
    """catalog.json with every stream selected, the backup histories (off by default) too."""
    text = (Path(__file__).parent.parent / "catalog.json").read_text()
    catalog: dict[str, Any] = json.loads(text)
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = True
    return catalog


TestTapSpanning = get_tap_test_class(
    tap_class=TapSpanning,
    config=SAMPLE_CONFIG,
    suite_config=SuiteConfig(ignore_no_records_for_streams=[]),
    catalog=_every_stream_selected(),
)


def test_catalog_json_is_what_discover_prints() -> None:
    root = Path(__file__).resolve().parent.parent
    assert discovered_catalog() == json.loads((root / "catalog.json").read_text())


@pytest.mark.process  # --about from the console script, as Meltano runs it
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
