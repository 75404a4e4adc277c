"""Run the tap as its users do (the `tap-spanning` executable) and read its output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADMIN_EMAIL = "admin@contoso.example"


def new_api_key() -> str:
    """A fresh GUID-shaped key per test, so a leak grep cannot match by accident."""
    return str(uuid.uuid4())


def tap_executable() -> list[str]:
    found = shutil.which("tap-spanning", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "tap_spanning"]


@dataclass
class TapRun:
    """What one run of the tap printed, and how it ended."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def count(self, kind: str, stream: str | None = None) -> int:
        return sum(
            1
            for m in self.messages
            if m["type"] == kind and (stream is None or m.get("stream") == stream)
        )

    def kinds(self) -> Counter[tuple[str, str | None]]:
        return Counter((m["type"], m.get("stream")) for m in self.messages)

    def last_stderr_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_tap(
    config: dict[str, Any],
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    catalog: dict[str, Any] | None = None,
) -> TapRun:
    """Run `tap-spanning --config <file> [args]` and parse stdout as Singer messages."""
    config_file = tmp_path / f"config-{uuid.uuid4().hex[:8]}.json"
    config_file.write_text(json.dumps(config))
    command = [*tap_executable(), "--config", str(config_file), *args]
    if catalog is not None:
        catalog_file = tmp_path / "catalog-in.json"
        catalog_file.write_text(json.dumps(catalog))
        command += ["--catalog", str(catalog_file)]
    full_env = {**os.environ, **(env or {})}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=full_env, check=False
    )
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return TapRun(done.returncode, done.stdout, done.stderr, messages)


def start_tap(
    config: dict[str, Any], tmp_path: Path, *, env: dict[str, str] | None = None, text: bool = True
) -> subprocess.Popen[Any]:
    """Start `tap-spanning --config <file>` with piped stdout and stderr, for tests that
    act while it runs (signals, a reader that goes away)."""
    config_file = tmp_path / f"config-{uuid.uuid4().hex[:8]}.json"
    config_file.write_text(json.dumps(config))
    return subprocess.Popen(
        [*tap_executable(), "--config", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=text,
        env={**os.environ, **(env or {})},
    )


def discovered_catalog() -> dict[str, Any]:
    """What `tap-spanning --discover` prints, parsed: a catalog to edit and pass back."""
    discovered = subprocess.run(
        [*tap_executable(), "--discover"], capture_output=True, text=True, check=True
    )
    catalog: dict[str, Any] = json.loads(discovered.stdout)
    return catalog


def set_selected(catalog: dict[str, Any], stream: str, breadcrumb: list[str], on: bool) -> None:
    """Select or deselect a stream (breadcrumb []) or one of its properties."""
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == stream:
            for item in entry["metadata"]:
                if item["breadcrumb"] == breadcrumb:
                    item["metadata"]["selected"] = on


def strip_descriptions(roles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Roles as the emulator's expected output has them: id and name only."""
    return [{"id": role["id"], "name": role["name"]} for role in roles]
