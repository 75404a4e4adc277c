"""Profile the tap's hot path and say where the time per user goes.

`python -m bench.profile [--users 100000] [--page-size 1000] [--sampler S] [--out DIR]`
runs the tap (`python -m tap_spanning --config ...`) under a profiler against the
bench emulator (its own process), into the same counting null sink as the bench,
then prints a Markdown report:

- self time grouped by what it is spent on (HTTP + JSON parse, record building,
  the SDK's per-record steps, serialisation, stdout writes, metrics, logging, ...).
  Built-in and generic stdlib functions (dict.copy, datetime.now, re, copy, ...)
  are charged to the group of the code that called them;
- inclusive time of the steps of the per-record path (nested steps overlap);
- the top functions by self and by inclusive time.

Samplers:
- `cprofile` (default; stdlib): exact call counts, but it adds a fixed cost to
  every Python call, so it inflates code that makes many small calls (the SDK's
  per-record path) against C code (JSON, socket reads, msgspec);
- `py-spy` (if installed: `pip install py-spy`): a sampling profiler that leaves
  the tap at nearly full speed, so its shares are the truer ones; no call counts.

Read the shares as a map; measure gains with `python -m bench`.
"""

from __future__ import annotations

import argparse
import json
import pstats
import re
import shutil
import sys
import sysconfig
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.emulator import Emulator
from bench.measure import run_measured

Func = tuple[str, int, str]
SAMPLERS = ("cprofile", "py-spy")

_STDLIB = sysconfig.get_paths()["stdlib"]

