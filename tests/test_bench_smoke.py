"""The benchmark still runs end to end (tiny sizes), so `make bench` cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main

# The benchmark is a program of its own: run as its users run it.
pytestmark = pytest.mark.process


def test_bench_runs_at_a_tiny_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results_path = tmp_path / "results.json"
    code = main(
        [
            "--users",
            "300",
            "--page-size",
            "100",
            "--repeat",
            "1",
            "--latency-ms",
            "20",
            "--latency-users",
            "300",
            "--verify",
            "--json",
            str(results_path),
        ]
    )
    table = capsys.readouterr().out
    assert code == 0

    assert "### 300 users, page size 100, latency 0 ms" in table
    assert "### Targets" in table
    for row in ("| tap |", "| floor |", "| tap / floor |"):
        assert row in table
    assert "| records per stream, tap = floor, 300 users, page size 100, latency 0 ms" in table

    results = json.loads(results_path.read_text())
    (scenario,) = results["scenarios"]
    tap, floor = scenario["tap"]["runs"][0], scenario["floor"]["runs"][0]
    assert tap["returncode"] == floor["returncode"] == 0
    assert tap["counts"]["records"] == floor["counts"]["records"]
    assert tap["counts"]["records"]["users"] == 300
    assert tap["counts"]["records"]["roles"] == 7
    assert tap["counts"]["records"]["tenants"] == 1
    assert tap["counts"]["bad_lines"] == floor["counts"]["bad_lines"] == 0
    # ceil(300 / 100) users pages and the one GET /external/tenant.
    assert tap["requests"] == floor["requests"] == 4
    assert scenario["verify"]["equal"] is True
    assert results["latency"]["tap"]["requests"] == 4
    by_name = {target["name"]: target["result"] for target in results["targets"]}
    record_targets = [name for name in by_name if name.startswith("records per stream")]
    assert record_targets
    assert all(by_name[name] == "PASS" for name in record_targets)


def test_bench_fleet_runs_at_a_tiny_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results_path = tmp_path / "fleet.json"
    code = main(
        [
            "--fleet",
            "5",
            "--latency-ms",
            "5",
            "--repeat",
            "1",
            "--sample",
            "2",
            "--meltano-sample",
            "0",  # Meltano takes seconds a run: measured by `python -m bench --fleet`
            "--json",
            str(results_path),
        ]
    )
    table = capsys.readouterr().out
    assert code == 0

    assert "### Fleet of 5 tenants" in table
    assert "### Targets" in table
    for row in (
        "| tap, one run over the fleet |",
        "| floor, one tenant of all ",
        "| ideal = max(CPU floor ",
        "| tap process per tenant, extrapolated to 5 tenants ",
    ):
        assert row in table

    results = json.loads(results_path.read_text())
    (fleet,) = results["fleets"]
    tap = fleet["tap"]["runs"][0]
    assert tap["returncode"] == 0
    assert tap["counts"]["records"]["users"] == fleet["users"]
    assert tap["counts"]["records"]["tenants"] == 5
    assert tap["requests"] == fleet["expected_requests"]
    assert fleet["tenants_with_expected_requests"] == 5
    assert fleet["verify"]["equal"] is True
    assert fleet["verify"]["tenants_equal"] == 5
    assert fleet["per_tenant"]["ok"] is True
    assert fleet["floor"]["runs"][0]["counts"]["records"]["users"] == fleet["users"]
