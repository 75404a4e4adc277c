"""Alert delivery: each alert of the `alerts` mart that opened or resolved, sent once.

    python -m spanning_reports alerts duckdb|postgres [--sent-file F] [--file OUT.jsonl|OUT.csv]
        [--webhook-format generic|teams|slack]

Through Meltano: `meltano invoke fleet-report:alerts-duckdb` (or `:alerts-postgres`), the last
step of the nightly jobs. The warehouse is found as the fleet report finds it (utility.py).
The webhook's URL is a secret setting, never an argument: FLEET_REPORT_ALERTS_WEBHOOK_URL
(Meltano's `alerts_webhook_url`), else SPANNING_ALERTS_WEBHOOK_URL.

The sent file ({alert_key: {status, first_seen, sent_at, alert}}) is this command's memory of
what it sent. An alert "opened" is open in the mart and not recorded open, or recorded open
with another first_seen (a new episode); one "resolved" was recorded open and is now resolved
in the mart or gone from it. Each event goes to the file and the webhook, and only then is
recorded (the sent file replaced whole, never half written): an event not delivered is sent
again by the next run, one delivered is never sent again. docs/alerts.md has the shapes.

Exit codes: 0 delivered (or nothing to send), 1 the warehouse or a delivery failed, 2 a
setting or the sent file is wrong (nothing sent).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from spanning_reports.alerts_delivery import (
    EVENTS_PER_MESSAGE,
    FORMATS,
    DeliveryError,
    Event,
    Webhook,
    append_events,
    check_url,
    file_kind,
    redact,
)
from spanning_reports.marts import ReportError, Row, read_warehouse
from spanning_reports.utility import in_project, source_args

# The mart's columns, in its order (docs/alerts.md, "What is sent").
ALERT_COLUMNS = (
    "alert_key",
    "tenant_id",
    "tenant_name",
    "kind",
    "subject",
    "severity",
    "status",
    "first_seen",
    "last_seen",
    "resolved_on",
    "summary",
)
DEFAULT_SENT_FILE = "output/alerts_sent.json"
WEBHOOK_URL_VARIABLES = ("FLEET_REPORT_ALERTS_WEBHOOK_URL", "SPANNING_ALERTS_WEBHOOK_URL")
STATUSES = ("open", "resolved")
PROGRAM = "alerts"


class SetupError(Exception):
    """A setting or the sent file is wrong: exit 2, nothing read or sent."""


@dataclass(frozen=True)
class Setup:
    warehouse: str
    sent_file: Path
    out_file: Path | None
    webhook: Webhook | None


def plain(value: Any) -> Any:
    """A warehouse value as JSON holds it: dates as YYYY-MM-DD, numbers as numbers."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def current_alerts(rows: Sequence[Row]) -> dict[str, Row]:
    """The mart's rows by alert_key, values made plain."""
    return {
        str(row["alert_key"]): {column: plain(row[column]) for column in ALERT_COLUMNS}
        for row in rows
    }


def read_sent(path: Path) -> dict[str, dict[str, Any]]:
    """The sent file's record; {} when there is none yet. SetupError when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SetupError(f"{path}: cannot read the sent file ({exc.strerror})") from None
    fix = "fix it, or delete it to send every open alert again"
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise SetupError(f"{path}: the sent file is not JSON ({exc}): {fix}") from None
    if not isinstance(record, dict):
        raise SetupError(f"{path}: the sent file is not a JSON object of alert keys: {fix}")
    for key, entry in record.items():
        if not (
            isinstance(entry, dict)
            and entry.get("status") in STATUSES
            and isinstance(entry.get("first_seen"), (str, type(None)))
            and isinstance(entry.get("sent_at"), str)
            and isinstance(entry.get("alert", {}), dict)
        ):
            raise SetupError(
                f"{path}: the sent file's entry {json.dumps(key)} is not "
                '{"status": "open"|"resolved", "first_seen": ..., "sent_at": ...}: ' + fix
            )
    return record


def gone_alert(key: str, entry: Mapping[str, Any]) -> Row:
    """The row of an alert no longer in the mart: as last sent, the key's parts otherwise."""
    tenant_id, kind, subject = [*key.split("|", 2), "", ""][:3]
    row: Row = dict.fromkeys(ALERT_COLUMNS)
    row |= {"alert_key": key, "tenant_id": tenant_id, "kind": kind, "subject": subject}
    row |= {"first_seen": entry.get("first_seen"), "summary": key}
    row |= {c: v for c, v in (entry.get("alert") or {}).items() if c in ALERT_COLUMNS}
    row |= {"status": "resolved", "resolved_on": None}
    return row