_WRITER_FUNCTIONS = frozenset(
    {"write_message", "format_message", "serialize_message", "serialize_jsonl", "write_record"}
)
_CHILD_FUNCTIONS = frozenset({"_sync_memberships", "write_page", "finish_run"})
_RECORD_FUNCTIONS = frozenset({"parse_response", "_page_users", "_note_unknown_tags"})
# (substring of the file path, function names or None for all, group), first match wins.
_RULES: tuple[tuple[str, frozenset[str] | None, str], ...] = (
    ("/tap_spanning/records.py", None, "record building (tap)"),
    ("/tap_spanning/roles.py", None, "record building (tap)"),
    ("/tap_spanning/streams.py", _RECORD_FUNCTIONS, "record building (tap)"),
    ("/tap_spanning/streams.py", _CHILD_FUNCTIONS, "child sync (tap glue)"),
    ("/tap_spanning/client.py", None, "HTTP + JSON parse"),
    ("/tap_spanning/urls.py", None, "HTTP + JSON parse"),
    ("/tap_spanning/", _WRITER_FUNCTIONS, "SDK: serialise + write"),
    ("/tap_spanning/", None, "tap: other (stream overrides, setup)"),
    ("/json/decoder.py", None, "HTTP + JSON parse"),
    ("/simplejson/decoder.py", None, "HTTP + JSON parse"),
    ("/simplejson/scanner.py", None, "HTTP + JSON parse"),
    ("/json/__init__.py", frozenset({"loads", "load"}), "HTTP + JSON parse"),
    ("/simplejson/__init__.py", frozenset({"loads", "load"}), "HTTP + JSON parse"),
    ("/requests/", None, "HTTP + JSON parse"),
    ("/urllib3/", None, "HTTP + JSON parse"),
    ("/http/client.py", None, "HTTP + JSON parse"),
    ("/socket.py", None, "HTTP + JSON parse"),
    ("/email/", None, "HTTP + JSON parse"),
    ("/urllib/parse.py", None, "HTTP + JSON parse"),
    ("/backoff/", None, "HTTP + JSON parse"),
    ("/singer_sdk/streams/rest.py", None, "HTTP + JSON parse"),
    ("/singer_sdk/pagination.py", None, "HTTP + JSON parse"),
    ("/singer_sdk/helpers/_typing.py", None, "SDK: conform"),
    ("/singer_sdk/helpers/_conformers.py", None, "SDK: conform"),
    ("/singer_sdk/helpers/conform.py", None, "SDK: conform"),
    ("/singer_sdk/mapper.py", None, "SDK: stream map transform"),
    ("/singer_sdk/helpers/_catalog.py", None, "SDK: pop_deselected_record_properties"),
    ("/singer_sdk/helpers/_flattening.py", None, "SDK: stream map transform"),
    ("/singer_sdk/singerlib/encoding/simple.py", _WRITER_FUNCTIONS, "SDK: serialise + write"),
    ("/singer_sdk/singerlib/encoding/base.py", None, "SDK: serialise + write"),
    ("/singer_sdk/contrib/msgspec.py", None, "SDK: serialise + write"),
    ("/singer_sdk/singerlib/json.py", None, "SDK: serialise + write"),
    ("/singer_sdk/plugin_base.py", frozenset({"write_message"}), "SDK: serialise + write"),
    ("/simplejson/", None, "SDK: serialise + write"),
    ("/json/", None, "SDK: serialise + write"),
    ("/msgspec/", None, "SDK: serialise + write"),
    ("/singer_sdk/singerlib/", None, "SDK: message construction"),
    ("/singer_sdk/helpers/_util.py", None, "SDK: message construction"),
    ("/singer_sdk/metrics.py", None, "SDK: metrics"),
    ("/logging/", None, "logging"),
    ("importlib", None, "startup (imports)"),
    ("<frozen", None, "startup (imports)"),
    ("/singer_sdk/", None, "SDK: stream loop (core, state)"),
)
# Built-ins charged by name whatever calls them.
_BUILTIN_RULES: tuple[tuple[str, str], ...] = (
    ("of '_io.", "stdout write"),
    ("of 'msgspec.", "SDK: serialise + write"),
    ("of '_ssl.", "HTTP + JSON parse"),
    ("of '_socket.", "HTTP + JSON parse"),
    ("<built-in method marshal.", "startup (imports)"),
    ("<built-in method builtins.compile", "startup (imports)"),
    ("<built-in method _imp.", "startup (imports)"),
    ("<built-in method posix.", "startup (imports)"),
)
_GROUP_ORDER = (
    "HTTP + JSON parse",
    "record building (tap)",
    "child sync (tap glue)",
    "tap: other (stream overrides, setup)",
    "SDK: stream loop (core, state)",
    "SDK: pop_deselected_record_properties",
    "SDK: conform",
    "SDK: stream map transform",
    "SDK: message construction",
    "SDK: serialise + write",
    "stdout write",
    "SDK: metrics",
    "logging",
    "startup (imports)",
    "other (third-party)",
    "other (unattributed)",
)
# Steps of the per-record path: inclusive time (they nest, so they overlap).
_STEPS: tuple[tuple[str, str, str], ...] = (
    ("whole sync of users (+ child)", "singer_sdk/streams/core.py", "sync"),
    ("HTTP request (requests, retries)", "singer_sdk/streams/rest.py", "_request"),
    ("validate_response (JSON parse, page shape)", "tap_spanning/client.py", "validate_response"),
    ("UsersStream.parse_response (records)", "tap_spanning/streams.py", "parse_response"),
    ("  user_record (one user)", "tap_spanning/records.py", "user_record"),
    ("  child sync per page", "tap_spanning/streams.py", "_sync_memberships"),
    ("_write_record_message (per record)", "singer_sdk/streams/core.py", "_write_record_message"),
    (
        "  pop_deselected_record_properties",
        "singer_sdk/helpers/_catalog.py",
        "pop_deselected_record_properties",
    ),
    ("  conform_record_data_types", "singer_sdk/helpers/_typing.py", "conform_record_data_types"),
    ("  stream map transform", "singer_sdk/mapper.py", "transform"),
    ("  utc_now", "singer_sdk/helpers/_util.py", "utc_now"),
    ("  RecordMessage.__init__", "singer_sdk/singerlib/encoding/simple.py", "__init__"),
    ("  Tap.write_message", "singer_sdk/plugin_base.py", "write_message"),
    ("    serialise (format_message)", "singer_sdk/singerlib/encoding/base.py", "format_message"),
    ("metrics: counter increment", "singer_sdk/metrics.py", "increment"),
    ("_increment_stream_state", "singer_sdk/streams/core.py", "_increment_stream_state"),
    ("post_process", "singer_sdk/streams/core.py", "post_process"),
    ("_check_max_record_limit", "singer_sdk/streams/core.py", "_check_max_record_limit"),
)


@dataclass
class Profile:
    """What a report shows, whichever profiler measured it."""

    sampler: str
    total_seconds: float
    groups: dict[str, float]
    # (title, calls or None, inclusive seconds)
    steps: list[tuple[str, int | None, float]] = field(default_factory=list)
    # (function, calls or None, self seconds, inclusive seconds)
    top_self: list[tuple[str, int | None, float, float]] = field(default_factory=list)
    top_inclusive: list[tuple[str, int | None, float, float]] = field(default_factory=list)


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", _STDLIB + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _is_stdlib(filename: str) -> bool:
    if filename.startswith("/"):
        return filename.startswith(_STDLIB) and "site-packages" not in filename
    # py-spy's paths are relative to sys.path: judge by the top-level module.
    top = filename.split("/", 1)[0].removesuffix(".py")
    return top in sys.stdlib_module_names or filename.startswith("<")


