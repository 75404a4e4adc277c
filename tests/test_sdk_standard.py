"""The SDK's standard tap tests, run against the emulator, and catalog.json kept true."""

from __future__ import annotations

import atexit
import json
import subprocess
from pathlib import Path

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_spanning.emulator import SpanningEmulator, generate_users
from tap_spanning.tap import TapSpanning
from tests.tapdriver import ADMIN_EMAIL, new_api_key, tap_executable

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

TestTapSpanning = get_tap_test_class(
    tap_class=TapSpanning,
    config=SAMPLE_CONFIG,
    suite_config=SuiteConfig(ignore_no_records_for_streams=[]),
)


def test_catalog_json_is_what_discover_prints() -> None:
    root = Path(__file__).resolve().parent.parent
    discovered = subprocess.run(
        [*tap_executable(), "--discover"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(discovered) == json.loads((root / "catalog.json").read_text())


def test_about_lists_the_settings() -> None:
    about = subprocess.run(
        [*tap_executable(), "--about", "--format=json"], capture_output=True, text=True, check=True
    ).stdout
    settings = json.loads(about)["settings"]["properties"]
    assert {
        "admin_email",
        "api_key",
        "base_url",
        "region",
        "page_size",
        "request_timeout",
        "max_retries",
        "max_retry_wait",
    } <= set(settings)
    assert settings["api_key"].get("secret") is True
