"""The key never appears in the console script's own output: its real stdout and stderr at
DEBUG, against a server that echoes the key into every 503 page until the tap gives up.

The other paths, in-process, are in tests/inprocess/test_secrets.py; the echoing servers are
tests/key_echoes.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile_server import HostileServer
from tests.key_echoes import ECHOES, assert_echo_handled, config_for
from tests.tapdriver import DEBUG_ENV, run_tap

pytestmark = pytest.mark.process


def test_a_failing_sync_at_debug_as_a_process_prints_no_key(api_key: str, tmp_path: Path) -> None:
    """The console script itself, at DEBUG, against a server that echoes the key into a
    503 page until the tap gives up: no form of the key in its real stdout or stderr
    (run_tap checks), the real exit status non-zero, the reason the last line."""
    case_id = "503-html-body-persistently"
    responder, _, _ = ECHOES[case_id]
    with HostileServer(responder) as server:
        run = run_tap(
            config_for(server, api_key), tmp_path, env=DEBUG_ENV, label=f"process echo {case_id}"
        )
        seen = server.requests
    assert_echo_handled(run, server, seen, api_key, case_id)