def classify(filename: str, name: str) -> str | None:
    """The group of a function by itself, or None if it is charged to its callers."""
    if filename == "~":  # a cProfile built-in
        for marker, group in _BUILTIN_RULES:
            if marker in name:
                return group
        return None
    path = filename if filename.startswith(("/", "<")) else "/" + filename
    for substring, names, group in _RULES:
        if substring in path and (names is None or name in names):
            return group
    if _is_stdlib(filename):
        return None
    return "other (third-party)"


# ---------------------------------------------------------------- cProfile


def _label(func: Func) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    return f"{_short_path(filename)}:{line}({name})"


def _cprofile_groups(stats: pstats.Stats) -> dict[str, float]:
    """Self time per group; generic functions are split over their callers' groups."""
    table = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = defaultdict(float)

    def charge(func: Func, seconds: float, depth: int) -> None:
        group = classify(func[0], func[2])
        if group is not None:
            totals[group] += seconds
            return
        callers = table.get(func, (0, 0, 0.0, 0.0, {}))[4]
        # An edge's third field is the callee's self time spent on that caller's calls.
        weights = {caller: edge[2] for caller, edge in callers.items()}
        total_weight = sum(weights.values())
        if total_weight <= 0:
            weights = {caller: float(edge[1]) for caller, edge in callers.items()}
            total_weight = sum(weights.values())
        if depth >= 6 or not callers or total_weight <= 0:
            totals["other (unattributed)"] += seconds
            return
        for caller, weight in weights.items():
            charge(caller, seconds * weight / total_weight, depth + 1)

    for func, (_, _, self_time, _, _) in table.items():
        if self_time > 0:
            charge(func, self_time, 0)
    return dict(totals)


def read_cprofile(prof_path: Path, top: int) -> Profile:
    stats = pstats.Stats(str(prof_path))
    table: dict[Func, tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    steps: list[tuple[str, int | None, float]] = []
    for title, path_part, name in _STEPS:
        rows = [row for func, row in table.items() if func[2] == name and path_part in func[0]]
        if rows:
            steps.append((title, sum(row[1] for row in rows), sum(row[3] for row in rows)))

    def ranked(index: int) -> list[tuple[str, int | None, float, float]]:
        items = sorted(table.items(), key=lambda item: float(item[1][index]), reverse=True)
        return [(_label(func), row[1], row[2], row[3]) for func, row in items[:top]]

    return Profile(
        sampler="cProfile",
        total_seconds=float(stats.total_tt),  # type: ignore[attr-defined]
        groups=_cprofile_groups(stats),
        steps=steps,
        top_self=ranked(2),
        top_inclusive=ranked(3),
    )


# ---------------------------------------------------------------- py-spy

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _frames(stack: str) -> list[tuple[str, str]]:
    """(file, function) per frame of a collapsed stack, outermost first."""
    found: list[tuple[str, str]] = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame)
        if match is None:
            found.append(("?", frame))
        else:
            # py-spy qualifies methods (`Stream.sync`); the rules use bare names.
            name = match["name"]
            bare = name if name.endswith(">") else name.rsplit(".", 1)[-1]
            found.append((match["file"], bare))
    return found


