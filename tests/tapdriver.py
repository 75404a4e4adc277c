"""The one test driver: run the tap as its users do, and check what it printed.

- `run_in_process` (the fast tier) runs the tap's own entry point, `tap_spanning.tap.main`,
  in the test process: the same argv, config file, environment, catalog and exit code as a
  process, over real HTTP, with stdout and stderr captured. It costs a few milliseconds
  where a process costs most of a second of importing the SDK.
- `run_tap` runs the `tap-spanning` executable to its end; `start_tap` starts it for
  tests that act while it runs (signals, a reader that goes away, a port that comes up
  late). They are for tests where the process is the point, and only tests marked
  `process` may call them (tests/conftest.py checks), so `make check` never starts one.
- Every run is checked for leaks (tests/leaks.py): no spelling of any API key the run was
  given, in its config or its environment, may appear in stdout, stderr or the BATCH
  files it wrote. `run_tap` checks when the run ends; a `start_tap` process checks in
  `communicate()`, or in `checked()` for output a test read itself, and tests/conftest.py
  fails a test that started a tap and never had its output checked.
- A run comes back as a `TapRun` (tests/taprun.py), which reads its messages and holds
  them to the emulator's ground truth.
- Every run that exits non-zero is timed into `FAILING_EXITS`, which tests/conftest.py
  reports at the end of the session (the longest failing exit).
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from typing_extensions import override

from tests.leaks import check_output, key_forms, written_files
from tests.taprun import TapRun, parse_messages

# The most talkative level is where a header, a URL or a body is most likely to reach
# a log line: the adversarial tests run the tap at DEBUG.
DEBUG_ENV = {"TAP_SPANNING_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}

# (label, seconds) of every run that exited non-zero: tests/conftest.py reports them.
FAILING_EXITS: list[tuple[str, float]] = []

Config = dict[str, Any] | Literal["ENV"] | None


def tap_executable() -> list[str]:
    found = shutil.which("tap-spanning", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "tap_spanning"]


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
        written=written_files(config),
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
        written=written_files(config),
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
