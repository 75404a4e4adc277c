"""README.md's "Configure a real tenant", run as written (tests/first_hour.py), and the two
sections of the first hour holding only blocks that a first-hour test runs.

The key comes on stdin, as a person pastes it after `read -rs`. A command that cannot run in
a test is marked with a visible trailing comment, `# not run by tests: <reason>`; it is
replaced by `true` here, and the marked set must be exactly NOT_RUN, which names each one (at
most MAX_NOT_RUN). Expected values come from the emulator's own ground truth
(expected_output), never from the tap's output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from spanning_emulator import expected_output, generate_users

from tests.documented import Block, all_shell_blocks, blocks_at
from tests.first_hour import (
    CONFIGURE,
    LOAD,
    assert_no_key,
    base_env,
    landed_msids,
    meltano,
    new_key,
    run_block,
    scratch,
    serving,
)

__all__ = ["scratch"]  # the fixture used here

pytestmark = pytest.mark.e2e

SECTIONS = (CONFIGURE, LOAD)
# Where in those sections a shell block may sit, each run by one test below
# (tests/unit/test_documented_commands.py names them).
RUN_PLACES = {(*CONFIGURE, None), (*LOAD, "DuckDB"), (*LOAD, "PostgreSQL")}
# Commands of those sections that no test runs, each with the document's reason.
NOT_RUN: dict[str, str] = {}
MAX_NOT_RUN = 2


def configured(blocks: Sequence[Block], setting: str) -> str:
    """The value the README's `meltano config set tap-spanning <setting> <value>` sets."""
    pattern = re.compile(rf"^meltano config set tap-spanning {setting} (\S+)$")
    values = [m[1] for b in blocks for c in b.commands() if (m := pattern.match(c))]
    assert len(values) == 1, f"README.md should set {setting} once, as {pattern.pattern}"
    return values[0]


def test_the_readme_sections_hold_only_blocks_these_tests_run() -> None:
    blocks = [block for block in all_shell_blocks() if block.place[:2] in SECTIONS]
    places = {block.place for block in blocks}
    assert places <= RUN_PLACES, (
        f"shell blocks that no test runs: {sorted(places - RUN_PLACES, key=str)}"
        " (add them to a test of tests/test_first_hour_*.py)"
    )
    assert places == RUN_PLACES, f"the documents lost the blocks of {RUN_PLACES - places}"
    marked: dict[str, str] = {}
    for block in blocks:
        marked.update(block.marked())
    assert marked == NOT_RUN, f"commands marked 'not run by tests': {marked}"
    assert len(NOT_RUN) <= MAX_NOT_RUN
    commands = [command for block in blocks for command in block.commands()]
    assert commands, "no command found"
    # Meltano 4's spelling; the 3.x `meltano config <plugin> set` fails with 4.4.1 (also
    # caught by running it, but this names the mistake).
    wrong = [c for c in commands if re.match(r"meltano config (?!set|unset|test|list|print)", c)]
    assert not wrong, f"not Meltano 4's spelling (meltano config set <plugin> ...): {wrong}"


def test_configure_a_real_tenant_as_the_readme_shows(scratch: Path) -> None:
    """The block runs as written: the key pasted on stdin lands in .env only, and the data."""
    blocks = blocks_at(*CONFIGURE, None)
    admin_email = configured(blocks, "admin_email")
    region = configured(blocks, "region")
    key = new_key()
    users = generate_users(200, seed=31, profile="realistic")
    with serving(users, admin_email, key) as emulator:
        # meltano is not on PATH until the block's own `. .venv/bin/activate`.
        env = base_env(venv_on_path=False, TAP_SPANNING_BASE_URL=emulator.base_url)
        outputs = []
        for block in blocks:
            ran = run_block(block, scratch, env, stdin=f"{key}\n").ok()
            outputs.append(ran.output)
        assert emulator.requests, "the tap never reached the emulator"
    assert_no_key(key, *outputs)

    # The key is in .env, nowhere in meltano.yml; the settings are in meltano.yml.
    assert f"TAP_SPANNING_API_KEY={key}" in (scratch / ".env").read_text().splitlines()
    text = (scratch / "meltano.yml").read_text()
    assert key not in text
    tap = next(
        plugin
        for plugin in yaml.safe_load(text)["plugins"]["extractors"]
        if plugin["name"] == "tap-spanning"
    )
    config = tap.get("config") or {}
    assert config.get("region") == region
    assert config.get("admin_email") == admin_email
    assert "api_key" not in config
    # Without the test's emulator override, the tap would go to the region's host, not to
    # the emulator URL meltano.yml shipped with.
    printed = meltano(scratch, base_env(), "config", "print", "tap-spanning", "--format=json")
    settings = json.loads(printed.ok().stdout)
    assert "base_url" not in settings, f"base_url still set: {settings.get('base_url')}"
    assert settings["region"] == region
    assert settings["api_key"] == "*****"  # set (from .env), and redacted
    assert_no_key(key, printed.output)

    # The sync landed the tenant in the DuckDB file meltano.yml names.
    truth = {str(record["msId"]) for record in expected_output(users)["users"]}
    assert landed_msids(scratch / "output" / "spanning.duckdb") == truth
