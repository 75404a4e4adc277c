"""The `spanning-emulator` command: serve a generated tenant, or a fleet, on loopback."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .backups import (
    DATE_FORMATS,
    BackupHistory,
    expected_backup_summaries,
    expected_user_backups,
    utc_today,
)
from .emulated import EmulatedTenant, check_tenants
from .faults import FAULT_KINDS_TEXT, FaultPlan
from .fleet import generate_fleet
from .fleet_server import FleetEmulator
from .fleetfiles import write_fleet, write_jsonl
from .hostile import HOSTILE_CASE_NAMES, parse_hostile
from .hosts import is_loopback_host
from .server import DEFAULT_ADMIN_EMAIL, DEFAULT_API_KEY, SpanningEmulator
from .tenant import PROFILES, Profile, expected_output, generate_users, load_users

API_KEY_ENV = "SPANNING_EMULATOR_API_KEY"
DEFAULT_USERS = 2500
# Flags of the one-tenant mode that mean nothing with --tenants.
_SINGLE_ONLY = (
    "users",
    "users_file",
    "write_users",
    "write_expected",
    "admin_email",
    "api_key",
    "date_format",
    "counts_as_text",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spanning-emulator",
        description="Emulate the Spanning Backup for Office 365 API on loopback, for tests: "
        "one tenant, or with --tenants a fleet of them (an MSP's clients).",
    )
    serve = parser.add_argument_group("server")
    serve.add_argument("--host", help="loopback address only (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8765, help="0 picks a free port (default %(default)s)"
    )
    serve.add_argument("--admin-email", help=f"Basic auth username (default {DEFAULT_ADMIN_EMAIL})")
    serve.add_argument(
        "--api-key", help=f"Basic auth password (else ${API_KEY_ENV}, else a fixed default)"
    )
    serve.add_argument("--max-page-size", type=int, default=1000, metavar="N")
    serve.add_argument(
        "--latency-ms", type=float, default=0.0, metavar="MS", help="added to every response"
    )
    serve.add_argument("--link-style", choices=("absolute", "relative"), default="absolute")
    serve.add_argument("--last-link", choices=("empty", "null", "absent"), default="empty")
    serve.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="write the base URL (one per host with --tenants) here once listening",
    )
    serve.add_argument("--verbose", action="store_true", help="log each request to stderr")

    tenant = parser.add_argument_group("tenant")
    tenant.add_argument(
        "--users", type=int, metavar="N", help=f"generated users (default {DEFAULT_USERS})"
    )
    tenant.add_argument("--seed", type=int, default=1, metavar="S")
    tenant.add_argument(
        "--profile",
        choices=PROFILES,
        help="generated users: every hard case (torture, the default for one tenant) or "
        "a plausible company (realistic, the default for --tenants)",
    )
    tenant.add_argument(
        "--users-file", type=Path, metavar="PATH", help="JSON list of user payloads to serve"
    )
    tenant.add_argument(
        "--write-users", type=Path, metavar="PATH", help="write the user payloads as JSON and exit"
    )
    tenant.add_argument(
        "--write-expected",
        type=Path,
        metavar="DIR",
        help="write the expected <stream>.jsonl files and exit (the backup streams: "
        "the 7 days ending --today)",
    )
    tenant.add_argument(
        "--today",
        type=_day,
        metavar="YYYY-MM-DD",
        help="the day the backup status treats as today (default: the real UTC today)",
    )
    tenant.add_argument(
        "--date-format",
        choices=(*DATE_FORMATS, "broken"),
        help="how backup status dates are sent (default iso; --tenants: one per tenant)",
    )
    tenant.add_argument(
        "--counts-as-text",
        action="store_true",
        default=None,
        help="send backup counts (total, and some others) as strings",
    )

    fleet = parser.add_argument_group("fleet (an MSP's client tenants)")
    fleet.add_argument(
        "--tenants", type=int, metavar="K", help="serve a generated fleet of K tenants"
    )
    fleet.add_argument(
        "--hosts",
        metavar="H1,H2,...",
        help="loopback addresses standing for regional hosts, assigned round-robin "
        "(default: --host)",
    )
    fleet.add_argument(
        "--write-fleet",
        type=Path,
        metavar="DIR",
        help="write tap-config.json (no keys), tenant-keys.env and expected/ and exit",
    )
    fleet.add_argument(
        "--tenant-fault",
        action="append",
        default=[],
        metavar="TENANT_ID:N=KIND",
        help="fault that tenant's request N (each tenant counts its own from 1)",
    )
    fleet.add_argument(
        "--tenant-latency-ms",
        action="append",
        default=[],
        metavar="TENANT_ID=MS",
        help="that tenant's latency (else --latency-ms)",
    )
    fleet.add_argument(
        "--settle-every",
        type=int,
        default=0,
        metavar="K",
        help="every K-th tenant's backups of today are still running: today's counts "
        "differ from those the day settles into, served once it is yesterday (one changed "
        "day a night: the nightly benchmark)",
    )
    fleet.add_argument(
        "--tenant-hostile",
        action="append",
        default=[],
        metavar="TENANT_ID=CASE",
        help="that tenant sends hostile values, one case each: "
        f"{', '.join(HOSTILE_CASE_NAMES)} (--write-fleet: expected/hostile.json)",
    )

    faults = parser.add_argument_group("faults (requests are numbered from 1)")
    faults.add_argument(
        "--fault-every", type=int, default=0, metavar="K", help="fault every K-th request"
    )
    faults.add_argument(
        "--fault",
        metavar="KIND",
        help=f"kind for --fault-every (default 500): {FAULT_KINDS_TEXT}",
    )
    faults.add_argument(
        "--fault-at",
        action="append",
        default=[],
        metavar="N=KIND",
        help="fault request N (KIND as for --fault)",
    )
    faults.add_argument(
        "--retry-after", default="1", metavar="VALUE|none", help="Retry-After on 429s"
    )
    faults.add_argument("--hang-seconds", type=float, default=30.0, metavar="S")
    return parser


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _fault_at(item: str, flag: str) -> tuple[int, str]:
    number, equals, kind = item.partition("=")
    if not equals or not number.isdigit():
        raise ValueError(f"{flag} expects N=KIND, got {item!r}")
    return int(number), kind


def _fault_plan(args: argparse.Namespace) -> FaultPlan:
    """Build the FaultPlan; ValueError on a bad flag combination or kind."""
    if args.fault and not args.fault_every:
        raise ValueError("--fault needs --fault-every K (or use --fault-at N=KIND)")
    at = dict(_fault_at(item, "--fault-at") for item in args.fault_at)
    retry_after = None if args.retry_after.lower() == "none" else args.retry_after
    kind = args.fault or "500"
    return FaultPlan(args.fault_every, kind, at, retry_after, args.hang_seconds)


def _api_key(args: argparse.Namespace) -> tuple[str, str]:
    """(key, where it came from) - the source may be printed, the key never."""
    if args.api_key:
        return args.api_key, "--api-key"
    if os.environ.get(API_KEY_ENV):
        return os.environ[API_KEY_ENV], API_KEY_ENV
    return DEFAULT_API_KEY, "the built-in default"


def _write_outputs(args: argparse.Namespace, users: Sequence[dict[str, object]]) -> None:
    if args.write_users:
        args.write_users.write_text(
            json.dumps(users, ensure_ascii=False, indent=1), encoding="utf-8"
        )
    if args.write_expected:
        args.write_expected.mkdir(parents=True, exist_ok=True)
        for stream, records in expected_output(users).items():
            write_jsonl(args.write_expected / f"{stream}.jsonl", records)
        history = BackupHistory(users)
        summaries = expected_backup_summaries(users, today=args.today, history=history)
        write_jsonl(args.write_expected / "backup_summaries.jsonl", summaries)
        user_backups = expected_user_backups(users, today=args.today, history=history)
        write_jsonl(args.write_expected / "user_backups.jsonl", user_backups)


def _write_ready_file(path: Path, base_urls: Sequence[str]) -> None:
    """Atomically, so a script polling for the file never reads half a URL."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text("".join(url + "\n" for url in base_urls), encoding="utf-8")
    partial.replace(path)


