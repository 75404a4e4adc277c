"""The one test driver: run the tap as its users do, read its output, judge it.

- `run_in_process` (the fast tier) runs the tap's own entry point, `tap_spanning.tap.main`,
  in the test process: the same argv, config file, environment, catalog and exit code as a
  process, over real HTTP, with stdout and stderr captured. It costs a few milliseconds
  where a process costs most of a second of importing the SDK.
- `run_tap` runs the `tap-spanning` executable to its end; `start_tap` starts it for
  tests that act while it runs (signals, a reader that goes away, a port that comes up
  late). They are for tests where the process is the point, and only tests marked
  `process` may call them (tests/conftest.py checks), so `make check` never starts one.
- Every run is checked for leaks: `key_forms` lists every spelling of every API key
  the run was given (in its config or its environment), and none may appear in
  stdout (SCHEMA, STATE, catalogs, --about), stderr (logs, tracebacks) or the BATCH
  files it wrote. `run_tap` checks when the run ends; a `start_tap` process checks in
  `communicate()`, or in `checked()` for output a test read itself, and tests/conftest.py
  fails a test that started a tap and never had its output checked.
- `assert_output_is` holds a run to the emulator's ground truth.
- Every run that exits non-zero is timed into `FAILING_EXITS`, which tests/conftest.py
  reports at the end of the session (the longest failing exit).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from spanning_emulator import DEFAULT_TENANT_ID, EmulatedTenant, FleetEmulator, expected_output
from typing_extensions import override

ADMIN_EMAIL = "admin@contoso.example"

# The most talkative level is where a header, a URL or a body is most likely to reach
# a log line: the adversarial tests run the tap at DEBUG.
DEBUG_ENV = {"TAP_SPANNING_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}

# The streams the ground truth covers, in the order the tap syncs them.
GROUND_TRUTH_STREAMS = ("users", "role_memberships", "roles")

# (label, seconds) of every run that exited non-zero: tests/conftest.py reports them.
FAILING_EXITS: list[tuple[str, float]] = []

# Shorter spellings could turn up in output by coincidence (a count, a timestamp).
_SHORTEST_FORM = 6

Config = dict[str, Any] | Literal["ENV"] | None


def new_api_key() -> str:
    """A fresh GUID-shaped key per test, so a leak grep cannot match by accident."""
    return str(uuid.uuid4())


def tap_executable() -> list[str]:
    found = shutil.which("tap-spanning", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "tap_spanning"]


# ---------------------------------------------------------------- the key's forms


def forms_of_key(api_key: object, admin_emails: Iterable[str] = (ADMIN_EMAIL,)) -> dict[str, str]:
    """Every spelling of one key that must never be printed, by name.

    A string key: the key, `email:key` and `base64(email:key)` (the Basic auth token)
    for each admin email it may be paired with, `base64(key)` and the URL-quoted key.
    The key is taken as the tap takes it, stripped of surrounding spaces (the forms of
    the stripped key are inside those of the raw one). A key that is not a string (a
    config mistake): its JSON and str() spellings, and every string inside it.
    """
    if isinstance(api_key, str):
        key = api_key.strip()
        if not key:
            return {}
        forms = {
            "key": key,
            "base64(key)": base64.b64encode(key.encode()).decode(),
            "quote(key)": quote(key, safe=""),
        }
        for email in dict.fromkeys(e.strip() for e in admin_emails if e.strip()):
            pair = f"{email}:{key}"
            suffix = "" if email == ADMIN_EMAIL else f" ({email})"
            forms[f"email:key{suffix}"] = pair
            forms[f"base64(email:key){suffix}"] = base64.b64encode(pair.encode()).decode()
    else:
        forms = {"json(key)": json.dumps(api_key), "str(key)": str(api_key)}
        if isinstance(api_key, list | dict):
            values = api_key.values() if isinstance(api_key, dict) else api_key
            for index, value in enumerate(values):
                forms.update({f"item {index} {n}": f for n, f in forms_of_key(value).items()})
    return {name: form for name, form in forms.items() if len(form) >= _SHORTEST_FORM}


def _emails(*candidates: object) -> list[str]:
    return [c for c in (*candidates, ADMIN_EMAIL) if isinstance(c, str) and c.strip()]


def _with_files(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The config with tenants_file and tenant_api_keys_file read, as the tap reads them
    (a file that is not JSON holds its keys as text)."""
    merged = dict(config)
    for setting in ("tenants", "tenant_api_keys"):
        path = config.get(f"{setting}_file")
        if isinstance(path, str) and Path(path).is_file():
            text = Path(path).read_text(encoding="utf-8", errors="replace")
            try:
                merged[setting] = json.loads(text)
            except (ValueError, RecursionError):
                merged[setting] = text
    return merged


