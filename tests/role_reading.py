"""The role report's text (`python -m spanning_reports roles`) read back, and the numbers it
must show, from the emulator's own ground truth (expected_output, tenant_summary's counters).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from spanning_emulator import ROLE_IDS, expected_output


def role_truth(
    users: Sequence[Mapping[str, object]], tenant_id: str = "default"
) -> dict[str, tuple[int, int]]:
    """Members and disabled members of each role, from the emulator's expected output."""
    expected = expected_output(users, tenant_id=tenant_id)
    disabled = {record["msId"] for record in expected["users"] if record["disabled"]}
    members = Counter(str(m["roleId"]) for m in expected["role_memberships"])
    disabled_members = Counter(
        str(m["roleId"]) for m in expected["role_memberships"] if m["msId"] in disabled
    )
    return {role: (members[role], disabled_members[role]) for role in ROLE_IDS}


def license_truth(counters: Mapping[str, object]) -> tuple[str, int, int, int, int, int]:
    """(status, standard assigned, licenses, archive assigned, archive licenses, users)."""
    return (
        str(counters["status"]),
        int(str(counters["assignedStandard"])),
        int(str(counters["licenses"])),
        int(str(counters["assignedArchive"])),
        int(str(counters["archivedLicenses"])),
        int(str(counters["users"])),
    )


@dataclass
class RoleReport:
    title: str
    roles: dict[str | None, dict[str, tuple[int, int]]]  # tenant (None: not grouped) -> role
    licenses: dict[str, tuple[str, int, int, int, int, int]]
    notes: list[str]


ROLE_LINE = re.compile(r"^  (?P<id>[a-z_]+)\s{2,}\S.*?\s(?P<members>\d+)\s+(?P<disabled>\d+)$")
TENANT_HEADING = re.compile(r"^Tenant (?P<tenant>\S+) \(\d+ users?\)$")
LICENSE_LINE = re.compile(
    r"^  (?P<tenant>\S+)\s+(?P<status>\S+)\s+(?P<std>\d+) of (?P<lic>\d+)\s+"
    r"(?P<arch>\d+) of (?P<alic>\d+)\s+(?P<users>\d+)$"
)


def parse_report(text: str) -> RoleReport:
    titles = [line for line in text.splitlines() if line.startswith("Spanning roles in ")]
    assert len(titles) == 1, f"no single report title in:\n{text}"
    body = text[text.index(titles[0]) :].splitlines()
    roles: dict[str | None, dict[str, tuple[int, int]]] = {}
    licenses: dict[str, tuple[str, int, int, int, int, int]] = {}
    notes: list[str] = []
    tenant: str | None = None
    in_licenses = False
    for line in body[1:]:
        if line.startswith("License use"):
            in_licenses = True
        elif line.strip().startswith("NOTE:"):
            notes.append(line.strip())
        elif in_licenses and (match := LICENSE_LINE.match(line)):
            licenses[match["tenant"]] = (
                match["status"],
                int(match["std"]),
                int(match["lic"]),
                int(match["arch"]),
                int(match["alic"]),
                int(match["users"]),
            )
        elif not in_licenses and (match := TENANT_HEADING.match(line)):
            tenant = match["tenant"]
        elif not in_licenses and (match := ROLE_LINE.match(line)) and match["id"] in ROLE_IDS:
            roles.setdefault(tenant, {})[match["id"]] = (
                int(match["members"]),
                int(match["disabled"]),
            )
    return RoleReport(titles[0], roles, licenses, notes)