class _Server(Protocol):
    def start(self) -> object: ...

    def stop(self) -> None: ...


def _serve_until_signalled(
    server: _Server, ready_file: Path | None, banner: str, base_urls: Sequence[str]
) -> int:
    stopping = threading.Event()

    def request_stop(*_: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        print(banner, flush=True)
        if ready_file is not None:
            _write_ready_file(ready_file, base_urls)
        while not stopping.wait(0.5):
            pass  # a timed wait keeps the main thread responsive to signals everywhere
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


# ---------------------------------------------------------------- one tenant


def _single(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    for flag in ("hosts", "write_fleet"):
        if getattr(args, flag):
            parser.error(f"--{flag.replace('_', '-')} needs --tenants K")
    if args.tenant_fault or args.tenant_latency_ms or args.tenant_hostile or args.settle_every:
        parser.error(
            "--tenant-fault, --tenant-latency-ms, --tenant-hostile and --settle-every need "
            "--tenants K"
        )
    host = args.host or "127.0.0.1"
    if not is_loopback_host(host):
        parser.error(f"--host {host} is not a loopback address: this is a test server")
    profile: Profile = args.profile or "torture"
    try:
        faults = _fault_plan(args)
        users = (
            load_users(args.users_file)
            if args.users_file
            else generate_users(args.users or DEFAULT_USERS, args.seed, profile)
        )
    except (OSError, ValueError) as error:
        parser.error(str(error))
    if args.write_users or args.write_expected:
        _write_outputs(args, users)
        return 0
    api_key, key_source = _api_key(args)
    admin_email = args.admin_email or DEFAULT_ADMIN_EMAIL
    try:
        emulator = SpanningEmulator(
            users,
            admin_email=admin_email,
            api_key=api_key,
            host=host,
            port=args.port,
            max_page_size=args.max_page_size,
            latency=args.latency_ms / 1000,
            link_style=args.link_style,
            last_link=args.last_link,
            faults=faults,
            verbose=args.verbose,
            date_format=args.date_format or "iso",
            counts_as_text=bool(args.counts_as_text),
            today=args.today,
        )
    except OSError as error:
        print(f"spanning-emulator: cannot listen on {host}:{args.port}: {error}", file=sys.stderr)
        return 1
    banner = (
        f"spanning-emulator: serving {emulator.user_count} users at {emulator.base_url} "
        f"(admin_email={admin_email}, api key from {key_source})"
    )
    return _serve_until_signalled(emulator, args.ready_file, banner, [emulator.base_url])


# ---------------------------------------------------------------- a fleet


def _hosts(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    if args.hosts and args.host:
        parser.error("use --hosts or --host, not both")
    hosts = [host.strip() for host in (args.hosts or args.host or "127.0.0.1").split(",")]
    for host in hosts:
        if not is_loopback_host(host):
            parser.error(f"host {host!r} is not a loopback address: this is a test server")
    if len(set(hosts)) != len(hosts):
        parser.error("--hosts names a host twice")
    return hosts


def _tenant_options(
    args: argparse.Namespace, tenants: Sequence[EmulatedTenant]
) -> list[EmulatedTenant]:
    """Apply the fault, latency and hostile flags: ValueError on a bad one or an unknown
    tenant."""
    base = _fault_plan(args)
    known = {tenant.tenant_id for tenant in tenants}
    extra: dict[str, dict[int, str]] = {}
    for item in args.tenant_fault:
        tenant_id, colon, rest = item.partition(":")
        if not colon:
            raise ValueError(f"--tenant-fault expects TENANT_ID:N=KIND, got {item!r}")
        if tenant_id not in known:
            raise ValueError(f"--tenant-fault: no tenant {tenant_id!r} in this fleet")
        number, kind = _fault_at(rest, "--tenant-fault")
        extra.setdefault(tenant_id, {})[number] = kind
    latency: dict[str, float] = {}
    for item in args.tenant_latency_ms:
        tenant_id, equals, value = item.partition("=")
        if tenant_id not in known:
            raise ValueError(f"--tenant-latency-ms: no tenant {tenant_id!r} in this fleet")
        try:
            latency[tenant_id] = float(value) / 1000
        except ValueError:
            raise ValueError(f"--tenant-latency-ms expects TENANT_ID=MS, got {item!r}") from None
        if not equals or latency[tenant_id] < 0:
            raise ValueError(f"--tenant-latency-ms expects TENANT_ID=MS, got {item!r}")
    hostile = parse_hostile(args.tenant_hostile, known)
    changed = [
        dataclasses.replace(
            tenant,
            faults=dataclasses.replace(base, at={**base.at, **extra.get(tenant.tenant_id, {})}),
            latency=latency.get(tenant.tenant_id, args.latency_ms / 1000),
            hostile=hostile.get(tenant.tenant_id),
        )
        for tenant in tenants
    ]
    check_tenants(changed)  # a per-user case needs a licensed user, --write-fleet too
    return changed


def _fleet(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    given = [name for name in _SINGLE_ONLY if getattr(args, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        parser.error(f"{flags}: one-tenant options, not for --tenants")
    if args.tenants < 1:
        parser.error("--tenants must be >= 1")
    hosts = _hosts(parser, args)
    profile: Profile = args.profile or "realistic"
    tenants = generate_fleet(
        args.tenants, args.seed, hosts=hosts, profile=profile, today=args.today
    )
    try:
        tenants = _tenant_options(args, tenants)
    except ValueError as error:
        parser.error(str(error))
    if args.settle_every < 0:
        parser.error("--settle-every must be >= 0")
    if args.settle_every:
        # The day `settle_day` is drawn apart: today, still running; tomorrow it is drawn as
        # every other day, its final counts.
        running = args.today or utc_today()
        tenants = [
            dataclasses.replace(tenant, settle_day=running)
            if number % args.settle_every == 0
            else tenant
            for number, tenant in enumerate(tenants, start=1)
        ]
    if args.write_fleet:
        if args.port == 0:
            parser.error("--write-fleet needs the --port the fleet will be served on, not 0")
        write_fleet(args.write_fleet, tenants, args.port)
        return 0
    try:
        fleet = FleetEmulator(
            tenants,
            port=args.port,
            max_page_size=args.max_page_size,
            link_style=args.link_style,
            last_link=args.last_link,
            verbose=args.verbose,
        )
    except OSError as error:
        print(
            f"spanning-emulator: cannot listen on {', '.join(hosts)} port {args.port}: {error}",
            file=sys.stderr,
        )
        return 1
    users = sum(tenant.user_count for tenant in tenants)
    banner = (
        f"spanning-emulator: serving {len(tenants)} tenants ({users} users) at "
        f"{', '.join(fleet.base_urls)} (admin_email=admin@<tenant_id>.example, "
        f"keys generated from --seed {args.seed}: --write-fleet writes them)"
    )
    hostile = [f"{t.tenant_id}={t.hostile}" for t in tenants if t.hostile is not None]
    banner += f"; hostile: {', '.join(hostile)}" if hostile else ""
    return _serve_until_signalled(fleet, args.ready_file, banner, fleet.base_urls)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `spanning-emulator` and `python -m spanning_emulator`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tenants is not None:
        return _fleet(parser, args)
    return _single(parser, args)