def _keys_of_config(config: Mapping[str, Any]) -> list[tuple[str, object, list[str]]]:
    """(where, key, admin emails) of every key a config holds, wherever it sits (the files
    it names included)."""
    config = _with_files(config)
    found: list[tuple[str, object, list[str]]] = []
    if config.get("api_key") is not None:
        found.append(("api_key", config["api_key"], _emails(config.get("admin_email"))))
    entries = config.get("tenants")
    email_of: dict[str, object] = {}
    if isinstance(entries, list):
        for index, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                continue
            email_of[str(entry.get("tenant_id"))] = entry.get("admin_email")
            if entry.get("api_key") is not None:
                emails = _emails(entry.get("admin_email"))
                found.append((f"tenants[{index}].api_key", entry["api_key"], emails))
    keys = config.get("tenant_api_keys")
    if isinstance(keys, Mapping):
        for tenant_id, key in keys.items():
            emails = _emails(email_of.get(str(tenant_id)))
            found.append((f"tenant_api_keys[{tenant_id!r}]", key, emails))
    elif keys is not None:
        found.append(("tenant_api_keys", keys, _emails()))
    return found


def _keys_of_env(env: Mapping[str, str]) -> list[tuple[str, object, list[str]]]:
    """Keys passed in the environment: *_API_KEY, *_API_KEYS (a JSON object) and
    TAP_SPANNING_TENANTS (a JSON list of tenant entries)."""
    found: list[tuple[str, object, list[str]]] = []
    email = env.get("TAP_SPANNING_ADMIN_EMAIL")
    for name, value in env.items():
        if name.endswith("API_KEY"):
            found.append((f"${name}", value, _emails(email)))
        elif name.endswith("API_KEYS") or name == "TAP_SPANNING_TENANTS":
            try:
                parsed = json.loads(value)
            except ValueError:
                found.append((f"${name}", value, _emails(email)))
                continue
            wrapped = {"tenants" if name == "TAP_SPANNING_TENANTS" else "tenant_api_keys": parsed}
            if name != "TAP_SPANNING_TENANTS" and "TAP_SPANNING_TENANTS" in env:
                with contextlib.suppress(ValueError):
                    wrapped["tenants"] = json.loads(env["TAP_SPANNING_TENANTS"])
            found += [(f"${name} {where}", k, e) for where, k, e in _keys_of_config(wrapped)]
    named_files = {
        f"{setting}_file": env[variable]
        for setting in ("tenants", "tenant_api_keys")
        if (variable := f"TAP_SPANNING_{setting.upper()}_FILE") in env
    }
    if named_files:
        found += [(f"files {where}", k, e) for where, k, e in _keys_of_config(named_files)]
    return found


