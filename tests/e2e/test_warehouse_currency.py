"""The current-rows rule of dbt's views, end to end through Meltano (docs/many-tenants.md).

Six tenants synced three times into four warehouses side by side, one tenant refused in
run 2 (tests/currency_tracks.py): after each run the views that
`meltano invoke dbt-<db> run --select current` built once in the warehouse must show each
healthy tenant exactly as its last run found it (so removals landed), the failed tenant exactly
as run 1 found it, and tenant_syncs must hold every run. And two sharded jobs (3 + 3 tenants,
no ACTIVATE_VERSION) loading one PostgreSQL schema each keep their own tenants current. Both
tracks start together.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from spanning_emulator import (
    expected_output,
)

from tests.currency_tracks import (
    BROKEN,
    SHARDS,
    SHRINKING,
    TENANT_IDS,
    Plan,
    Scenario,
    Sharded,
    Tracks,
    ids,
    tracks,
)
from tests.current_rows import (
    Snapshot,
    assert_current,
    assert_versions_of_current_rows,
    last_complete,
    versions_by_run,
)

pytestmark = pytest.mark.e2e
__all__ = ["tracks"]  # the fixture, requested by name


def refused_reason(reason: object) -> bool:
    text = str(reason).lower()
    return "refused" in text and "credentials" in text


def assert_tenant_syncs(
    snapshot: Snapshot, plan_: Plan, runs: int, tenant_ids: Sequence[str], when: str
) -> list[int]:
    """One row per tenant per run so far, with each run's status, reason and counts."""
    versions = versions_by_run(snapshot.syncs)
    assert len(versions) == runs, f"{when}: tenant_syncs holds versions {versions}"
    by_key = {(row["tenant_id"], int(row["sync_version"])): row for row in snapshot.syncs}
    assert len(by_key) == len(snapshot.syncs), f"{when}: a tenant_syncs key twice"
    for run, version in enumerate(versions):
        assert {tid for tid, v in by_key if v == version} == set(tenant_ids), (
            f"{when}: tenant_syncs of run {run + 1} names other tenants"
        )
        for tid in tenant_ids:
            row = by_key[(tid, version)]
            label = f"{when}: tenant_syncs of {tid}, run {run + 1}"
            if tid in plan_.failed[run]:
                assert row["status"] == "failed", f"{label}: {row}"
                assert refused_reason(row["reason"]), f"{label}: reason {row['reason']!r}"
                assert (row["users"], row["role_memberships"]) == (0, 0), f"{label}: {row}"
            else:
                served = plan_.served[run][tid]
                counts = (len(served), len(expected_output(served)["role_memberships"]))
                assert row["status"] == "complete", f"{label}: {row}"
                assert row["reason"] is None, f"{label}: {row}"
                assert (row["users"], row["role_memberships"]) == counts, f"{label}: {row}"
                assert row["started_at"], f"{label}: {row}"
                assert row["finished_at"], f"{label}: {row}"
            assert int(row["requests"]) >= 1, f"{label}: {row}"
    return versions


SCENARIO_DESTINATIONS = ("postgres-hard-delete", "postgres-no-hard-delete", "duckdb", "jsonl")


