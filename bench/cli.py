"""`python -m bench`: the tap against the floor at 10,000 and 100,000 users.

For each user count the emulator runs in its own process (`bench.emulator`), then
the tap (`tap-spanning --config ...`) and the floor (`bench.floor`, no SDK) each
sync the whole tenant `--repeat` times, alternately, into a counting null sink
(`bench.measure`). Then a latency run: the same tap against an emulator that waits
`--latency-ms` before each response.

With `--user-backups` the tap runs with a catalog that also selects `user_backups`
(built from its `--discover`) and the floor with `--user-backups`: the users pages then
carry every user's backup status of the last 7 days. Each table is followed by the
records per stream and the bytes of a users page, with and without backups.

Prints Markdown tables (one per run, then the targets with PASS/FAIL) and, with
`--json PATH`, writes every measurement there. The targets are printed, never
asserted: the exit status is non-zero only when a program failed or its repeats
disagree.

Other modes replace these runs: `--fleet` (bench.fleet), `--dead-hosts` (a fleet whose
every host refuses connections: bench.dead_hosts), `--huge-pages` (peak memory over
tenants of ~15 MiB pages: bench.huge_pages) and `--nightly` (two nights of a fleet through
`meltano run` into DuckDB and PostgreSQL, with dbt and the report: bench.nightly).

To measure a modified copy of the tap, put it first on the path:
`PYTHONPATH=/tmp/my-copy python -m bench` (the tap runs outside the repository, so
the copy's `tap_spanning` is the one imported).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

from bench.modes import fleet_main, nightly_main, other_mode_main, users_main

DEFAULT_USERS = (10_000, 100_000)
DATE_FORMATS = ("iso", "datetime", "mdy", "epoch_ms", "epoch_ms_text")


def default_tap_command() -> list[str]:
    found = shutil.which("tap-spanning", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "tap_spanning"]


def _user_counts(text: str) -> list[int]:
    counts = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not counts or any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError("expected a comma-separated list of positive integers")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--users",
        type=_user_counts,
        default=list(DEFAULT_USERS),
        metavar="N[,N...]",
        help="user counts (default 10000,100000)",
    )
    parser.add_argument("--page-size", type=int, default=1000, help="default %(default)s")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each program per size (default 3)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=100.0,
        help="emulator latency for the latency run; 0 skips it (default %(default)s)",
    )
    parser.add_argument(
        "--latency-users", type=int, default=10_000, help="users in the latency run"
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="measure the tap only (no ratio to the floor)"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also compare every record of the tap with the floor's (first run of each size)",
    )
    parser.add_argument(
        "--tap-command",
        metavar="CMD",
        help="the tap to measure, e.g. 'python -m tap_spanning' (default: tap-spanning)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write all results here")
    backups = parser.add_argument_group(
        "backups", "--user-backups: the user_backups stream too (not with --fleet)"
    )
    backups.add_argument(
        "--user-backups",
        action="store_true",
        help="select user_backups in the tap's catalog, and in the floor (--user-backups)",
    )
    backups.add_argument(
        "--date-format",
        choices=DATE_FORMATS,
        default="iso",
        help="how the emulator spells backup dates (default %(default)s)",
    )
    backups.add_argument(
        "--text-numbers",
        action="store_true",
        help="the emulator sends backup counts and userId as text",
    )
    fleet = parser.add_argument_group(
        "fleet mode", "--fleet replaces the runs above by fleet runs: see bench.fleet"
    )
    fleet.add_argument(
        "--fleet",
        type=_user_counts,
        metavar="N[,N...]",
        help="tenant counts, e.g. 100,1000 (generate_fleet; --latency-ms on every request)",
    )
    fleet.add_argument(
        "--hosts", type=int, default=4, help="loopback hosts the fleet is spread over (%(default)s)"
    )
    fleet.add_argument(
        "--max-concurrent-tenants",
        type=int,
        default=8,
        help="the tap's max_concurrent_tenants (default %(default)s)",
    )
    fleet.add_argument(
        "--sample",
        type=int,
        default=20,
        help="tenants synced by a tap process each, to extrapolate (default %(default)s)",
    )
    fleet.add_argument(
        "--meltano-sample",
        type=int,
        default=3,
        help="tenants synced by `meltano run` each; 0 skips Meltano (default %(default)s)",
    )
    modes = parser.add_argument_group(
        "other modes",
        "each replaces the runs above: see bench.dead_hosts, bench.huge_pages, bench.nightly",
    )
    modes.add_argument(
        "--dead-hosts",
        type=_user_counts,
        metavar="N[,N...]",
        help="tenant counts, e.g. 1000,10000: every tenant's host refuses connections (--hosts "
        "of them, from 127.0.0.2); the tap's wall, CPU and peak RSS per count, and the growth",
    )
    modes.add_argument(
        "--huge-pages",
        type=_user_counts,
        metavar="C[,C...]",
        help="max_concurrent_tenants values, e.g. 4,16: the tap's peak RSS over tenants whose "
        "every users page is ~15 MiB (hostile huge-pages), a tap process per run",
    )
    modes.add_argument(
        "--nightly",
        type=_user_counts,
        metavar="N[,N...]",
        help="tenant counts, e.g. 300,1000: the emulator's realistic fleet, night 1 (no state) "
        "and night 2 (a day later), each `meltano run` into DuckDB and PostgreSQL with the dbt "
        "build and the report, beside the tap alone",
    )
    modes.add_argument(
        "--pg-url",
        metavar="URL",
        help="--nightly: a PostgreSQL admin URL to make the bench's database on (default: "
        "the private cluster of scripts/postgres.sh, started)",
    )
    modes.add_argument(
        "--huge-pages-tenants", type=int, default=16, help="--huge-pages: tenants (%(default)s)"
    )
    modes.add_argument(
        "--huge-pages-users",
        type=int,
        default=2500,
        help="--huge-pages: users a tenant (%(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tap_command = shlex.split(args.tap_command) if args.tap_command else default_tap_command()
    if args.user_backups and args.fleet:
        parser.error("--user-backups measures one tenant: not with --fleet")
    if not args.user_backups and (args.date_format != "iso" or args.text_numbers):
        parser.error("--date-format and --text-numbers go with --user-backups")
    modes = ("fleet", "dead_hosts", "huge_pages", "nightly")
    chosen = [name for name in modes if getattr(args, name)]
    if len(chosen) > 1 or (chosen and args.user_backups):
        parser.error(
            "--fleet, --dead-hosts, --huge-pages, --nightly and --user-backups: one at a time"
        )
    if args.pg_url and not args.nightly:
        parser.error("--pg-url goes with --nightly")
    if args.fleet:
        return fleet_main(args, tap_command)
    if args.nightly:
        return nightly_main(args, tap_command)
    if args.dead_hosts or args.huge_pages:
        return other_mode_main(args, tap_command)
    return users_main(args, tap_command)
