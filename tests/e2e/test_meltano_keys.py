"""Through Meltano, no key is ever shown, and a failing tenant is an error (docs/many-tenants.md).

Real Meltano 4.4.1 runs in a scratch copy of the project (the `scratch` fixture of
tests/first_hour.py: its own meltano.yml, .env and system database, on this project's
installed plugins), against a FleetEmulator:

- keys inline in the `tenants` entries of meltano.yml, or in `TAP_SPANNING_TENANT_API_KEYS`
  in .env (the two places the README names): `meltano config list` (with and without
  `--all`) and `meltano config print` (json and env) print no form of any key. `tenants` is
  `sensitive`, so Meltano hides the whole list; `tenant_api_keys` always was.
- a `TAP_SPANNING_TENANT_API_KEYS` in .env without its closing brace: `meltano run` fails
  with the tap's one line naming `tenant_api_keys`, and no key anywhere in its output
  (`tenant_api_keys` is declared `kind: string`, so Meltano never parses it itself; as
  `object` its parse error printed the whole text).
- a fleet run in which one tenant is refused (`failure_mode` isolate): Meltano's log shows
  the tap's failure line at `[error    ]` (the `structured-logging` capability), not
  `[info     ]`.

And the two paths that structured logging and a text map opened: a well-formed map in
.env, which Meltano passes as text, syncs every tenant; an unexpected exception holding a
key is rendered by Meltano's structured log without the key.

`meltano invoke --dump=config` and `meltano invoke --print-var` print the resolved config
and variables, keys included, whatever is sensitive: debugging commands that show what the
plugin is given, by design; `meltano config --unsafe ...` is the explicit opt-in. None of
them is tested here.

Each test fails with the meltano.yml of before (tenants not sensitive, tenant_api_keys an
object, no structured-logging): MELTANO_YML is the file copied into the scratch project.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from spanning_emulator import EmulatedTenant, FleetEmulator, expected_output

from tests.first_hour import Ran, base_env, meltano, scratch
from tests.leaks import assert_no_secrets, key_forms
from tests.named_tenants import named_tenants, serving

__all__ = ["scratch"]  # the fixture used here

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[2]
MELTANO_YML = PROJECT / "meltano.yml"  # copied into each scratch project
ERROR = re.compile(r"\[error\s*\] tap-spanning\s")
INFO = re.compile(r"\[info\s*\] tap-spanning\s")


def fleet_tenants() -> list[EmulatedTenant]:
    return named_tenants(
        (("acme", 30, 41, "127.0.0.1"), ("globex", 20, 42, "127.0.0.2")),
        "{name}-key-{seed:04d}-7f3a-41c2-9e0d-5b8c1a2e4f60",
    )


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    yield from serving(fleet_tenants())


def entry(fleet: FleetEmulator, tenant: EmulatedTenant, **more: str) -> dict[str, str]:
    return {
        "tenant_id": tenant.tenant_id,
        "admin_email": tenant.admin_email,
        "base_url": fleet.base_url(tenant.tenant_id),
        **more,
    }


def use_fleet_config(
    project: Path, config: Mapping[str, Any], dotenv: str = "", executable: Path | None = None
) -> None:
    """MELTANO_YML in the scratch project, tap-spanning configured with `config` (in place of
    the demo's one-tenant config) and `dotenv` as its .env."""
    data = yaml.safe_load(MELTANO_YML.read_text(encoding="utf-8"))
    (tap,) = [p for p in data["plugins"]["extractors"] if p["name"] == "tap-spanning"]
    tap["config"] = {"max_retry_wait": "0.01", **config}
    if executable is not None:
        tap["executable"] = str(executable)
    (project / "meltano.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    (project / ".env").write_text(dotenv)


def keys_of(fleet: FleetEmulator) -> dict[str, str]:
    """Every form of every tenant's key, each with its tenant's admin email."""
    return key_forms(
        {
            "tenants": [
                {"tenant_id": t.tenant_id, "admin_email": t.admin_email} for t in fleet.tenants
            ],
            "tenant_api_keys": {t.tenant_id: t.api_key for t in fleet.tenants},
        }
    )


def meltano_all(
    project: Path, env: Mapping[str, str], commands: Sequence[Sequence[str]]
) -> list[Ran]:
    """The commands side by side, each with a system database of its own."""

    def one(index: int, args: Sequence[str]) -> Ran:
        own = {**env, "MELTANO_DATABASE_URI": f"sqlite:///{project.parent / f'meltano-{index}.db'}"}
        return meltano(project, own, *args)

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(one, range(len(commands)), commands))


def test_no_config_command_prints_a_key(scratch: Path, fleet: FleetEmulator) -> None:
    acme, globex = fleet.tenants
    # acme's key inline in its entry, globex's in .env: both places the README names.
    use_fleet_config(
        scratch,
        {"tenants": [entry(fleet, acme, api_key=acme.api_key), entry(fleet, globex)]},
        dotenv=f"TAP_SPANNING_TENANT_API_KEYS='{json.dumps({globex.tenant_id: globex.api_key})}'\n",
    )
    commands = [
        ("config", "list", "tap-spanning"),
        ("config", "list", "tap-spanning", "--all"),
        ("config", "print", "tap-spanning"),
        ("config", "print", "tap-spanning", "--format=env"),
    ]
    ran = meltano_all(scratch, base_env(), commands)
    for done in ran:
        done.ok()
    assert_no_secrets(keys_of(fleet), **{done.what: done.output for done in ran})
    listed, listed_all, printed, printed_env = ran
    # Each saw both settings, hidden whole.
    for shown in (listed, listed_all):
        assert re.search(r"^tenants .*current value: \(redacted\)", shown.stdout, re.M), (
            shown.stdout
        )
        assert re.search(r"^tenant_api_keys .*current value: \(redacted\)", shown.stdout, re.M)
    printed_config = json.loads(printed.stdout)
    assert printed_config["tenants"] == printed_config["tenant_api_keys"] == "*****"
    assert "TAP_SPANNING_TENANTS='*****'" in printed_env.stdout
    assert "TAP_SPANNING_TENANT_API_KEYS='*****'" in printed_env.stdout


def test_a_malformed_keys_map_fails_in_one_line_that_shows_no_key(
    scratch: Path, fleet: FleetEmulator
) -> None:
    keys = json.dumps({t.tenant_id: t.api_key for t in fleet.tenants})
    assert keys.endswith("}")
    use_fleet_config(
        scratch,
        {"tenants": [entry(fleet, tenant) for tenant in fleet.tenants]},
        dotenv=f"TAP_SPANNING_TENANT_API_KEYS='{keys[:-1]}'\n",  # no closing brace
    )
    done = meltano(scratch, base_env(), "run", "tap-spanning", "target-jsonl")
    assert done.returncode != 0, done.tail()
    assert_no_secrets(keys_of(fleet), output=done.output)
    reasons = [line for line in done.output.splitlines() if "tenant_api_keys" in line]
    assert len(reasons) == 1, done.tail()
    assert ERROR.search(reasons[0]), reasons[0]
    assert "tenant_api_keys is not valid JSON" in reasons[0], reasons[0]
    assert len(done.output.splitlines()) < 40, done.tail()  # no traceback
    assert not (scratch / "output").exists(), "records were written"
    assert not any(request.status == 200 for request in fleet.requests)


def test_a_well_formed_keys_map_in_dotenv_syncs_every_tenant(
    scratch: Path, fleet: FleetEmulator
) -> None:
    """The README's setup: tenants in meltano.yml, their keys in .env."""
    keys = json.dumps({t.tenant_id: t.api_key for t in fleet.tenants})
    use_fleet_config(
        scratch,
        {"tenants": [entry(fleet, tenant) for tenant in fleet.tenants]},
        dotenv=f"TAP_SPANNING_TENANT_API_KEYS='{keys}'\n",
    )
    done = meltano(scratch, base_env(), "run", "tap-spanning", "target-jsonl")
    assert_no_secrets(keys_of(fleet), output=done.output)
    done.ok()
    assert landed_users(scratch) == expected_users(*fleet.tenants)


def landed_users(project: Path) -> set[str]:
    users = (project / "output" / "jsonl" / "users.jsonl").read_text().splitlines()
    return {json.loads(line)["msId"] for line in users}


def expected_users(*tenants: EmulatedTenant) -> set[str]:
    return {
        str(user["msId"])
        for tenant in tenants
        for user in expected_output(tenant.users, tenant_id=tenant.tenant_id)["users"]
    }


def test_a_failing_tenant_is_an_error_in_meltanos_log(scratch: Path, fleet: FleetEmulator) -> None:
    acme, globex = fleet.tenants
    refused = "wrong-key-0000-4c1d-8e2f-3a9b7c6d5e4f"
    tenants = [entry(fleet, acme, api_key=acme.api_key), entry(fleet, globex, api_key=refused)]
    use_fleet_config(scratch, {"tenants": tenants, "failure_mode": "isolate"})
    done = meltano(scratch, base_env(), "run", "tap-spanning", "target-jsonl")
    assert done.returncode != 0, done.tail()
    forms = key_forms(
        {"tenants": tenants}, {"tenants": [entry(fleet, globex, api_key=globex.api_key)]}
    )
    assert_no_secrets(forms, output=done.output)
    summary = "1 of 2 tenants failed: globex (credentials refused)"
    lines = [line for line in done.output.splitlines() if summary in line]
    assert len(lines) == 1, done.tail()
    assert ERROR.search(lines[0]), f"not an error in Meltano's log: {lines[0]}"
    refusals = [line for line in done.output.splitlines() if "Tenant globex failed" in line]
    assert refusals, done.tail()
    assert all(ERROR.search(line) for line in refusals), refusals
    # Every line at an error level is shown as one: the tap's failures are not mere info.
    assert not any(INFO.search(line) and "failed" in line for line in done.output.splitlines())
    assert landed_users(scratch) == expected_users(acme)  # acme completed alone


# A bug of the tap's, once the keys are known: an exception whose text holds them.
UNEXPECTED_EXCEPTION = """#!{python}
import json

import tap_spanning.tap


def sync_all(self):
    raise RuntimeError("unexpected: " + json.dumps(self.config["tenants"]))


tap_spanning.tap.TapSpanning.sync_all = sync_all
tap_spanning.tap.main()
"""


def test_an_unexpected_exception_shows_no_key_in_meltanos_log(
    scratch: Path, fleet: FleetEmulator
) -> None:
    python = PROJECT / ".meltano" / "extractors" / "tap-spanning" / "venv" / "bin" / "python"
    executable = scratch.parent / "tap-spanning-with-a-bug"
    executable.write_text(UNEXPECTED_EXCEPTION.format(python=python))
    executable.chmod(0o755)
    tenants = [entry(fleet, tenant, api_key=tenant.api_key) for tenant in fleet.tenants]
    use_fleet_config(scratch, {"tenants": tenants}, executable=executable)
    done = meltano(scratch, base_env(), "invoke", "tap-spanning")
    assert done.returncode != 0, done.tail()
    assert "unexpected: " in done.output, done.tail()
    assert_no_secrets(keys_of(fleet), output=done.output)
