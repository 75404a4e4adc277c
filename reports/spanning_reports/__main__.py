"""python -m spanning_reports fleet|roles|alerts|client|utility [options]: see each module."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from spanning_reports import alerts, client, fleet, roles, utility

COMMANDS = {
    "fleet": fleet.main,
    "roles": roles.main,
    "alerts": alerts.main,
    "client": client.main,
    "utility": utility.main,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(
            "usage: python -m spanning_reports {fleet|roles|alerts|client|utility} [options]\n"
            "  fleet    write the fleet report (HTML) from the dbt marts\n"
            "  roles    print each role's members and each tenant's license use\n"
            "  alerts   send the alerts that opened or resolved: duckdb|postgres\n"
            "  client   write the report of one client (or --all): duckdb|postgres\n"
            "  utility  as the Meltano utility fleet-report runs it: "
            "duckdb|postgres|roles-duckdb|roles-postgres",
            file=sys.stderr,
        )
        return 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
