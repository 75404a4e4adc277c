"""The `spanning-emulator` command: serve a generated tenant on loopback."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from .server import (
    DEFAULT_ADMIN_EMAIL,
    DEFAULT_API_KEY,
    FaultPlan,
    SpanningEmulator,
    is_loopback_host,
)
from .tenant import expected_output, generate_users, load_users

API_KEY_ENV = "SPANNING_EMULATOR_API_KEY"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spanning-emulator",
        description="Emulate the Spanning Backup for Office 365 API on loopback, for tests.",
    )
    serve = parser.add_argument_group("server")
    serve.add_argument(
        "--host", default="127.0.0.1", help="loopback address only (default %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=8765, help="0 picks a free port (default %(default)s)"
    )
    serve.add_argument("--admin-email", default=DEFAULT_ADMIN_EMAIL, help="Basic auth username")
    serve.add_argument(
        "--api-key", help=f"Basic auth password (else ${API_KEY_ENV}, else a fixed default)"
    )
    serve.add_argument("--max-page-size", type=int, default=1000, metavar="N")
    serve.add_argument(
        "--latency-ms", type=float, default=0.0, metavar="MS", help="added to every response"
    )
    serve.add_argument(
        "--link-style", choices=("absolute", "relative", "http-absolute"), default="absolute"
    )
    serve.add_argument("--last-link", choices=("empty", "null", "absent"), default="empty")
    serve.add_argument(
        "--ready-file", type=Path, metavar="PATH", help="write the base URL here once listening"
    )
    serve.add_argument("--verbose", action="store_true", help="log each request to stderr")

    tenant = parser.add_argument_group("tenant")
    tenant.add_argument(
        "--users", type=int, default=2500, metavar="N", help="generated users (default %(default)s)"
    )
    tenant.add_argument("--seed", type=int, default=1, metavar="S")
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
        help="write the expected <stream>.jsonl files and exit",
    )

    faults = parser.add_argument_group("faults (requests are numbered from 1)")
    faults.add_argument(
        "--fault-every", type=int, default=0, metavar="K", help="fault every K-th request"
    )
    faults.add_argument("--fault", metavar="KIND", help="kind for --fault-every (default 500)")
    faults.add_argument(
        "--fault-at", action="append", default=[], metavar="N=KIND", help="fault request N"
    )
    faults.add_argument(
        "--retry-after", default="1", metavar="VALUE|none", help="Retry-After on 429s"
    )
    faults.add_argument("--hang-seconds", type=float, default=30.0, metavar="S")
    return parser


def _fault_plan(args: argparse.Namespace) -> FaultPlan:
    """Build the FaultPlan; ValueError on a bad flag combination or kind."""
    if args.fault and not args.fault_every:
        raise ValueError("--fault needs --fault-every K (or use --fault-at N=KIND)")
    at: dict[int, str] = {}
    for item in args.fault_at:
        number, equals, kind = item.partition("=")
        if not equals or not number.isdigit():
            raise ValueError(f"--fault-at expects N=KIND, got {item!r}")
        at[int(number)] = kind
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


def _write_jsonl(path: Path, records: Iterable[object]) -> None:
    lines = (json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    path.write_text("".join(lines), encoding="utf-8")


def _write_outputs(args: argparse.Namespace, users: Sequence[dict[str, object]]) -> None:
    if args.write_users:
        args.write_users.write_text(
            json.dumps(users, ensure_ascii=False, indent=1), encoding="utf-8"
        )
    if args.write_expected:
        args.write_expected.mkdir(parents=True, exist_ok=True)
        for stream, records in expected_output(users).items():
            _write_jsonl(args.write_expected / f"{stream}.jsonl", records)


def _write_ready_file(path: Path, base_url: str) -> None:
    """Atomically, so a script polling for the file never reads half a URL."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(base_url + "\n", encoding="utf-8")
    partial.replace(path)


def _serve_until_signalled(emulator: SpanningEmulator, ready_file: Path | None, banner: str) -> int:
    stopping = threading.Event()

    def request_stop(*_: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        emulator.start()
        print(banner, flush=True)
        if ready_file is not None:
            _write_ready_file(ready_file, emulator.base_url)
        while not stopping.wait(0.5):
            pass  # a timed wait keeps the main thread responsive to signals everywhere
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `spanning-emulator` and `python -m tap_spanning.emulator`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not is_loopback_host(args.host):
        parser.error(f"--host {args.host} is not a loopback address: this is a test server")
    try:
        faults = _fault_plan(args)
        users = (
            load_users(args.users_file)
            if args.users_file
            else generate_users(args.users, args.seed)
        )
    except (OSError, ValueError) as error:
        parser.error(str(error))
    if args.write_users or args.write_expected:
        _write_outputs(args, users)
        return 0
    api_key, key_source = _api_key(args)
    try:
        emulator = SpanningEmulator(
            users,
            admin_email=args.admin_email,
            api_key=api_key,
            host=args.host,
            port=args.port,
            max_page_size=args.max_page_size,
            latency=args.latency_ms / 1000,
            link_style=args.link_style,
            last_link=args.last_link,
            faults=faults,
            verbose=args.verbose,
        )
    except OSError as error:
        print(
            f"spanning-emulator: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr
        )
        return 1
    banner = (
        f"spanning-emulator: serving {emulator.user_count} users at {emulator.base_url} "
        f"(admin_email={args.admin_email}, api key from {key_source})"
    )
    return _serve_until_signalled(emulator, args.ready_file, banner)