def alert_events(alerts: Mapping[str, Row], sent: Mapping[str, Mapping[str, Any]]) -> list[Event]:
    """The events to send: the mart row (or the gone alert's) and "event"."""
    events: list[Event] = []
    for key in sorted(set(alerts) | set(sent)):
        row, entry = alerts.get(key), sent.get(key)
        recorded_open = entry is not None and entry["status"] == "open"
        if row is not None and row["status"] == "open":
            if not recorded_open or entry is None or entry["first_seen"] != row["first_seen"]:
                events.append({**row, "event": "opened"})
        elif recorded_open and entry is not None:
            events.append({**(row or gone_alert(key, entry)), "event": "resolved"})
    return events


def updated_record(
    sent: Mapping[str, dict[str, Any]],
    delivered: Sequence[Event],
    alerts: Mapping[str, Row],
    sent_at: str,
) -> dict[str, dict[str, Any]]:
    """The record after the delivered events; resolved alerts gone from the mart dropped."""
    record = dict(sent)
    for event in delivered:
        alert = {column: event[column] for column in ALERT_COLUMNS}
        record[event["alert_key"]] = {
            "status": "open" if event["event"] == "opened" else "resolved",
            "first_seen": event["first_seen"],
            "sent_at": sent_at,
            "alert": alert,
        }
    return {
        key: entry for key, entry in record.items() if entry["status"] == "open" or key in alerts
    }


def write_sent(path: Path, record: Mapping[str, Any]) -> None:
    """Replace the sent file whole: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out, indent=2, sort_keys=True, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spanning_reports alerts",
        description="Send each alert of the alerts mart that opened or resolved, once.",
    )
    parser.add_argument("warehouse", choices=("duckdb", "postgres"))
    parser.add_argument(
        "--sent-file",
        type=Path,
        metavar="F",
        help="the record of what was sent (default: $FLEET_REPORT_ALERTS_SENT_FILE, else "
        f"{DEFAULT_SENT_FILE} of the project)",
    )
    parser.add_argument(
        "--file",
        type=Path,
        metavar="OUT",
        help="append the events to this .jsonl or .csv file (default: $FLEET_REPORT_ALERTS_FILE)",
    )
    parser.add_argument(
        "--webhook-format",
        choices=FORMATS,
        help="the webhook's body (default: $FLEET_REPORT_ALERTS_WEBHOOK_FORMAT, else generic); "
        "its URL is $FLEET_REPORT_ALERTS_WEBHOOK_URL, else $SPANNING_ALERTS_WEBHOOK_URL",
    )
    return parser.parse_args(argv)


def setup(args: argparse.Namespace, env: Mapping[str, str]) -> Setup:
    """The paths and the webhook, from the arguments, else the settings (SetupError)."""
    sent_file = args.sent_file or Path(
        in_project(env, env.get("FLEET_REPORT_ALERTS_SENT_FILE") or DEFAULT_SENT_FILE)
    )
    named = env.get("FLEET_REPORT_ALERTS_FILE")
    out_file = args.file or (Path(in_project(env, named)) if named else None)
    if out_file is not None and file_kind(out_file) is None:
        raise SetupError(f"{out_file}: the alerts file must end in .jsonl or .csv")
    webhook_format = args.webhook_format or env.get("FLEET_REPORT_ALERTS_WEBHOOK_FORMAT")
    webhook_format = webhook_format or "generic"
    if webhook_format not in FORMATS:
        raise SetupError(
            f"alerts_webhook_format is {webhook_format!r}: it must be one of {', '.join(FORMATS)}"
        )
    url = next((env[name] for name in WEBHOOK_URL_VARIABLES if env.get(name)), None)
    webhook = None
    if url is not None:
        problem = check_url(url)
        if problem:
            raise SetupError(f"alerts_webhook_url {problem} (its value is not shown: a secret)")
        webhook = Webhook(url, webhook_format)
    return Setup(args.warehouse, sent_file, out_file, webhook)


def read_alerts(warehouse: str, env: Mapping[str, str]) -> dict[str, Row]:
    """The alerts mart's rows, exactly its columns, from the warehouse the settings name."""
    flag, where, _, schema = source_args(warehouse, env)
    source: Path | str = Path(where) if flag == "--duckdb" else where
    declared = {"alerts": list(ALERT_COLUMNS)}
    marts = read_warehouse(source, schema, ["alerts"], declared, freshness=False)
    return current_alerts(marts["alerts"])


