"""A webhook on loopback for the alert command's tests: it records each POST's JSON body and
answers 200, or 500 while told to fail.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import override


class Receiver:
    """A loopback webhook: records each POST's JSON; answers 500 while `failing`."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.failing = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                if receiver.failing:
                    self.send_response(500)
                else:
                    receiver.bodies.append(body)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            @override
            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/alerts-0123456789"

    def take(self) -> list[tuple[str, str]]:
        """(alert_key, event) of every event received since the last take."""
        events = [(e["alert_key"], e["event"]) for body in self.bodies for e in body["events"]]
        self.bodies.clear()
        return events

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
