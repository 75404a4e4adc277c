"""The emulator in its own process, with a request counter the bench can read.

`python -m bench.emulator --users N ...` serves a generated tenant with
`spanning_emulator.SpanningEmulator` (so it never shares a GIL with the program
being measured), prints `{"base_url": ...}` on stdout once listening, then obeys
one command per stdin line:

- `stats`: print the requests received since the last `stats` as one JSON line
  (`{"requests": n, "by_path": {...}, "by_status": {...}, "by_tenant": {...}}`) and
  forget them;
- `verify PATH` (fleet only): compare the records of a saved tap output with
  `expected_output` for every tenant, print the verdict as one JSON line;
- `pages SIZE` (one tenant only): the body sizes of the users pages of SIZE users, asked
  with `status=false` and with `status=true` and the last 7 days, answered in this
  process (no HTTP, not counted in `stats`), as one JSON line;
- `quit` (or end of input): stop.

With `--cache-backup-pages` (`python -m bench --user-backups`), a users page asked with
`status=true` is rendered once and then answered from memory (`cache_backup_pages`);
`--date-format`, `--counts-as-text` and `--user-id-as-text` spell the backup status as
`spanning_emulator.BackupStyle` says.

`python -m bench.emulator --fleet N --hosts 127.0.0.1,127.0.0.2 --latency-ms 100`
serves `generate_fleet(N)` instead (`spanning_emulator.FleetEmulator`, that latency
on every tenant), and beside it one tenant holding every user of the fleet, with no
latency (for the floor); it prints `{"base_url": <that tenant>, "tenants": [...]}`,
each tenant with its id, credentials, base URL and user count.

The fleet lives only in this process: the bench itself stays small, because a
child's peak RSS (wait4) counts its parent's at the moment it is started.

`Emulator` is the bench's side of it: start, read stats, verify, stop.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from bench.measure import digest_add, record_digests

if TYPE_CHECKING:
    from spanning_emulator import EmulatedTenant, FleetEmulator, RequestRecord, SpanningEmulator

REPO = Path(__file__).resolve().parent.parent
ADMIN_EMAIL = "bench-admin@contoso.example"
API_KEY = "0b7e4c1a-5d2f-4e8b-9c3a-6f1d2e7b8a45"
DEFAULT_FLEET_HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
_START_TIMEOUT = 120.0
# Mismatched tenants named in a verdict, at most.
_NAMED_MISMATCHES = 10


def _stats(log: Sequence[RequestRecord]) -> dict[str, Any]:
    return {
        "requests": len(log),
        "by_path": Counter(entry.path.partition("?")[0] for entry in log),
        "by_status": Counter(str(entry.status) for entry in log),
        "by_tenant": Counter(str(entry.tenant_id) for entry in log),
    }


def expected_digests(
    tenants: Sequence[EmulatedTenant], fleet: FleetEmulator
) -> dict[str, tuple[int, int]]:
    """(count, digest) of every tenant's expected records, keyed "stream/tenant_id"."""
    from spanning_emulator import (  # noqa: PLC0415
        expected_output,
        expected_roles_stream,
        expected_tenant_record,
    )

    found: dict[str, tuple[int, int]] = {}
    for role in expected_roles_stream():
        digest_add(found, "roles/", role)
    for tenant in tenants:
        output = expected_output(tenant.users, tenant.tenant_id)
        for stream in ("users", "role_memberships"):
            for record in output[stream]:
                digest_add(found, f"{stream}/{tenant.tenant_id}", record)
        counters = tenant.served_counters()
        record = expected_tenant_record(
            tenant.tenant_id, counters, fleet.base_url(tenant.tenant_id)
        )
        digest_add(found, f"tenants/{tenant.tenant_id}", record)
    return found


# The run's own version (and times) are not in the ground truth; tenant_syncs is checked
# by the tests, not here.
_RUN_FIELDS = frozenset({"sync_version"})
_OUTPUT_IGNORES = {"users": _RUN_FIELDS, "role_memberships": _RUN_FIELDS, "tenants": _RUN_FIELDS}


def output_digests(path: Path) -> dict[str, tuple[int, int]]:
    """(count, digest) of the RECORDs of a saved output, keyed "stream/tenant_id"."""
    found = record_digests(path, _OUTPUT_IGNORES, key=_by_tenant)
    return {key: value for key, value in found.items() if not key.startswith("tenant_syncs/")}


def _by_tenant(stream: str, record: Any) -> str:
    tenant_id = record.get("tenant_id", "") if stream != "roles" else ""
    return f"{stream}/{tenant_id}"