def key_forms(*sources: object, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every spelling of every API key in `sources` and `env`, by name ("<form> of <where>").

    A source is a config (its `api_key`, each `tenants[i].api_key`, each value of
    `tenant_api_keys`) or a key itself; `env` is the environment a run was given
    (`TAP_SPANNING_API_KEY`, `TAP_SPANNING_TENANT_API_KEYS`, any other `*_API_KEY`).
    """
    located: list[tuple[str, object, list[str]]] = []
    for source in sources:
        if source is None or source == "ENV":
            continue
        if isinstance(source, Mapping):
            located += _keys_of_config(source)
        else:
            located.append(("key", source, _emails()))
    located += _keys_of_env(env or {})
    forms: dict[str, str] = {}
    for where, key, emails in located:
        for name, form in forms_of_key(key, emails).items():
            if form not in forms.values():
                forms[f"{name} of {where}"] = form
    return forms


def leaks(text: str, forms: Mapping[str, str]) -> list[str]:
    """Names of the key forms found in `text` (never the text itself)."""
    return [name for name, form in forms.items() if form in text]


def assert_no_secrets(forms: Mapping[str, str], **outputs: str) -> None:
    """No output holds any form; the failure names the output and the form, not the text."""
    found = {name: leaks(text, forms) for name, text in outputs.items()}
    found = {name: which for name, which in found.items() if which}
    assert not found, f"key forms printed: {found}"


# ---------------------------------------------------------------- what a run printed


def parse_messages(stdout: str) -> list[dict[str, Any]]:
    """Singer messages, one a line.

    Lines are split at "\\n" only: str.splitlines() would also split at U+2028, U+0085
    and friends, which a JSON string may hold unescaped.
    """
    return [json.loads(line) for line in stdout.split("\n") if line.strip()]


@dataclass
class TapRun:
    """What one run of the tap printed, and how it ended."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    # When the run started, in milliseconds since the epoch (its sync_version is about then).
    started_ms: float = 0.0
    # records() per stream, checked and without sync_version, once.
    _stripped: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def raw_records(self, stream: str) -> list[dict[str, Any]]:
        """The records of `stream` as written."""
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def records(self, stream: str) -> list[dict[str, Any]]:
        """The records of `stream` without `sync_version`, after checking it.

        Every record of the run carries the one version of the run
        (docs/many-tenants.md): the same in every record, the version of the RECORD
        message when it has one, and a time in milliseconds within the run.
        """
        if stream not in self._stripped:
            records = self.raw_records(stream)
            if records and "sync_version" in self.schema_properties(stream):
                version = self.sync_version
                for record in records:
                    assert record.get("sync_version") == version, stream
                records = [
                    {k: v for k, v in record.items() if k != "sync_version"} for record in records
                ]
            self._stripped[stream] = records
        return [dict(record) for record in self._stripped[stream]]

    def of_tenant(self, stream: str, tenant_id: str) -> list[dict[str, Any]]:
        """`records(stream)` of one tenant."""
        return [r for r in self.records(stream) if r["tenant_id"] == tenant_id]

    def syncs(self) -> dict[str, dict[str, Any]]:
        """The run's tenant_syncs records by tenant."""
        return {r["tenant_id"]: r for r in self.records("tenant_syncs")}

    def schema_properties(self, stream: str) -> dict[str, Any]:
        for message in self.messages:
            if message["type"] == "SCHEMA" and message["stream"] == stream:
                properties: dict[str, Any] = message["schema"]["properties"]
                return properties
        return {}

    @functools.cached_property
    def sync_version(self) -> int:
        """The run's version, as its records carry it (checked against the messages)."""
        found = {
            m["record"]["sync_version"]
            for m in self.messages
            if m["type"] == "RECORD" and "sync_version" in m["record"]
        }
        assert len(found) == 1, f"one sync_version per run, found {sorted(found)[:5]}"
        version: int = found.pop()
        assert isinstance(version, int)
        assert self.started_ms - 1000 <= version <= self.started_ms + self.seconds * 1000 + 1000
        for message in self.messages:
            if message["type"] in ("RECORD", "ACTIVATE_VERSION") and "version" in message:
                assert message["version"] == version, message["type"]
        return version

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

    @property
    def non_record_stdout(self) -> str:
        """stdout without its RECORD lines (everything else: SCHEMA, STATE, text)."""
        return _non_record_lines(self.stdout)


def _non_record_lines(stdout: str) -> str:
    kept = []
    for line in stdout.split("\n"):
        try:
            message = json.loads(line)
        except ValueError:
            kept.append(line)
            continue
        if not (isinstance(message, dict) and message.get("type") == "RECORD"):
            kept.append(line)
    return "\n".join(kept)


def _written_files(config: Config) -> list[Path]:
    """The BATCH files under the config's local batch storage root, if any."""
    if not isinstance(config, dict):
        return []
    root = ((config.get("batch_config") or {}).get("storage") or {}).get("root")
    if not isinstance(root, str) or not root.startswith("file://"):
        return []
    folder = Path(urlsplit(root).path)
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _read_written(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def check_output(
    forms: Mapping[str, str],
    stdout: str | bytes,
    stderr: str | bytes,
    *,
    key_may_be_record_data: bool = False,
    written: Sequence[Path] = (),
) -> None:
    """The leak check every run goes through.

    With `key_may_be_record_data`, RECORD lines (and BATCH files, which hold records) are
    exempt: a server that puts the key in a user's data gets it back as data. Everything
    else is still checked.
    """
    out = stdout.decode("utf-8", "replace") if isinstance(stdout, bytes) else stdout
    err = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    outputs = {"stdout": _non_record_lines(out) if key_may_be_record_data else out, "stderr": err}
    if not key_may_be_record_data:
        outputs.update({f"file {p.name}": _read_written(p) for p in written})
    assert_no_secrets(forms, **outputs)


# ---------------------------------------------------------------- running the tap


def _label(label: str, args: Sequence[str]) -> str:
    if label:
        return label
    current = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    return " ".join(filter(None, [current.rpartition("::")[2] or current, *args])) or "sync"


def _command(
    config: Config, tmp_path: Path | None, args: Sequence[str], catalog: dict[str, Any] | None
) -> list[str]:
    command = tap_executable()
    if config == "ENV":
        command.append("--config=ENV")
    elif config is not None:
        assert tmp_path is not None, "a config is written to a file under tmp_path"
        config_file = tmp_path / f"config-{uuid.uuid4().hex[:8]}.json"
        config_file.write_text(json.dumps(config))
        command += ["--config", str(config_file)]
    command += list(args)
    if catalog is not None:
        assert tmp_path is not None, "a catalog is written to a file under tmp_path"
        catalog_file = tmp_path / f"catalog-{uuid.uuid4().hex[:8]}.json"
        catalog_file.write_text(json.dumps(catalog))
        command += ["--catalog", str(catalog_file)]
    return command


# Set by tests/conftest.py: may the running test start a tap process (marked `process`)?
PROCESSES_ALLOWED = [True]


def _check_process_allowed() -> None:
    assert PROCESSES_ALLOWED[0], (
        "this test starts a tap process but is not marked `process`: use run_in_process, "
        "or mark it @pytest.mark.process where the process is the point"
    )


@contextlib.contextmanager
def _as_a_process(
    argv: list[str], env: Mapping[str, str]
) -> Iterator[tuple[io.BytesIO, io.BytesIO]]:
    """The process-wide things main() reads or changes, set up and put back.

    argv, the environment, stdout and stderr (bytes underneath, as a pipe), the root
    logger's handlers and level (the SDK adds a handler per run), warnings capture, the
    excepthook and the signal handlers (the SDK installs its own).
    """
    out, err = io.BytesIO(), io.BytesIO()
    saved_env = os.environ.copy()
    saved = (sys.argv, sys.stdout, sys.stderr, sys.excepthook)
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    os.environ.update(env)
    sys.argv = argv
    wrappers = [io.TextIOWrapper(pipe, encoding="utf-8", write_through=True) for pipe in (out, err)]
    sys.stdout, sys.stderr = wrappers
    try:
        yield out, err
    finally:
        for wrapper in wrappers:
            with contextlib.suppress(ValueError):
                wrapper.flush()
                wrapper.detach()  # a wrapper that is collected closes what it wraps
        sys.argv, sys.stdout, sys.stderr, sys.excepthook = saved
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        logging.captureWarnings(False)
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler)
        os.environ.clear()
        os.environ.update(saved_env)


def run_in_process(
    config: Config,
    tmp_path: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    catalog: dict[str, Any] | None = None,
    label: str = "",
    key_may_be_record_data: bool = False,
) -> TapRun:
    """`run_tap` in the test process: `tap_spanning.tap.main()` with the same argv.

    Everything it writes (stdout, the log on stderr, BATCH files) goes through the same
    leak check, and the exit code is main()'s.
    """
    from tap_spanning.tap import main  # noqa: PLC0415  # only the fast tier imports the tap

    argv = _command(config, tmp_path, args, catalog)[len(tap_executable()) :]
    started_ms = time.time() * 1000
    started = time.monotonic()
    code: int | str | None = 0
    with _as_a_process(["tap-spanning", *argv], env or {}) as (out, err):
        try:
            main()
        except SystemExit as done:
            code = done.code
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    seconds = time.monotonic() - started
    if returncode != 0:
        FAILING_EXITS.append((_label(label, args), seconds))
    stdout = out.getvalue().decode("utf-8", "replace")
    stderr = err.getvalue().decode("utf-8", "replace")
    check_output(
        key_forms(config, env=env),
        stdout,
        stderr,
        key_may_be_record_data=key_may_be_record_data,
        written=_written_files(config),
    )
    singer = not {"--about", "--discover"} & set(args)
    messages = parse_messages(stdout) if singer else []
    return TapRun(returncode, stdout, stderr, messages, seconds, started_ms)


def run_tap(
    config: Config,
    tmp_path: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    catalog: dict[str, Any] | None = None,
    label: str = "",
    key_may_be_record_data: bool = False,
) -> TapRun:
    """Run `tap-spanning --config <file> [args]` to its end, check it leaked no key, and
    parse stdout as Singer messages (not for --about and --discover, which print text).

    `config` "ENV" runs `--config=ENV` (settings from `env`); None passes no config.
    """
    _check_process_allowed()
    command = _command(config, tmp_path, args, catalog)
    started_ms = time.time() * 1000
    started = time.monotonic()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        FAILING_EXITS.append((_label(label, args), seconds))
    check_output(
        key_forms(config, env=env),
        done.stdout,
        done.stderr,
        key_may_be_record_data=key_may_be_record_data,
        written=_written_files(config),
    )
    singer = not {"--about", "--discover"} & set(args)
    messages = parse_messages(done.stdout) if singer else []
    return TapRun(done.returncode, done.stdout, done.stderr, messages, seconds, started_ms)


class TapProcess(subprocess.Popen[Any]):
    """A tap started by `start_tap`: its output must go through the leak check.

    `communicate()` checks what it returns. A test that reads the pipes itself hands
    what it read to `checked()`, which checks it and returns it as a TapRun.
    """

    def __init__(self, command: list[str], forms: dict[str, str], label: str, **kwargs: Any):
        self.forms = forms
        self.label = label
        self.output_checked = False
        self.started_at = time.monotonic()
        self.started_ms = time.time() * 1000
        self._exit_noted = False
        super().__init__(command, **kwargs)
        STARTED.append(self)

    @override
    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        if not self._exit_noted:
            self._exit_noted = True
            if code != 0:
                FAILING_EXITS.append((self.label, time.monotonic() - self.started_at))
        return code

    @override
    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        stdout, stderr = super().communicate(input, timeout)
        self.checked(stdout or "", stderr or "", parse=False)
        return stdout, stderr

    def finish(self, timeout: float | None = None) -> TapRun:
        """Wait for the end, check everything it printed, and parse it (text mode)."""
        stdout, stderr = self.communicate(timeout=timeout)
        return self.checked(stdout, stderr)

    def checked(
        self,
        stdout: str | bytes,
        stderr: str | bytes,
        *,
        parse: bool = True,
        key_may_be_record_data: bool = False,
    ) -> TapRun:
        """The leak check on what the test read; that output as a TapRun.

        `parse=False` for partial output (a reader that stopped half-way).
        """
        check_output(self.forms, stdout, stderr, key_may_be_record_data=key_may_be_record_data)
        self.output_checked = True
        out = stdout.decode("utf-8", "replace") if isinstance(stdout, bytes) else stdout
        err = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
        code = self.returncode if self.returncode is not None else -1
        seconds = time.monotonic() - self.started_at
        messages = parse_messages(out) if parse else []
        return TapRun(code, out, err, messages, seconds, self.started_ms)


# Every process start_tap started in the current test (tests/conftest.py checks them).
STARTED: list[TapProcess] = []


def start_tap(
    config: dict[str, Any],
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    text: bool = True,
    label: str = "",
) -> TapProcess:
    """Start `tap-spanning --config <file>` with piped stdout and stderr, for tests that
    act while it runs (signals, a reader that goes away)."""
    _check_process_allowed()
    return TapProcess(
        _command(config, tmp_path, (), None),
        key_forms(config, env=env),
        _label(label, ()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=text,
        env={**os.environ, **(env or {})},
    )


# ---------------------------------------------------------------- the ground truth


def assert_output_is(
    run: TapRun,
    users: Sequence[Mapping[str, object]],
    *,
    tenant_id: str = DEFAULT_TENANT_ID,
    expected: Mapping[str, list[dict[str, object]]] | None = None,
) -> None:
    """Exit 0; every record of users, role_memberships and roles equals the emulator's
    ground truth for `users`, in order; one SCHEMA per stream.

    `expected` replaces `expected_output(users, tenant_id)` where a test has to build
    the ground truth itself (tags the emulator's table does not know).
    """
    assert run.returncode == 0, run.stderr[-3000:]
    truth = expected if expected is not None else expected_output(users, tenant_id)
    for stream in GROUND_TRUTH_STREAMS:
        assert run.records(stream) == truth[stream], f"{stream} records differ"
        assert run.count("SCHEMA", stream) == 1, f"{stream}: SCHEMA count"


# ---------------------------------------------------------------- catalogs


def discovered_catalog() -> dict[str, Any]:
    """What `tap-spanning --discover` prints, parsed: a catalog to edit and pass back."""
    run = run_in_process(None, None, "--discover")
    assert run.returncode == 0, run.stderr[-2000:]
    catalog: dict[str, Any] = json.loads(run.stdout)
    return catalog


def set_selected(catalog: dict[str, Any], stream: str, breadcrumb: list[str], on: bool) -> None:
    """Select or deselect a stream (breadcrumb []) or one of its properties."""
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == stream:
            for item in entry["metadata"]:
                if item["breadcrumb"] == breadcrumb:
                    item["metadata"]["selected"] = on


# ---------------------------------------------------------------- fleets


def assert_tenants_exact(run: TapRun, tenants: Sequence[Any]) -> None:
    """Every user and membership of each tenant, exactly, in the API's order (the
    emulator's ground truth; sync_version aside)."""
    for tenant in tenants:
        truth = expected_output(tenant.users, tenant_id=tenant.tenant_id)
        for stream in ("users", "role_memberships"):
            assert run.of_tenant(stream, tenant.tenant_id) == [
                {k: v for k, v in r.items() if k != "sync_version"} for r in truth[stream]
            ], (tenant.tenant_id, stream)


def catalog_with_backups() -> dict[str, Any]:
    """The discovered catalog with the backup histories (off by default) selected too."""
    found = discovered_catalog()
    for stream in ("backup_summaries", "user_backups"):
        set_selected(found, stream, [], True)
    return found


def fleet_config(emulator: Any, tenants: Sequence[Any], **overrides: Any) -> dict[str, Any]:
    """The config an MSP writes for a FleetEmulator's tenants: the list in the config, the
    keys in tenant_api_keys, activation on; `overrides` on top (page_size, ...)."""
    config: dict[str, Any] = {
        "tenants": [
            {
                "tenant_id": t.tenant_id,
                "admin_email": t.admin_email,
                "base_url": emulator.base_url(t.tenant_id),
            }
            for t in tenants
        ],
        "tenant_api_keys": {t.tenant_id: t.api_key for t in tenants},
        "max_retry_wait": 0.01,
        "emit_activate_version_messages": True,
    }
    config.update(overrides)
    return config


# ---------------------------------------------------------------- requests


def paths_of(requests: Sequence[Any]) -> list[str]:
    """The paths (no query) of the requests, in order."""
    return [urlsplit(r.path).path for r in requests]


def tenant_paths(emulator: FleetEmulator, tenant: EmulatedTenant) -> list[str]:
    """The paths of the requests made with `tenant`'s credentials, its key right or not.

    The emulator names the tenant of a request whose key it accepted; a refused request
    (tenant_id None) is told by its Basic user name, the tenant's own admin email.
    """
    mine = []
    for request in emulator.requests:
        token = request.headers["Authorization"].partition(" ")[2]
        email = base64.b64decode(token).decode().partition(":")[0]
        if request.tenant_id == tenant.tenant_id or (
            request.tenant_id is None and email == tenant.admin_email
        ):
            mine.append(request)
    return paths_of(mine)
