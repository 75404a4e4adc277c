"""The alerts command (`python -m spanning_reports alerts`, docs/alerts.md): each alert of the
`alerts` mart that opened or resolved is sent once, over real HTTP to a webhook receiver on
127.0.0.1, and to a JSON lines or CSV file; the sent file records only what was delivered; the
webhook's URL (a secret) is never printed."""

from __future__ import annotations

import csv
import datetime as dt
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from spanning_reports import __main__ as reports_main
from spanning_reports import alerts, alerts_delivery
from typing_extensions import override

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "T0KEN-b1c2d3e4-f5a6-secret-9f8e7d"
ALERT_COLUMNS_DDL = """
    alert_key varchar, tenant_id varchar, tenant_name varchar, kind varchar, subject varchar,
    severity varchar, status varchar, first_seen date, last_seen date, resolved_on date,
    summary varchar
"""


def alert(
    tenant_id: str,
    kind: str,
    subject: str = "",
    *,
    severity: str = "warning",
    status: str = "open",
    first_seen: str = "2024-05-01",
    resolved_on: str | None = None,
) -> dict[str, Any]:
    """A row of the alerts mart as the contract lays it out."""
    name = f"Client {tenant_id.upper()}"
    return {
        "alert_key": f"{tenant_id}|{kind}|{subject}",
        "tenant_id": tenant_id,
        "tenant_name": name,
        "kind": kind,
        "subject": subject,
        "severity": severity,
        "status": status,
        "first_seen": first_seen,
        "last_seen": "2024-05-03",
        "resolved_on": resolved_on,
        "summary": f"{name}: {kind} {subject}".strip(),
    }


FAILING = alert("t1", "sync_failing", severity="critical")
UNPROTECTED = alert("t1", "user_unprotected", "ms-7", severity="critical")
SEATS = alert("t2", "seats_over_licenses")
# Resolved before any run saw it open: never sent.
OLD = alert("t2", "backup_below_target", status="resolved", resolved_on="2024-05-02")
FIRST_NIGHT = [FAILING, UNPROTECTED, SEATS, OLD]


