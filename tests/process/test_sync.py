"""A whole multi-page sync as a `tap-spanning` process: the console script's own output,
exactly the emulator's truth, in the fewest requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.conftest import EmulatorFactory
from tests.inprocess.test_sync import TENANT_PATH, assert_requests, assert_tenant_is
from tests.tapdriver import run_tap
from tests.taprun import assert_output_is

pytestmark = pytest.mark.process


def test_full_sync_of_a_multi_page_tenant(
    start_emulator: EmulatorFactory, tap_config: Any, tenant_2500: list[Any], tmp_path: Path
) -> None:
    """As a process: the console script's whole output, through a real pipe."""
    emulator = start_emulator(tenant_2500)
    run = run_tap(tap_config(emulator, page_size=1000), tmp_path)
    assert_output_is(run, tenant_2500)
    assert_tenant_is(run, emulator, tenant_2500)
    assert_requests(emulator, 3)  # the tenant, ceil(2500 / 1000), and nothing else
    assert emulator.requests[0].path == TENANT_PATH  # no query
    first = emulator.requests[1].path
    assert dict(parse_qsl(urlsplit(first).query)) == {"size": "1000", "status": "false"}


