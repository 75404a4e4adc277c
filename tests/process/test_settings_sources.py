"""A mistake in the environment, as a process: exit 1, no request, the setting named on the
last stderr line (what Meltano shows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EmulatorFactory
from tests.inprocess.test_settings_sources import env_for, run_with_env

pytestmark = pytest.mark.process


def test_a_mistake_in_the_environment_ends_the_process_with_1_and_names_it_last(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    """The console script: a key pasted into TAP_SPANNING_PAGE_SIZE exits 1, before any
    request, and the last line of its stderr (what Meltano shows) names page_size."""
    emulator = start_emulator()
    done = run_with_env(
        env_for(emulator, api_key, TAP_SPANNING_PAGE_SIZE=api_key), tmp_path, as_process=True
    )
    assert done.returncode == 1
    last = done.last_stderr_line()
    assert "ERROR" in last, done.stderr
    assert "page_size" in last, done.stderr
    assert api_key not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert emulator.requests == []