def write_alerts(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """The warehouse holding an `alerts` table of these rows, replacing any before."""
    with duckdb.connect(str(path)) as connection:
        connection.execute(f"CREATE OR REPLACE TABLE main.alerts ({ALERT_COLUMNS_DDL})")
        for row in rows:
            connection.execute(
                f"INSERT INTO main.alerts VALUES ({', '.join('?' * len(alerts.ALERT_COLUMNS))})",
                [row[column] for column in alerts.ALERT_COLUMNS],
            )


class Receiver(ThreadingHTTPServer):
    """Records each POST's path and JSON body; answers from `script`, then 200."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.bodies: list[Any] = []
        self.paths: list[str] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/{TOKEN}?sig={TOKEN[::-1]}"


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.paths.append(self.path)
            status, headers = self.server.script.pop(0) if self.server.script else (200, {})
            if status < 300:
                self.server.bodies.append(json.loads(body))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    @override
    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads what was received, not the server's log."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between tries, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(alerts_delivery, "pause", recorded.append)
    return recorded


class Alerts:
    """Runs the command in this process against one warehouse, sent file and webhook."""

    def __init__(self, tmp_path: Path, receiver: Receiver | None, capsys: Any) -> None:
        self.database = tmp_path / "warehouse.duckdb"
        self.sent_file = tmp_path / "state" / "alerts_sent.json"
        self.capsys = capsys
        self.env = {
            "MELTANO_PROJECT_ROOT": str(tmp_path),
            "FLEET_REPORT_DUCKDB_PATH": str(self.database),
            "FLEET_REPORT_SCHEMA": "main",
        }
        if receiver is not None:
            self.env["FLEET_REPORT_ALERTS_WEBHOOK_URL"] = receiver.url
        self.out = ""
        self.err = ""

    def run(self, *options: str, **env: str) -> int:
        argv = ["duckdb", "--sent-file", str(self.sent_file), *options]
        code = alerts.main(argv, {**self.env, **env})
        captured = self.capsys.readouterr()
        self.out, self.err = captured.out, captured.err
        return code

    def sent(self) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(self.sent_file.read_text(encoding="utf-8"))
        return record


@pytest.fixture
def command(tmp_path: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]) -> Alerts:
    return Alerts(tmp_path, receiver, capsys)


def events_of(receiver: Receiver) -> list[dict[str, Any]]:
    """Every event the generic webhook received, in order."""
    return [event for body in receiver.bodies for event in body["events"]]


def as_event(row: Mapping[str, Any], event: str) -> dict[str, Any]:
    return {**row, "event": event}


def test_the_first_run_sends_each_open_alert_once_and_records_it(
    command: Alerts, receiver: Receiver
) -> None:
    write_alerts(command.database, FIRST_NIGHT)
    assert command.run() == 0, command.err
    assert len(receiver.bodies) == 1
    assert receiver.paths == [f"/hooks/{TOKEN}?sig={TOKEN[::-1]}"]
    opened = [as_event(row, "opened") for row in (FAILING, UNPROTECTED, SEATS)]
    assert events_of(receiver) == opened
    record = command.sent()
    assert set(record) == {FAILING["alert_key"], UNPROTECTED["alert_key"], SEATS["alert_key"]}
    for row in (FAILING, UNPROTECTED, SEATS):
        entry = record[row["alert_key"]]
        assert (entry["status"], entry["first_seen"]) == ("open", row["first_seen"])
        sent_at = dt.datetime.fromisoformat(entry["sent_at"])
        assert abs(dt.datetime.now(dt.timezone.utc) - sent_at) < dt.timedelta(minutes=5)
    assert "3 opened, 0 resolved" in command.out


def test_a_rerun_with_no_change_sends_nothing(command: Alerts, receiver: Receiver) -> None:
    write_alerts(command.database, FIRST_NIGHT)
    assert command.run() == 0
    before = command.sent_file.read_bytes()
    assert command.run() == 0, command.err
    assert len(receiver.bodies) == 1
    assert command.sent_file.read_bytes() == before
    assert "nothing opened or resolved" in command.out


def test_resolved_and_gone_alerts_are_sent_as_resolved_once(
    command: Alerts, receiver: Receiver
) -> None:
    write_alerts(command.database, FIRST_NIGHT)
    assert command.run() == 0
    resolved_failing = {**FAILING, "status": "resolved", "resolved_on": "2024-05-04"}
    # UNPROTECTED is gone from the mart (the user was backed up); SEATS still open.
    write_alerts(command.database, [resolved_failing, SEATS, OLD])
    assert command.run() == 0, command.err
    assert len(receiver.bodies) == 2
    gone = {**UNPROTECTED, "status": "resolved", "resolved_on": None}
    assert receiver.bodies[1]["events"] == [
        as_event(resolved_failing, "resolved"),
        as_event(gone, "resolved"),
    ]
    record = command.sent()
    assert record[FAILING["alert_key"]]["status"] == "resolved"
    assert UNPROTECTED["alert_key"] not in record  # resolved and gone: nothing left to track
    assert record[SEATS["alert_key"]]["status"] == "open"
    assert command.run() == 0
    assert len(receiver.bodies) == 2


def test_a_new_episode_of_a_recorded_alert_is_sent_as_opened(
    command: Alerts, receiver: Receiver
) -> None:
    write_alerts(command.database, [FAILING])
    assert command.run() == 0
    again = {**FAILING, "first_seen": "2024-05-20"}
    write_alerts(command.database, [again])
    assert command.run() == 0
    assert events_of(receiver) == [as_event(FAILING, "opened"), as_event(again, "opened")]
    assert command.sent()[FAILING["alert_key"]]["first_seen"] == "2024-05-20"


def test_a_failing_webhook_records_nothing_and_the_next_run_sends_exactly_those(
    command: Alerts, receiver: Receiver, waits: list[float]
) -> None:
    write_alerts(command.database, [FAILING, SEATS])
    assert command.run() == 0
    receiver.script = [(500, {})] * 3
    resolved = {**SEATS, "status": "resolved", "resolved_on": "2024-05-04"}
    write_alerts(command.database, [FAILING, resolved, UNPROTECTED])
    before = command.sent_file.read_bytes()
    assert command.run() == 1
    assert len(receiver.paths) == 1 + 3  # three tries
    assert waits == [
        alerts_delivery.RETRY_BACKOFF_SECONDS[0],
        alerts_delivery.RETRY_BACKOFF_SECONDS[1],
    ]
    assert command.sent_file.read_bytes() == before
    assert command.err.count("\n") == 1
    assert "HTTP 500" in command.err
    assert "2 of 2 events not delivered" in command.err
    assert command.run() == 0, command.err
    assert receiver.bodies[1:] == [
        {"events": [as_event(UNPROTECTED, "opened"), as_event(resolved, "resolved")]}
    ]
    assert command.run() == 0
    assert len(receiver.bodies) == 2


def test_a_429_is_retried_after_the_wait_it_asks(
    command: Alerts, receiver: Receiver, waits: list[float]
) -> None:
    write_alerts(command.database, [FAILING])
    receiver.script = [(429, {"Retry-After": "0"})]
    assert command.run() == 0, command.err
    assert waits == [0.0]
    assert len(receiver.paths) == 2
    assert events_of(receiver) == [as_event(FAILING, "opened")]


def test_a_refusing_webhook_is_not_retried(
    command: Alerts, receiver: Receiver, waits: list[float]
) -> None:
    write_alerts(command.database, [FAILING])
    receiver.script = [(404, {})]
    assert command.run() == 1
    assert (len(receiver.paths), waits) == (1, [])
    assert "refused the alerts: HTTP 404" in command.err
    assert not command.sent_file.exists()


def test_slack_gets_one_message_with_a_line_per_event(command: Alerts, receiver: Receiver) -> None:
    tricky = alert("t3", "user_unprotected", "ms-9", severity="critical")
    tricky["summary"] = "Client <T3> & co: ms-9 never backed up"
    write_alerts(command.database, [FAILING, tricky])
    assert command.run("--webhook-format", "slack") == 0, command.err
    assert receiver.bodies == [
        {
            "text": "Spanning alerts: 2 opened, 0 resolved\n"
            f"Opened (critical): {FAILING['summary']}\n"
            "Opened (critical): Client &lt;T3&gt; &amp; co: ms-9 never backed up"
        }
    ]


def test_teams_gets_an_adaptive_card(command: Alerts, receiver: Receiver) -> None:
    write_alerts(command.database, [FAILING, SEATS])
    assert command.run(FLEET_REPORT_ALERTS_WEBHOOK_FORMAT="teams") == 0, command.err
    write_alerts(command.database, [SEATS])
    assert command.run(FLEET_REPORT_ALERTS_WEBHOOK_FORMAT="teams") == 0, command.err
    first, second = receiver.bodies
    assert first["type"] == "message"
    assert first["summary"] == "Spanning alerts: 2 opened, 0 resolved"
    (attachment,) = first["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert [block["text"] for block in card["body"]] == [
        "Spanning alerts: 2 opened, 0 resolved",
        f"Opened (critical): {FAILING['summary']}",
        f"Opened (warning): {SEATS['summary']}",
    ]
    texts = [block["text"] for block in second["attachments"][0]["content"]["body"]]
    assert texts == [
        "Spanning alerts: 0 opened, 1 resolved",
        f"Resolved (critical): {FAILING['summary']}",
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_the_file_gets_every_event_appended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    """Without a webhook too: the file alone is a destination."""
    command = Alerts(tmp_path, None, capsys)
    out = tmp_path / "out" / f"alerts{suffix}"
    write_alerts(command.database, FIRST_NIGHT)
    assert command.run("--file", str(out)) == 0, command.err
    write_alerts(command.database, [SEATS])
    assert command.run("--file", str(out)) == 0, command.err
    assert command.run("--file", str(out)) == 0, command.err
    wanted = [
        as_event(FAILING, "opened"),
        as_event(UNPROTECTED, "opened"),
        as_event(SEATS, "opened"),
        as_event(FAILING | {"status": "resolved", "resolved_on": None}, "resolved"),
        as_event(UNPROTECTED | {"status": "resolved", "resolved_on": None}, "resolved"),
    ]
    if suffix == ".jsonl":
        lines = out.read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == wanted
        return
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [*alerts.ALERT_COLUMNS, "event"]
    as_text = [
        ["" if value is None else str(value) for value in event.values()] for event in wanted
    ]
    assert rows[1:] == as_text


def test_the_file_setting_is_taken_from_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = Alerts(tmp_path, None, capsys)
    write_alerts(command.database, [FAILING])
    assert command.run(FLEET_REPORT_ALERTS_FILE="output/alerts.jsonl") == 0, command.err
    assert len((tmp_path / "output" / "alerts.jsonl").read_text().splitlines()) == 1


def test_the_url_is_never_shown(
    command: Alerts, receiver: Receiver, waits: list[float], tmp_path: Path
) -> None:
    secrets: tuple[str, ...] = (TOKEN, TOKEN[::-1], receiver.url)
    write_alerts(command.database, [FAILING])

    def check(*texts: str) -> None:
        for text in texts:
            for secret in secrets:
                assert secret not in text

    receiver.script = [(500, {})] * 3
    assert command.run() == 1
    check(command.out, command.err)
    receiver.script = [(502, {})] * 3
    with pytest.raises(alerts_delivery.DeliveryError) as failed:
        alerts_delivery.Webhook(receiver.url).post({"events": []})
    check(str(failed.value), repr(failed.value), repr(alerts_delivery.Webhook(receiver.url)))
    # Nothing listens there: the connection is refused, three times.
    dead = f"http://127.0.0.1:9/hooks/{TOKEN}"
    secrets = (*secrets, dead)
    assert command.run(FLEET_REPORT_ALERTS_WEBHOOK_URL=dead) == 1
    assert "failed 3 tries" in command.err
    check(command.out, command.err)
    for bad in (f"ftp://hooks.example/{TOKEN}", f"https://hooks.example/{TOKEN} x", TOKEN):
        assert command.run(FLEET_REPORT_ALERTS_WEBHOOK_URL=bad) == 2
        assert "alerts_webhook_url" in command.err
        check(command.out, command.err)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '["a list"]',
        '{"t1|sync_failing|": {"status": "sent", "first_seen": null, "sent_at": "x"}}',
        '{"t1|sync_failing|": "open"}',
    ],
)
def test_a_malformed_sent_file_stops_before_anything_is_sent(
    command: Alerts, receiver: Receiver, content: str
) -> None:
    write_alerts(command.database, FIRST_NIGHT)
    command.sent_file.parent.mkdir()
    command.sent_file.write_text(content, encoding="utf-8")
    assert command.run() == 2
    assert receiver.paths == []
    assert command.sent_file.read_text(encoding="utf-8") == content
    assert command.err.count("\n") == 1
    assert command.err.startswith(f"alerts: {command.sent_file}: the sent file")


def test_without_a_destination_nothing_is_read_sent_or_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The nightly job runs the command; a project that set no destination still ends 0."""
    command = Alerts(tmp_path, None, capsys)
    assert command.run() == 0
    assert "nothing sent" in command.err
    assert not command.sent_file.exists()


def test_a_warehouse_without_the_mart_names_the_build(command: Alerts, receiver: Receiver) -> None:
    with duckdb.connect(str(command.database)) as connection:
        connection.execute("CREATE TABLE main.alerts (alert_key varchar, tenant_id varchar)")
    assert command.run() == 1
    assert "alerts.tenant_name" in command.err
    assert "dbt-duckdb:build" in command.err
    assert receiver.paths == []


def test_the_package_command_takes_the_spanning_variable(
    command: Alerts, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m spanning_reports alerts` outside Meltano: SPANNING_ALERTS_WEBHOOK_URL."""
    write_alerts(command.database, [SEATS])
    for name, value in command.env.items():
        if name != "FLEET_REPORT_ALERTS_WEBHOOK_URL":
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("FLEET_REPORT_ALERTS_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("SPANNING_ALERTS_WEBHOOK_URL", receiver.url)
    argv = ["alerts", "duckdb", "--sent-file", str(command.sent_file)]
    assert reports_main.main(argv) == 0
    assert events_of(receiver) == [as_event(SEATS, "opened")]


def test_the_columns_read_are_those_dbt_declares() -> None:
    """The command's column list is the mart's, in its order (transform/models/marts/)."""
    declared = yaml.safe_load((ROOT / "transform" / "models" / "marts" / "alerts.yml").read_text())
    (model,) = [model for model in declared["models"] if model["name"] == "alerts"]
    assert [column["name"] for column in model["columns"]] == list(alerts.ALERT_COLUMNS)