def verify_fleet(
    path: Path, tenants: Sequence[EmulatedTenant], fleet: FleetEmulator
) -> dict[str, Any]:
    """Every tenant's records in a saved output against `expected_output`."""
    expected, got = expected_digests(tenants, fleet), output_digests(path)
    wrong = sorted(key for key in set(expected) | set(got) if expected.get(key) != got.get(key))
    bad_tenants = sorted({key.partition("/")[2] for key in wrong if not key.startswith("roles/")})
    return {
        "equal": not wrong,
        "tenants": len(tenants),
        "tenants_equal": len(tenants) - len(bad_tenants),
        "roles_equal": expected.get("roles/") == got.get("roles/"),
        "records_expected": sum(count for count, _ in expected.values()),
        "records_seen": sum(count for count, _ in got.values()),
        "mismatched": wrong[:_NAMED_MISMATCHES],
        "mismatched_count": len(wrong),
    }


def _serve_fleet(args: argparse.Namespace) -> int:
    from spanning_emulator import (  # noqa: PLC0415
        FleetEmulator,
        SpanningEmulator,
        generate_fleet,
    )

    hosts = [host for host in args.hosts.split(",") if host]
    tenants = [
        dataclasses.replace(tenant, latency=args.latency_ms / 1000)
        for tenant in generate_fleet(args.fleet, args.seed, hosts=hosts)
    ]
    fleet = FleetEmulator(tenants, max_page_size=args.max_page_size).start()
    merged = SpanningEmulator(
        [user for tenant in tenants for user in tenant.users],
        admin_email=args.admin_email,
        api_key=args.api_key,
        port=0,
        max_page_size=args.max_page_size,
    ).start()
    try:
        ready = {
            "base_url": merged.base_url,
            "tenants": [
                {
                    "tenant_id": tenant.tenant_id,
                    "admin_email": tenant.admin_email,
                    "api_key": tenant.api_key,
                    "base_url": fleet.base_url(tenant.tenant_id),
                    "users": tenant.user_count,
                }
                for tenant in tenants
            ],
        }
        print(json.dumps(ready), flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "quit":
                break
            if command == "stats":
                log = [*fleet.requests, *merged.requests]
                fleet.clear_requests()
                merged.clear_requests()
                print(json.dumps(_stats(log)), flush=True)
            elif command == "verify":
                print(json.dumps(verify_fleet(Path(argument), tenants, fleet)), flush=True)
    finally:
        merged.stop()
        fleet.stop()
    return 0


def users_page_bytes(emulator: SpanningEmulator, page_size: int) -> dict[str, Any]:
    """Per way of asking (`status=false`; `status=true` with the 7 days ending the
    emulator's today, as the tap's user_backups asks): the users pages, their bytes in
    all, and the mean body of a page. Answered here, without HTTP or the request log."""
    from spanning_emulator.backups import (  # noqa: PLC0415
        as_day,
        day_start_ms,
        trailing_days,
        utc_today,
    )

    token = base64.b64encode(f"{emulator.admin_email}:{emulator.api_key}".encode()).decode()
    today = as_day(emulator.today) if emulator.today is not None else utc_today()
    days = trailing_days(today)
    window = f"&start={day_start_ms(days[0])}&end={day_start_ms(days[-1]) + 86_400_000 - 1}"
    found: dict[str, Any] = {}
    for name, query in (("status=false", "status=false"), ("status=true", "status=true" + window)):
        target: str | None = f"/external/users?size={page_size}&{query}"
        pages = size = 0
        while target:
            body = emulator.respond("GET", target, f"Basic {token}", 0).body
            pages += 1
            size += len(body)
            link = json.loads(body).get("nextLink") or None
            target = link.removeprefix(emulator.base_url) if link else None
        found[name] = {"pages": pages, "bytes": size, "mean_bytes": size / max(pages, 1)}
    return found


def cache_backup_pages(emulator: SpanningEmulator) -> None:
    """Answer each users page asked with `status=true` from memory after its first time.

    Such a page costs the emulator far more than the program reading it (every user's
    backup history is drawn and serialised: about 0.6 s a page of 1,000 users, in the
    bench's 2-CPU machine), and the programs ask one page after the other, so that time
    would count in both walls alike. The bench renders the pages once before the runs
    (`pages`); the runs then get the same bytes, at no cost. Keyed by the query's
    parameters in any order and by the emulator's today; only 200 answers are kept.
    """
    answer = emulator.answer
    cache: dict[tuple[object, ...], Any] = {}
    lock = threading.Lock()

    def cached(method: str, target: str, admission: Any) -> Any:
        path, _, query = target.partition("?")
        if (
            method != "GET"
            or path != "/external/users"
            or admission.snapshot is None
            or "status=true" not in query
        ):
            return answer(method, target, admission)
        today = admission.backups.today if admission.backups is not None else None
        key = (tuple(sorted(parse_qsl(query, keep_blank_values=True))), today)
        with lock:
            found = cache.get(key)
        if found is None:
            found = answer(method, target, admission)
            if found.status == 200:
                with lock:
                    cache[key] = found
        return found

    vars(emulator)["answer"] = cached


def serve(argv: list[str] | None = None) -> int:
    """The child process."""
    from spanning_emulator import SpanningEmulator, generate_users  # noqa: PLC0415
    from spanning_emulator.backups import check_date_format  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.emulator")
    parser.add_argument("--users", type=int, default=0)
    parser.add_argument("--fleet", type=int, default=0, help="serve generate_fleet(N) instead")
    parser.add_argument("--hosts", default=",".join(DEFAULT_FLEET_HOSTS), help="fleet hosts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-page-size", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--admin-email", default=ADMIN_EMAIL)
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--date-format", default="iso", help="backup dates (one tenant only)")
    parser.add_argument("--counts-as-text", action="store_true", help="backup counts as text")
    parser.add_argument("--user-id-as-text", action="store_true", help="userId as text")
    parser.add_argument(
        "--cache-backup-pages",
        action="store_true",
        help="answer status=true users pages from memory after their first time",
    )
    args = parser.parse_args(argv)
    if args.fleet:
        return _serve_fleet(args)
    emulator = SpanningEmulator(
        generate_users(args.users, args.seed),
        admin_email=args.admin_email,
        api_key=args.api_key,
        port=0,
        max_page_size=args.max_page_size,
        latency=args.latency_ms / 1000,
        date_format=check_date_format(args.date_format),
        counts_as_text=args.counts_as_text,
        user_id_as_text=args.user_id_as_text,
    )
    if args.cache_backup_pages:
        cache_backup_pages(emulator)
    emulator.start()
    try:
        print(json.dumps({"base_url": emulator.base_url}), flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "quit":
                break
            if command == "stats":
                log = emulator.requests
                emulator.clear_requests()
                print(json.dumps(_stats(log)), flush=True)
            elif command == "pages":
                print(json.dumps(users_page_bytes(emulator, int(argument))), flush=True)
    finally:
        emulator.stop()
    return 0


class Emulator:
    """A `python -m bench.emulator` child: `with Emulator(users=...) as emu: emu.base_url`."""

    # The child's module: a subclass serves another fleet with the same protocol
    # (bench.huge_pages).
    module = "bench.emulator"

    def __init__(
        self,
        users: int,
        *,
        seed: int = 1,
        latency_ms: float = 0.0,
        max_page_size: int = 1000,
        fleet: int = 0,
        hosts: Sequence[str] = DEFAULT_FLEET_HOSTS,
        backup_style: Sequence[str] = (),
    ) -> None:
        """`backup_style`: more options of the child (one tenant only), e.g.
        `["--date-format", "mdy", "--counts-as-text"]`."""
        self.users = users
        self.latency_ms = latency_ms
        self.startup_seconds = 0.0
        self._args = [
            "--users",
            str(users),
            "--seed",
            str(seed),
            "--latency-ms",
            str(latency_ms),
            "--max-page-size",
            str(max_page_size),
        ]
        if fleet:
            self._args += ["--fleet", str(fleet), "--hosts", ",".join(hosts)]
        self._args += backup_style
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""
        # Fleet only: each tenant's tenant_id, admin_email, api_key, base_url and users.
        self.tenants: list[dict[str, Any]] = []

    def __enter__(self) -> Emulator:
        started = time.perf_counter()
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self._args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read_line()
        self.base_url = str(ready["base_url"])
        self.tenants = list(ready.get("tenants", []))
        self.startup_seconds = time.perf_counter() - started
        return self

    def _read_line(self) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait(timeout=_START_TIMEOUT)
            raise RuntimeError(f"the bench emulator exited ({code}) before answering")
        value: dict[str, Any] = json.loads(line)
        return value

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._read_line()

    def stats(self) -> dict[str, Any]:
        """Requests received since the last call (and forget them)."""
        return self._ask("stats")

    def users_page_bytes(self, page_size: int) -> dict[str, Any]:
        """One tenant only: the users pages' sizes, without and with backups (`pages`)."""
        return self._ask(f"pages {page_size}")

    def verify(self, output: Path) -> dict[str, Any]:
        """Fleet only: every tenant's records in a saved tap output vs expected_output."""
        return self._ask(f"verify {output}")

    def tap_config(self, page_size: int) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "admin_email": ADMIN_EMAIL,
            "api_key": API_KEY,
            "page_size": page_size,
        }

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        try:
            assert process.stdin is not None
            process.stdin.write("quit\n")
            process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    raise SystemExit(serve())
