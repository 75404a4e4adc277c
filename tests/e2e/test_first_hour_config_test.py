"""Credentials before data, through Meltano (tests/first_hour.py): `meltano config test
tap-spanning` fails with the tap's one-line reason for a wrong key and for a loopback port
where nothing listens, and passes with the right key; the tap itself (`tap-spanning --config
FILE`, with the config Meltano hands it) writes no RECORD with a wrong key."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from spanning_emulator import generate_users

from tests.first_hour import (
    STEP_TIMEOUT,
    VENV_BIN,
    Ran,
    assert_no_key,
    base_env,
    meltano,
    new_key,
    scratch,
    serving,
)

__all__ = ["scratch"]  # the fixture used here

pytestmark = pytest.mark.e2e


def listening_nowhere() -> socket.socket:
    """A loopback port bound by no listener: connections to it are refused."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))  # bound, never listening: nobody else gets the port
    return holder


@dataclass
class TapRun:
    returncode: int
    records: int
    reason: str  # the message of the last line of stderr
    stdout: str
    stderr: str


def meltano_config_for_tap(scratch: Path, env: Mapping[str, str]) -> Path:
    """The config file Meltano hands the tap, from `meltano invoke --dump=config`."""
    dumped = meltano(scratch, env, "invoke", "--dump=config", "tap-spanning").ok()
    config = json.loads(dumped.stdout)
    path = scratch / "tap-config.json"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def start_tap(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(VENV_BIN / "tap-spanning"), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=base_env(),
    )


def finish_tap(process: subprocess.Popen[str]) -> TapRun:
    stdout, stderr = process.communicate(timeout=STEP_TIMEOUT)
    types = [json.loads(line).get("type") for line in stdout.splitlines() if line.strip()]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "the tap failed without a word on stderr"
    # "<time> | <level> | <logger> | <message>": the message is the tap's one-line reason.
    reason = lines[-1].split(" | ", 3)[-1].strip()
    return TapRun(process.returncode, types.count("RECORD") + types.count("BATCH"), reason,
                  stdout, stderr)  # fmt: skip


def config_test_fails_with_the_taps_reason(
    scratch: Path, env: Mapping[str, str]
) -> tuple[Ran, TapRun]:
    """`meltano config test` fails and says why, with the tap's own last line."""
    process = start_tap(meltano_config_for_tap(scratch, env))
    try:
        tested = meltano(scratch, env, "config", "test", "tap-spanning")
    finally:
        tap = finish_tap(process)
    assert tested.returncode != 0, f"meltano config test passed:\n{tested.tail()}"
    assert "Plugin configuration is valid" not in tested.output
    assert tap.returncode != 0, "the tap exited 0"
    assert tap.records == 0, f"the tap wrote {tap.records} RECORD/BATCH messages"
    assert len(tap.reason) > 20, f"no reason: {tap.reason!r}"
    assert tap.reason in tested.output, (
        f"meltano config test does not show the tap's reason {tap.reason!r}:\n{tested.tail()}"
    )
    return tested, tap


def test_config_test_passes_with_the_right_key(scratch: Path) -> None:
    key = new_key()
    with serving(generate_users(50, seed=34, profile="realistic"), "a@contoso.example", key) as e:
        env = base_env(
            TAP_SPANNING_BASE_URL=e.base_url,
            TAP_SPANNING_ADMIN_EMAIL=e.admin_email,
            TAP_SPANNING_API_KEY=key,
        )
        tested = meltano(scratch, env, "config", "test", "tap-spanning").ok()
        assert any(request.status == 200 for request in e.requests)
    assert "Plugin configuration is valid" in tested.output
    assert_no_key(key, tested.output)


def test_config_test_fails_with_a_wrong_key_and_the_tap_writes_no_record(scratch: Path) -> None:
    key, wrong = new_key(), new_key()
    with serving(generate_users(50, seed=35, profile="realistic"), "a@contoso.example", key) as e:
        env = base_env(
            TAP_SPANNING_BASE_URL=e.base_url,
            TAP_SPANNING_ADMIN_EMAIL=e.admin_email,
            TAP_SPANNING_API_KEY=wrong,
        )
        tested, tap = config_test_fails_with_the_taps_reason(scratch, env)
        # Refused credentials fail at once: one request per run (meltano's and the tap's),
        # the one that proves the credentials.
        assert [(r.path.split("?")[0], r.status) for r in e.requests] == [
            ("/external/tenant", 401)
        ] * 2
    assert re.search(r"refused the credentials", tap.reason, re.IGNORECASE), tap.reason
    assert "api_key" in tap.reason, tap.reason
    assert "admin_email" in tap.reason, tap.reason
    assert_no_key(key, tested.output, tap.stdout, tap.stderr)
    assert_no_key(wrong, tested.output, tap.stdout, tap.stderr)


def test_config_test_fails_when_nothing_listens(scratch: Path) -> None:
    key = new_key()
    holder = listening_nowhere()
    try:
        port = holder.getsockname()[1]
        env = base_env(
            TAP_SPANNING_BASE_URL=f"http://127.0.0.1:{port}",
            TAP_SPANNING_ADMIN_EMAIL="a@contoso.example",
            TAP_SPANNING_API_KEY=key,
        )
        tested, tap = config_test_fails_with_the_taps_reason(scratch, env)
    finally:
        holder.close()
    assert re.search(r"connect", tap.reason, re.IGNORECASE), tap.reason
    assert_no_key(key, tested.output, tap.stdout, tap.stderr)