@pytest.mark.parametrize("destination", SCENARIO_DESTINATIONS)
def test_scenario_current_rows_follow_each_tenants_last_complete_run(
    tracks: Tracks, destination: str
) -> None:
    """Run 1 all good; run 2 every tenant changed and one refused; run 3 the key fixed."""
    scenario: Scenario = tracks.result("scenario")
    target = scenario.destinations[destination]
    if target.error is not None:
        raise target.error
    the_plan, base_urls = scenario.plan, scenario.base_urls
    # Run 2 in prod (failure_mode nightly) is a normal night: a tenant completed.
    failed_night = 0 if target.environment == "prod" else 1
    assert [run.returncode for run in target.runs] == [0, failed_night, 0], [
        r.output[-2000:] for r in target.runs
    ]
    assert f"1 of {len(TENANT_IDS)} tenants failed: {BROKEN} (credentials refused)" in (
        target.runs[1].output
    ), target.runs[1].output[-3000:]

    for run, snapshot in enumerate(target.snapshots):
        when = f"{destination}, after run {run + 1}"
        assert_current(snapshot, the_plan.current[run], base_urls, when)
        versions = assert_tenant_syncs(snapshot, the_plan, run + 1, TENANT_IDS, when)
        assert_versions_of_current_rows(snapshot, when)
        assert len(snapshot.current["tenants"]) == len(TENANT_IDS), when
        if run == 1:  # the failed tenant's rows are still run 1's
            assert last_complete(snapshot.syncs)[BROKEN] == versions[0], when
            # The documented query names it: one failed run in a row, since run 2, and why.
            assert [
                (r["tenant_id"], int(r["failed_runs_in_a_row"]), int(r["failing_since_version"]))
                for r in snapshot.failing
            ] == [(BROKEN, 1, versions[1])], when
            assert refused_reason(snapshot.failing[0]["last_reason"]), when
        else:
            assert snapshot.failing == [], when

    # Removed users are gone from the views: those of healthy tenants after run 2, the
    # failed tenant's only after run 3.
    after2, after3 = target.snapshots[1], target.snapshots[2]
    shown2 = {(r["tenant_id"], r["msId"]) for r in after2.current["users"]}
    shown3 = {(r["tenant_id"], r["msId"]) for r in after3.current["users"]}
    for tid in TENANT_IDS:
        gone = ids(the_plan.served[0][tid]) - ids(the_plan.served[1][tid])
        assert gone
        if tid == BROKEN:
            assert {(tid, m) for m in gone} <= shown2, f"{destination}: {tid} lost rows in run 2"
            gone |= ids(the_plan.served[1][tid]) - ids(the_plan.served[2][tid])
        else:
            assert not {(tid, m) for m in gone} & shown2
        assert not {(tid, m) for m in gone} & shown3

    # Raw tables: run 2 failed for one tenant, so nothing was activated and no loader
    # deleted a row; with hard delete, run 3 (every tenant complete) deleted every row
    # of an earlier version.
    raw2 = {(r["tenant_id"], r["msId"]) for r in after2.raw_users}
    removed_by_run2 = {
        (tid, m)
        for tid in TENANT_IDS
        for m in ids(the_plan.served[0][tid]) - ids(the_plan.served[1][tid])
    }
    assert removed_by_run2 <= raw2, f"{destination}: run 2 (incomplete) deleted rows"
    if destination == "postgres-hard-delete":
        raw3 = sorted((r["tenant_id"], r["msId"]) for r in after3.raw_users)
        assert raw3 == sorted(shown3), "hard delete after a complete run left stale rows"
    else:
        assert len(after3.raw_users) > len(after3.current["users"]), destination


def test_sharded_jobs_keep_their_own_tenants_current(tracks: Tracks) -> None:
    """Two jobs of three tenants into one schema, without ACTIVATE_VERSION."""
    sharded: Sharded = tracks.result("sharded")
    first, second = sharded.served
    base_urls = sharded.base_urls
    assert [run.returncode for run in sharded.runs] == [0, 0, 0, 0]

    assert_current(sharded.after_first, first, base_urls, "both shards once")
    versions = versions_by_run(sharded.after_first.syncs)
    assert len(versions) == 2, versions  # a version per job
    for shard, version in zip(SHARDS, versions, strict=True):
        assert {
            r["tenant_id"] for r in sharded.after_first.syncs if r["sync_version"] == version
        } == set(shard)

    # The first shard again: its tenants as now, the second shard's as before.
    mixed = {tid: (second if tid in SHARDS[0] else first)[tid] for tid in TENANT_IDS}
    assert_current(sharded.after_one_shard, mixed, base_urls, "first shard again")
    assert_current(sharded.after_both, second, base_urls, "both shards again")
    for snapshot in (sharded.after_first, sharded.after_one_shard, sharded.after_both):
        assert_versions_of_current_rows(snapshot, "sharded")
        assert all(row["status"] == "complete" for row in snapshot.syncs)
    assert len(sharded.after_both.syncs) == 2 * len(TENANT_IDS)

    shown = {(r["tenant_id"], r["msId"]) for r in sharded.after_both.current["users"]}
    raw = {(r["tenant_id"], r["msId"]) for r in sharded.after_both.raw_users}
    for tid in SHRINKING:
        gone = {(tid, m) for m in ids(first[tid]) - ids(second[tid])}
        assert gone
        assert not gone & shown, f"{tid}: removed users are still current"
        assert gone <= raw, f"{tid}: removed users left the raw table (something activated)"
    assert len(raw) == sum(len(users) for users in first.values())