def read_pyspy(raw_path: Path, rate: int, top: int) -> Profile:
    """Collapsed stacks (`py-spy record -f raw`): each sample is 1/rate seconds."""
    groups: Counter[str] = Counter()
    self_samples: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    steps: Counter[str] = Counter()
    total = 0
    for line in raw_path.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = _frames(stack)
        # Self time goes to the innermost frame that has a group of its own.
        group = "other (unattributed)"
        for filename, name in reversed(frames):
            found = classify(filename, name)
            if found is not None:
                group = found
                break
        groups[group] += count
        self_samples[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        for title, path_part, name in _STEPS:
            if any(n == name and path_part in f for f, n in frames):
                steps[title] += count
    seconds = 1.0 / rate

    def ranked(counter: Counter[tuple[str, str]]) -> list[tuple[str, int | None, float, float]]:
        return [
            (f"{f}({n})", None, self_samples[(f, n)] * seconds, inclusive[(f, n)] * seconds)
            for (f, n), _ in counter.most_common(top)
        ]

    return Profile(
        sampler=f"py-spy at {rate} Hz",
        total_seconds=total * seconds,
        groups={group: count * seconds for group, count in groups.items()},
        steps=[(title, None, steps[title] * seconds) for title, _, _ in _STEPS if steps[title]],
        top_self=ranked(self_samples),
        top_inclusive=ranked(inclusive),
    )


# ---------------------------------------------------------------- report


def render(profile: Profile, users: int, wall: float, cpu: float, records: int) -> str:
    total = profile.total_seconds or 1.0
    per_user = 1e6 / users
    lines = [
        f"Profile of the tap ({profile.sampler}) at {users:,} users, {records:,} records: "
        f"{wall:.2f} s wall, {cpu:.2f} s CPU under the profiler; profiled time "
        f"{profile.total_seconds:.2f} s ({profile.total_seconds * per_user:.1f} us per user).",
        "",
        "#### Self time by group (built-ins and generic stdlib charged to their callers)",
        "",
        "| group | seconds | share | us per user |",
        "|---|---:|---:|---:|",
    ]
    groups = profile.groups
    ordered = [g for g in _GROUP_ORDER if g in groups] + sorted(set(groups) - set(_GROUP_ORDER))
    for group in ordered:
        seconds = groups[group]
        lines.append(
            f"| {group} | {seconds:.2f} | {seconds / total:.1%} | {seconds * per_user:.1f} |"
        )
    lines += [
        "",
        "#### Steps of the per-record path (inclusive time; nested steps overlap)",
        "",
        "| step | calls | seconds | share | us per user |",
        "|---|---:|---:|---:|---:|",
    ]
    for title, calls, seconds in profile.steps:
        calls_text = f"{calls:,}" if calls is not None else "-"
        lines.append(
            f"| {title} | {calls_text} | {seconds:.2f} | {seconds / total:.1%} "
            f"| {seconds * per_user:.1f} |"
        )
    if profile.sampler.startswith("py-spy"):
        lines += [
            "",
            "py-spy sees Python frames only: time in a C call (a stdout write, the C JSON "
            "encoder, a socket read) is the self time of the Python function that made the "
            "call, e.g. a writer's `write_message` self time is mostly its stdout write.",
        ]
    for heading, rows in (("self", profile.top_self), ("inclusive", profile.top_inclusive)):
        lines += [
            "",
            f"#### Top {len(rows)} functions by {heading} time",
            "",
            "| function | calls | self s | inclusive s |",
            "|---|---:|---:|---:|",
        ]
        for label, calls, self_seconds, inclusive_seconds in rows:
            calls_text = f"{calls:,}" if calls is not None else "-"
            lines.append(
                f"| `{label}` | {calls_text} | {self_seconds:.2f} | {inclusive_seconds:.2f} |"
            )
    return "\n".join(lines) + "\n"


def profile_tap(
    users: int,
    page_size: int,
    *,
    seed: int = 1,
    out_dir: Path | None = None,
    top: int = 25,
    sampler: str = "cprofile",
    rate: int = 250,
    module: str = "tap_spanning",
) -> str:
    """Run the tap under a profiler against a fresh emulator; return the Markdown report."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}")
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if sampler == "py-spy" and py_spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy (or use --sampler cprofile)")
    with tempfile.TemporaryDirectory(prefix="spanning-profile-") as tmp:
        workdir = out_dir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        output = workdir / ("tap.prof" if sampler == "cprofile" else "tap.pyspy.txt")
        tap = [sys.executable, "-m", module]
        if sampler == "cprofile":
            command = [sys.executable, "-m", "cProfile", "-o", str(output), "-m", module]
        else:
            assert py_spy is not None
            command = [py_spy, "record", "-f", "raw", "-r", str(rate)]
            command += ["-o", str(output), "--"]
            command += tap
        with Emulator(users, seed=seed) as emulator:
            config = workdir / "config.json"
            config.write_text(json.dumps(emulator.tap_config(page_size)))
            # Not from the repository: `-m` must import what PYTHONPATH says.
            result = run_measured(
                f"tap ({sampler})", [*command, "--config", str(config)], cwd=workdir
            )
        if result.returncode != 0:
            raise SystemExit(
                f"the profiled tap failed ({result.returncode}):\n{result.stderr_tail}"
            )
        profile = (
            read_cprofile(output, top) if sampler == "cprofile" else (read_pyspy(output, rate, top))
        )
        text = render(
            profile, users, result.wall_seconds, result.cpu_seconds, result.counts.total_records
        )
        if out_dir is not None:
            (workdir / f"profile-{sampler}.md").write_text(text)
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sampler", choices=SAMPLERS, default="cprofile")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25, help="rows in the top-N tables")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="keep the raw profile and the report here"
    )
    parser.add_argument(
        "--report-only",
        type=Path,
        metavar="FILE",
        help="just report on an existing tap.prof or py-spy raw file (users from --users)",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        is_prof = args.report_only.suffix == ".prof"
        profile = (
            read_cprofile(args.report_only, args.top)
            if is_prof
            else read_pyspy(args.report_only, args.rate, args.top)
        )
        print(render(profile, args.users, 0.0, 0.0, 0))
        return 0
    print(
        profile_tap(
            args.users,
            args.page_size,
            seed=args.seed,
            out_dir=args.out,
            top=args.top,
            sampler=args.sampler,
            rate=args.rate,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
