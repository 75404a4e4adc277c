"""Hostile pages seen from outside: the console script's real exit status and last stderr
line when a page is retried and then refused, and when a nextLink is refused at once.

The cases are tests/hostile_pages.py's PROCESS_CASES; the others run in-process in
tests/inprocess/test_bad_responses.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EmulatorFactory
from tests.hostile_pages import Case, assert_hostile_case_handled, case_params

pytestmark = pytest.mark.process


@pytest.mark.parametrize("case", case_params(process=True))
def test_hostile_response(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path, case: Case
) -> None:
    assert_hostile_case_handled(start_emulator, api_key, tmp_path, case, as_process=True)