def deliver(plan: Setup, events: Sequence[Event]) -> tuple[list[Event], str | None]:
    """Send the events, a message at a time, to the webhook and then the file: the events
    delivered, and why the rest were not (None when all were)."""
    delivered: list[Event] = []
    for start in range(0, len(events), EVENTS_PER_MESSAGE):
        batch = events[start : start + EVENTS_PER_MESSAGE]
        try:
            if plan.webhook is not None:
                plan.webhook.send(batch)
            if plan.out_file is not None:
                append_events(plan.out_file, batch, ALERT_COLUMNS)
        except DeliveryError as exc:
            return delivered, str(exc)
        except OSError as exc:
            return delivered, f"{plan.out_file}: cannot append the alerts ({exc.strerror})"
        delivered.extend(batch)
    return delivered, None


def destinations(plan: Setup) -> str:
    named = [plan.webhook.where] if plan.webhook is not None else []
    named += [str(plan.out_file)] if plan.out_file is not None else []
    return " and ".join(named)


def run(plan: Setup, env: Mapping[str, str]) -> int:
    sent = read_sent(plan.sent_file)
    alerts = read_alerts(plan.warehouse, env)
    events = alert_events(alerts, sent)
    delivered, failure = deliver(plan, events)
    sent_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    record = updated_record(sent, delivered, alerts, sent_at)
    if record != sent:
        try:
            write_sent(plan.sent_file, record)
        except OSError as exc:
            # Delivered but not recorded: the next run sends these events again.
            print(f"{PROGRAM}: cannot write {plan.sent_file} ({exc})", file=sys.stderr)
            return 1
    opened = sum(1 for event in delivered if event["event"] == "opened")
    if failure is not None:
        undelivered = len(events) - len(delivered)
        print(
            f"{PROGRAM}: {undelivered} of {len(events)} events not delivered, sent again next "
            f"run: {redact(failure, plan.webhook.url) if plan.webhook else failure}",
            file=sys.stderr,
        )
        return 1
    if events:
        print(
            f"{PROGRAM}: {opened} opened, {len(delivered) - opened} resolved, sent to "
            f"{destinations(plan)}; recorded in {plan.sent_file}"
        )
    else:
        quiet = f"nothing opened or resolved since the last run ({len(alerts)} in the mart)"
        print(f"{PROGRAM}: {quiet}")
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    environ = os.environ if env is None else env
    url = next((environ[name] for name in WEBHOOK_URL_VARIABLES if environ.get(name)), "")
    try:
        plan = setup(args, environ)
        if plan.webhook is None and plan.out_file is None:
            print(
                f"{PROGRAM}: neither alerts_webhook_url nor alerts_file is set: nothing sent, "
                "nothing recorded",
                file=sys.stderr,
            )
            return 0
        return run(plan, environ)
    except SetupError as exc:
        print(f"{PROGRAM}: {redact(str(exc), url) if url else exc}", file=sys.stderr)
        return 2
    except ReportError as exc:
        print(f"{PROGRAM}: {redact(str(exc), url) if url else exc}", file=sys.stderr)
        return 1
