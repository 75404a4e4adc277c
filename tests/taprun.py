"""What one run of the tap printed, read as Singer messages, and held to the emulator's ground
truth (`assert_output_is` for one tenant, `assert_tenants_exact` for a fleet)."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spanning_emulator import DEFAULT_TENANT_ID, expected_output

from tests.leaks import non_record_lines

# The streams the ground truth covers, in the order the tap syncs them.
GROUND_TRUTH_STREAMS = ("users", "role_memberships", "roles")


def parse_messages(stdout: str) -> list[dict[str, Any]]:
    """Singer messages, one a line.

    Lines are split at "\\n" only: str.splitlines() would also split at U+2028, U+0085
    and friends, which a JSON string may hold unescaped.
    """
    return [json.loads(line) for line in stdout.split("\n") if line.strip()]


@dataclass
class TapRun:
    """What one run of the tap printed, and how it ended."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    # When the run started, in milliseconds since the epoch (its sync_version is about then).
    started_ms: float = 0.0
    # records() per stream, checked and without sync_version, once.
    _stripped: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def raw_records(self, stream: str) -> list[dict[str, Any]]:
        """The records of `stream` as written."""
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def records(self, stream: str) -> list[dict[str, Any]]:
        """The records of `stream` without `sync_version`, after checking it.

        Every record of the run carries the one version of the run
        (docs/many-tenants.md): the same in every record, the version of the RECORD
        message when it has one, and a time in milliseconds within the run.
        """
        if stream not in self._stripped:
            records = self.raw_records(stream)
            if records and "sync_version" in self.schema_properties(stream):
                version = self.sync_version
                for record in records:
                    assert record.get("sync_version") == version, stream
                records = [
                    {k: v for k, v in record.items() if k != "sync_version"} for record in records
                ]
            self._stripped[stream] = records
        return [dict(record) for record in self._stripped[stream]]

    def of_tenant(self, stream: str, tenant_id: str) -> list[dict[str, Any]]:
        """`records(stream)` of one tenant."""
        return [r for r in self.records(stream) if r["tenant_id"] == tenant_id]

    def syncs(self) -> dict[str, dict[str, Any]]:
        """The run's tenant_syncs records by tenant."""
        return {r["tenant_id"]: r for r in self.records("tenant_syncs")}

    def schema_properties(self, stream: str) -> dict[str, Any]:
        for message in self.messages:
            if message["type"] == "SCHEMA" and message["stream"] == stream:
                properties: dict[str, Any] = message["schema"]["properties"]
                return properties
        return {}

    @functools.cached_property
    def sync_version(self) -> int:
        """The run's version, as its records carry it (checked against the messages)."""
        found = {
            m["record"]["sync_version"]
            for m in self.messages
            if m["type"] == "RECORD" and "sync_version" in m["record"]
        }
        assert len(found) == 1, f"one sync_version per run, found {sorted(found)[:5]}"
        version: int = found.pop()
        assert isinstance(version, int)
        assert self.started_ms - 1000 <= version <= self.started_ms + self.seconds * 1000 + 1000
        for message in self.messages:
            if message["type"] in ("RECORD", "ACTIVATE_VERSION") and "version" in message:
                assert message["version"] == version, message["type"]
        return version

    def count(self, kind: str, stream: str | None = None) -> int:
        return sum(
            1
            for m in self.messages
            if m["type"] == kind and (stream is None or m.get("stream") == stream)
        )

    def kinds(self) -> Counter[tuple[str, str | None]]:
        return Counter((m["type"], m.get("stream")) for m in self.messages)

    def last_stderr_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    @property
    def non_record_stdout(self) -> str:
        """stdout without its RECORD lines (everything else: SCHEMA, STATE, text)."""
        return non_record_lines(self.stdout)


# ---------------------------------------------------------------- the ground truth


def assert_output_is(
    run: TapRun,
    users: Sequence[Mapping[str, object]],
    *,
    tenant_id: str = DEFAULT_TENANT_ID,
    expected: Mapping[str, list[dict[str, object]]] | None = None,
) -> None:
    """Exit 0; every record of users, role_memberships and roles equals the emulator's
    ground truth for `users`, in order; one SCHEMA per stream.

    `expected` replaces `expected_output(users, tenant_id)` where a test has to build
    the ground truth itself (tags the emulator's table does not know).
    """
    assert run.returncode == 0, run.stderr[-3000:]
    truth = expected if expected is not None else expected_output(users, tenant_id)
    for stream in GROUND_TRUTH_STREAMS:
        assert run.records(stream) == truth[stream], f"{stream} records differ"
        assert run.count("SCHEMA", stream) == 1, f"{stream}: SCHEMA count"


def assert_tenants_exact(run: TapRun, tenants: Sequence[Any]) -> None:
    """Every user and membership of each tenant, exactly, in the API's order (the
    emulator's ground truth; sync_version aside)."""
    for tenant in tenants:
        truth = expected_output(tenant.users, tenant_id=tenant.tenant_id)
        for stream in ("users", "role_memberships"):
            assert run.of_tenant(stream, tenant.tenant_id) == [
                {k: v for k, v in r.items() if k != "sync_version"} for r in truth[stream]
            ], (tenant.tenant_id, stream)


# tenant_syncs' license columns, and the counter of GET /external/tenant each one holds.
LICENSE_COLUMNS = {
    "licenses": "licenses",
    "archived_licenses": "archivedLicenses",
    "assigned_standard": "assignedStandard",
    "assigned_archive": "assignedArchive",
}


def license_columns(counters: Mapping[str, object]) -> dict[str, object]:
    """What a complete tenant_syncs record holds of the counters a tenant served."""
    return {column: counters.get(counter) for column, counter in LICENSE_COLUMNS.items()}
