"""The leak check every run of the tap goes through: no spelling of any API key it was given
may appear in what it printed or wrote.

`key_forms` lists every spelling of every key a run was given (in its config, the files its
config names, or its environment); `check_output` holds stdout (SCHEMA, STATE, catalogs,
--about), stderr (logs, tracebacks) and the BATCH files the run wrote to them, and its failure
names the output and the form, never the text. tests/tapdriver.py calls it on every run.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

ADMIN_EMAIL = "admin@contoso.example"

# Shorter spellings could turn up in output by coincidence (a count, a timestamp).
_SHORTEST_FORM = 6


def new_api_key() -> str:
    """A fresh GUID-shaped key per test, so a leak grep cannot match by accident."""
    return str(uuid.uuid4())


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


# ---------------------------------------------------------------- what a run printed and wrote


def non_record_lines(stdout: str) -> str:
    """stdout without its RECORD lines (everything else: SCHEMA, STATE, text)."""
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


def written_files(config: object) -> list[Path]:
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
    outputs = {"stdout": non_record_lines(out) if key_may_be_record_data else out, "stderr": err}
    if not key_may_be_record_data:
        outputs.update({f"file {p.name}": _read_written(p) for p in written})
    assert_no_secrets(forms, **outputs)
