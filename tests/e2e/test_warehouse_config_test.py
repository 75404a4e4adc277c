"""`meltano config test` over a fleet of 49 tenants (docs/many-tenants.md): one wrong key
fails it, naming the refused tenant, before any record; every key right passes.

The tap run directly with the same settings writes no RECORD (tests/currency_tracks.py
runs the track).
"""

from __future__ import annotations

import pytest

from tests.currency_tracks import (
    CONFIG_TEST_TENANTS,
    ConfigTest,
    Tracks,
    tracks,
)

pytestmark = pytest.mark.e2e
__all__ = ["tracks"]  # the fixture, requested by name


def test_config_test_names_the_refused_tenant_of_49(tracks: Tracks) -> None:
    """failure_mode strict: one wrong key of 49 fails `meltano config test`, before
    any record; the tap run directly with the same settings writes no RECORD."""
    result: ConfigTest = tracks.result("config")
    assert len(result.tenant_ids) == CONFIG_TEST_TENANTS
    output = result.refused_run.output
    assert result.refused_run.returncode != 0
    assert result.refused in output, output[-3000:]
    assert (
        f"Credentials refused for 1 of {CONFIG_TEST_TENANTS} tenants, so nothing was synced: "
        f"{result.refused} " in output
    ), output[-3000:]
    assert "Plugin configuration is valid" not in output

    assert result.tap_returncode == 1
    assert "RECORD" not in result.tap_stdout_types
    assert "BATCH" not in result.tap_stdout_types
    assert result.tap_last_line.split(" | ")[-1].startswith(
        f"Credentials refused for 1 of {CONFIG_TEST_TENANTS} tenants, so nothing was synced: "
        f"{result.refused} "
    ), result.tap_last_line
    # The refused tenant was asked for its credentials and nothing more (the users pass
    # starts while the last credentials are in flight: pages of others fetched ahead are
    # dropped unwritten).
    assert "/external/tenant" in result.tap_paths
    assert result.refused_paths == {"/external/tenant"}, sorted(result.refused_paths)


def test_config_test_passes_for_49_good_keys(tracks: Tracks) -> None:
    result: ConfigTest = tracks.result("config")
    assert result.good_run.returncode == 0
    assert "Plugin configuration is valid" in result.good_run.output
