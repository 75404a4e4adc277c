"""The SDK's standard tap tests, run against the emulator, and catalog.json kept true."""

from __future__ import annotations

import atexit
import json
from pathlib import Path
from typing import Any

from singer_sdk.testing import SuiteConfig, get_tap_test_class
from spanning_emulator import SpanningEmulator, generate_users

from tap_spanning.tap import TapSpanning
from tests.leaks import ADMIN_EMAIL, new_api_key
from tests.run_inputs import discovered_catalog

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
    text = (Path(__file__).resolve().parents[2] / "catalog.json").read_text()
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
    root = Path(__file__).resolve().parents[2]
    assert discovered_catalog() == json.loads((root / "catalog.json").read_text())


