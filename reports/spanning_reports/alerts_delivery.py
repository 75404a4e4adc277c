"""Where alert events go: a webhook (generic JSON, Slack or Microsoft Teams) and a file (JSON
lines or CSV), for the alerts command (alerts.py; docs/alerts.md, "Shapes").

A webhook's URL is its credential (anyone holding a Slack or Teams webhook URL can post to the
channel), so it is never printed: every message of this module names the webhook by scheme and
host only, and anything a library says passes through `redact` first.
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import http.client
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # typing_extensions for mypy only: no dependency of the reports at run time
    from typing_extensions import override
elif sys.version_info >= (3, 12):
    from typing import override
else:
    Method = TypeVar("Method")

    def override(method: Method) -> Method:
        return method


Event = dict[str, Any]

FORMATS = ("generic", "teams", "slack")
# Slack cuts a message's text at 40,000 characters and Teams refuses a card over 28 KB: at
# about 300 characters an event, 50 fit both. More events make more messages.
EVENTS_PER_MESSAGE = 50
TIMEOUT_SECONDS = 10.0
TRIES = 3
# The waits after the first and the second failed try; a 429's Retry-After replaces them,
# up to MAX_RETRY_WAIT_SECONDS.
RETRY_BACKOFF_SECONDS = (2.0, 5.0)
MAX_RETRY_WAIT_SECONDS = 60.0
REDACTED = "<redacted>"
# Shorter parts of a URL's path are words such as "hooks" or "services", not tokens.
SECRET_PART_MIN_LENGTH = 6


class DeliveryError(Exception):
    """The events could not be delivered; the message names no secret."""


def redact(message: str, url: str) -> str:
    """The message with the URL and each token-like part of its path and query hidden."""
    parsed = urllib.parse.urlsplit(url)
    secrets = {url, url.split("://", 1)[-1], parsed.path, parsed.query, parsed.fragment}
    if parsed.password:
        secrets.add(parsed.password)
    secrets.update(part for part in parsed.path.split("/"))
    for _, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
        secrets.add(value)
    # Longest first: a part inside a longer secret must not leave the rest of it behind.
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= SECRET_PART_MIN_LENGTH:
            message = message.replace(secret, REDACTED)
    return message


def describe(url: str) -> str:
    """scheme://host of a URL, what messages may show of a webhook."""
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.scheme}://{parsed.hostname or ''}"


def check_url(url: str) -> str | None:
    """Why the URL cannot be a webhook (never quoting it), or None."""
    try:
        parsed = urllib.parse.urlsplit(url)
        hostname = parsed.hostname
    except ValueError:
        return "is not a URL"
    if parsed.scheme not in ("http", "https") or not hostname:
        return "is not an http(s) URL with a host"
    if any(character.isspace() or ord(character) < 32 for character in url):
        return "holds a space or a control character"
    return None


def event_line(event: Mapping[str, Any]) -> str:
    """One line of a chat message: what happened, how bad, and the mart's summary."""
    what = "Opened" if event["event"] == "opened" else "Resolved"
    return f"{what} ({event['severity']}): {event['summary']}"


def slack_escape(text: str) -> str:
    """Slack's three control characters, escaped as its message format asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def headline(events: Sequence[Mapping[str, Any]]) -> str:
    opened = sum(1 for event in events if event["event"] == "opened")
    resolved = len(events) - opened
    return f"Spanning alerts: {opened} opened, {resolved} resolved"


def card_color(event: Mapping[str, Any]) -> str:
    """Green for a resolved alert, red for a critical one opened, amber for a warning."""
    if event["event"] == "resolved":
        return "Good"
    return "Attention" if event["severity"] == "critical" else "Warning"


def teams_card(events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A message holding one Adaptive Card, the shape Teams' Workflows webhooks take."""
    title = headline(events)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True}
    ]
    body.extend(
        {
            "type": "TextBlock",
            "text": event_line(event),
            "wrap": True,
            "color": card_color(event),
        }
        for event in events
    )
    return {
        "type": "message",
        "summary": title,
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }
        ],
    }


def payload(webhook_format: str, events: Sequence[Event]) -> dict[str, Any]:
    """The JSON body one message carries, in the webhook's format."""
    if webhook_format == "slack":
        lines = [headline(events), *(event_line(event) for event in events)]
        return {"text": slack_escape("\n".join(lines))}
    if webhook_format == "teams":
        return teams_card(events)
    return {"events": list(events)}


class RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer of its own: followed, a POST would become a GET elsewhere."""

    @override
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (a number or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


def pause(seconds: float) -> None:
    """The wait between two tries (a function of its own: the tests record the waits)."""
    time.sleep(seconds)


@dataclass
class Webhook:
    """Posts JSON to one URL: TRIES tries, a timeout each, waits between them."""

    url: str = field(repr=False)  # a credential
    webhook_format: str = "generic"
    timeout: float = TIMEOUT_SECONDS

    @property
    def where(self) -> str:
        return f"the {self.webhook_format} webhook at {describe(self.url)}"

    def send(self, events: Sequence[Event]) -> None:
        self.post(payload(self.webhook_format, events))

    def post(self, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        opener = urllib.request.build_opener(RefuseRedirects)
        problem = ""
        for attempt in range(1, TRIES + 1):
            wait = RETRY_BACKOFF_SECONDS[min(attempt, len(RETRY_BACKOFF_SECONDS)) - 1]
            try:
                self.post_once(opener, data)
                return
            except urllib.error.HTTPError as exc:
                status = exc.code
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                exc.close()
                problem = f"HTTP {status}"
                if status != 429 and status < 500:
                    raise DeliveryError(f"{self.where} refused the alerts: {problem}") from None
                asked = retry_after_seconds(retry_after) if status == 429 else None
                wait = wait if asked is None else asked
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # URLError and timeouts are OSErrors; the reason is redacted whatever it holds.
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                problem = redact(f"{type(exc).__name__}: {reason}", self.url)
            if attempt < TRIES:
                pause(min(wait, MAX_RETRY_WAIT_SECONDS))
        raise DeliveryError(f"{self.where} failed {TRIES} tries, the last with {problem}")

    def post_once(self, opener: urllib.request.OpenerDirector, data: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - check_url allowed http(s) only
            self.url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "spanning-reports"},
        )
        with opener.open(request, timeout=self.timeout) as response:
            response.read()


def file_kind(path: Path) -> str | None:
    """jsonl or csv from the name's ending, else None."""
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".csv": "csv"}.get(suffix)


def csv_value(value: Any) -> str:
    return "" if value is None else str(value)


def append_events(path: Path, events: Sequence[Event], columns: Sequence[str]) -> None:
    """Append the events as JSON lines, or CSV rows under one header written once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_kind(path) == "jsonl":
        with path.open("a", encoding="utf-8") as out:
            out.writelines(json.dumps(event, ensure_ascii=False) + "\n" for event in events)
        return
    header = [*columns, "event"]
    fresh = not path.exists() or path.stat().st_size == 0
    if not fresh:
        with path.open(encoding="utf-8", newline="") as existing:
            first = next(csv.reader(existing), [])
        if first != header:
            raise DeliveryError(
                f"{path}: its first line is not the alerts header ({','.join(header)}): "
                "name another --file"
            )
    with path.open("a", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        if fresh:
            writer.writerow(header)
        writer.writerows([csv_value(event.get(column)) for column in header] for event in events)
