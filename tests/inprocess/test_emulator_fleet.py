"""The fleet emulator: tenants on several loopback hosts, told apart by their credentials,
each with its own pages, faults, latency and counters; and generate_fleet.
"""

from __future__ import annotations

import math
import re
import statistics
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from urllib.parse import quote, urlsplit

import pytest
import requests
from spanning_emulator import (
    EmulatedTenant,
    FaultPlan,
    FleetEmulator,
    generate_fleet,
    generate_users,
    sort_key,
    tenant_summary,
)

from tests.emulator_helpers import (
    follow_next_links,
    get_with_auth,
)

# ------------------------------------------------------------------ a fleet of tenants

KEY_A = "11111111-1111-4111-8111-111111111111"
KEY_B = "22222222-2222-4222-8222-222222222222"
KEY_C = "33333333-3333-4333-8333-333333333333"


def _fleet_tenants(**overrides: Mapping[str, object]) -> list[EmulatedTenant]:
    tenants = [
        EmulatedTenant(
            "t1-contoso", generate_users(45, 11, "realistic"), "admin@t1.example", KEY_A
        ),
        EmulatedTenant("t2-fabrikam", generate_users(23, 12), "admin@t2.example", KEY_B),
        EmulatedTenant(
            "t3-northwind",
            generate_users(30, 13, "realistic"),
            "admin@t3.example",
            KEY_C,
            host="127.0.0.2",
        ),
    ]
    return [EmulatedTenant(**{**t.__dict__, **overrides.get(t.tenant_id, {})}) for t in tenants]


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    with FleetEmulator(_fleet_tenants()) as emu:
        yield emu


CREDENTIALS = {
    "t1-contoso": ("admin@t1.example", KEY_A),
    "t2-fabrikam": ("admin@t2.example", KEY_B),
    "t3-northwind": ("admin@t3.example", KEY_C),
}


def test_fleet_paginates_each_tenant_on_its_own_host(fleet: FleetEmulator) -> None:
    urls = {tenant_id: fleet.base_url(tenant_id) for tenant_id in CREDENTIALS}
    assert urls["t1-contoso"] == urls["t2-fabrikam"]
    assert urlsplit(urls["t1-contoso"]).hostname == "127.0.0.1"
    assert urlsplit(urls["t3-northwind"]).hostname == "127.0.0.2"
    # One port for every host (port 0: the first listener picks, the others follow).
    assert urlsplit(urls["t3-northwind"]).port == urlsplit(urls["t1-contoso"]).port
    assert fleet.base_urls == [urls["t1-contoso"], urls["t3-northwind"]]
    for tenant_id, auth in CREDENTIALS.items():
        with requests.Session() as http:
            http.auth = auth
            users, links = follow_next_links(
                http, f"{urls[tenant_id]}/external/users?size=10&status=false"
            )
        tenant = fleet.tenant(tenant_id)
        assert users == sorted(tenant.users, key=sort_key)
        assert links
        assert all(link.startswith(f"{urls[tenant_id]}/external/users?") for link in links)
    log = fleet.requests
    for tenant_id in CREDENTIALS:
        mine = [r for r in log if r.tenant_id == tenant_id]
        assert len(mine) == math.ceil(fleet.tenant(tenant_id).user_count / 10)
        assert [r.number for r in mine] == list(range(1, len(mine) + 1))
        assert {r.host for r in mine} == {urlsplit(urls[tenant_id]).hostname}
    assert [r.received_at for r in log] == sorted(r.received_at for r in log)


def test_fleet_relative_links_and_last_link() -> None:
    with FleetEmulator(_fleet_tenants(), link_style="relative", last_link="absent") as emu:
        url = f"{emu.base_url('t3-northwind')}/external/users?size=20&status=false"
        first = get_with_auth(url, CREDENTIALS["t3-northwind"]).json()
        assert first["nextLink"].startswith("/external/users?msIdOffset=")
        last = get_with_auth(
            emu.base_url("t3-northwind") + first["nextLink"], CREDENTIALS["t3-northwind"]
        )
        assert "nextLink" not in last.json()


def test_fleet_tells_tenants_apart_by_credentials() -> None:
    # Two tenants on one host with the same admin email: the key decides.
    tenants = _fleet_tenants(**{"t2-fabrikam": {"admin_email": "admin@t1.example"}})
    with FleetEmulator(tenants) as emu:
        url = f"{emu.base_url('t1-contoso')}/external/tenant"
        for key, tenant_id in ((KEY_A, "t1-contoso"), (KEY_B, "t2-fabrikam")):
            response = get_with_auth(url, ("ADMIN@T1.example", key))  # the email ignores case
            assert response.status_code == 200
            assert response.json()["users"] == emu.tenant(tenant_id).user_count
        wrong = get_with_auth(url, ("admin@t1.example", KEY_C))
        assert (wrong.status_code, wrong.json()) == (401, {"code": "Unauthorized", "message": ""})
        assert [r.tenant_id for r in emu.requests] == ["t1-contoso", "t2-fabrikam", None]


def test_fleet_keys_are_region_scoped(fleet: FleetEmulator) -> None:
    fleet.set_faults("t3-northwind", FaultPlan(at={1: "503"}))
    # t3 lives on 127.0.0.2: its credentials on 127.0.0.1 are a wrong key there.
    wrong_host = fleet.base_url("t1-contoso")
    for path in ("/external/users", "/external/tenant"):
        response = get_with_auth(wrong_host + path, CREDENTIALS["t3-northwind"])
        assert (response.status_code, response.json()) == (
            401,
            {"code": "Unauthorized", "message": ""},
        )
    # And t1's on 127.0.0.2.
    assert (
        get_with_auth(
            fleet.base_url("t3-northwind") + "/external/tenant", CREDENTIALS["t1-contoso"]
        ).status_code
        == 401
    )
    log = fleet.requests
    assert [(r.tenant_id, r.number, r.fault, r.status) for r in log] == [(None, 0, None, 401)] * 3
    assert [r.host for r in log] == ["127.0.0.1", "127.0.0.1", "127.0.0.2"]
    # None of them counted as t3's request 1: its own first request gets the fault.
    right = get_with_auth(
        fleet.base_url("t3-northwind") + "/external/tenant", CREDENTIALS["t3-northwind"]
    )
    assert right.status_code == 503
    # Unknown routes stay 404 whoever asks, as on the real host.
    assert get_with_auth(wrong_host + "/users", CREDENTIALS["t3-northwind"]).status_code == 404


def test_fleet_faults_count_each_tenants_requests(fleet: FleetEmulator) -> None:
    fleet.set_faults("t1-contoso", FaultPlan(at={2: "503"}))
    fleet.set_faults("t2-fabrikam", FaultPlan(every=3, kind="429", retry_after="4"))
    base = fleet.base_url("t1-contoso")

    def hammer(tenant_id: str, statuses: list[int]) -> None:
        with requests.Session() as http:
            http.auth = CREDENTIALS[tenant_id]
            for _ in range(6):
                statuses.append(http.get(f"{base}/external/users?size=5", timeout=5).status_code)

    results: dict[str, list[int]] = {"t1-contoso": [], "t2-fabrikam": []}
    threads = [threading.Thread(target=hammer, args=item) for item in results.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Whatever the interleaving, each tenant's plan hits its own n-th request.
    assert results["t1-contoso"] == [200, 503, 200, 200, 200, 200]
    assert results["t2-fabrikam"] == [200, 200, 429, 200, 200, 429]
    t2 = [r for r in fleet.requests if r.tenant_id == "t2-fabrikam"]
    assert [(r.number, r.fault) for r in t2 if r.fault] == [(3, "429"), (6, "429")]
    fleet.clear_requests()  # numbering restarts at 1 for every tenant
    assert fleet.requests == []
    assert get_with_auth(f"{base}/external/users", CREDENTIALS["t1-contoso"]).status_code == 200
    assert get_with_auth(f"{base}/external/users", CREDENTIALS["t1-contoso"]).status_code == 503


def test_fleet_latency_is_per_tenant() -> None:
    tenants = _fleet_tenants(**{"t1-contoso": {"latency": 0.4}})
    with FleetEmulator(tenants) as emu:
        base = emu.base_url("t1-contoso")
        started = time.monotonic()
        assert get_with_auth(f"{base}/external/tenant", CREDENTIALS["t2-fabrikam"]).ok
        fast = time.monotonic() - started
        started = time.monotonic()
        assert get_with_auth(f"{base}/external/tenant", CREDENTIALS["t1-contoso"]).ok
        slow = time.monotonic() - started
        started = time.monotonic()
        assert (
            get_with_auth(f"{base}/external/tenant", ("nobody@t1.example", KEY_A)).status_code
            == 401
        )
        unknown = time.monotonic() - started
        emu.set_latency("t1-contoso", 0.0)
        started = time.monotonic()
        assert get_with_auth(f"{base}/external/tenant", CREDENTIALS["t1-contoso"]).ok
        after = time.monotonic() - started
    assert slow >= 0.4
    assert fast < 0.3
    assert unknown < 0.3
    assert after < 0.3


def test_fleet_counters_override() -> None:
    counters: dict[str, object] = {"licenses": 40, "users": 2, "status": "suspended"}
    tenants = _fleet_tenants(**{"t2-fabrikam": {"counters": counters}})
    with FleetEmulator(tenants) as emu:
        base = emu.base_url("t1-contoso")
        served = get_with_auth(f"{base}/external/tenant", CREDENTIALS["t2-fabrikam"]).json()
        assert served == counters  # missing counters left out, unknown status kept
        computed = get_with_auth(f"{base}/external/tenant", CREDENTIALS["t1-contoso"]).json()
        users = emu.tenant("t1-contoso").users
        assigned = [u for u in users if u["assigned"] is True]
        archived = [u for u in assigned if u["isArchive"] is True]
        assert computed["users"] == len(users)
        assert computed["assigned"] == len(assigned)
        assert computed["assignedArchive"] == len(archived)
        assert computed["status"] == "paid"
        assert computed == emu.tenant("t1-contoso").served_counters() == tenant_summary(users)
        # set_users keeps the override.
        emu.set_users("t2-fabrikam", generate_users(3, 99))
        assert (
            get_with_auth(f"{base}/external/tenant", CREDENTIALS["t2-fabrikam"]).json() == counters
        )
        users_page = get_with_auth(f"{base}/external/users", CREDENTIALS["t2-fabrikam"]).json()
        assert len(users_page["users"]) == 3
        assert emu.tenant("t2-fabrikam").user_count == 3


def test_fleet_single_user_route(fleet: FleetEmulator) -> None:
    user = fleet.tenant("t3-northwind").users[4]
    upn = quote(str(user["userPrincipalName"]), safe="")
    url = f"{fleet.base_url('t3-northwind')}/external/users/{upn}"
    assert get_with_auth(url, CREDENTIALS["t3-northwind"]).json() == user
    other = fleet.tenant("t1-contoso").users[0]
    url = f"{fleet.base_url('t1-contoso')}/external/users/{quote(str(other['userPrincipalName']))}"
    assert get_with_auth(url, CREDENTIALS["t2-fabrikam"]).status_code == 404  # not t2's user


def test_fleet_validation() -> None:
    good = _fleet_tenants()
    with pytest.raises(ValueError, match="at least one"):
        FleetEmulator([])
    with pytest.raises(ValueError, match="twice"):
        FleetEmulator([good[0], good[0]])
    with pytest.raises(ValueError, match="tenant_id"):
        FleetEmulator(_fleet_tenants(**{"t1-contoso": {"tenant_id": "bad id!"}}))
    with pytest.raises(ValueError, match="loopback"):
        FleetEmulator(_fleet_tenants(**{"t1-contoso": {"host": "10.0.0.1"}}))
    with pytest.raises(ValueError, match="same admin email and key"):
        FleetEmulator(
            _fleet_tenants(**{"t2-fabrikam": {"admin_email": "ADMIN@t1.example", "api_key": KEY_A}})
        )
    with FleetEmulator(good) as emu, pytest.raises(KeyError, match="unknown tenant"):
        emu.base_url("nope")
    assert "api_key" not in repr(good[0])
    assert KEY_A not in repr(good[0])


def test_fleet_with_a_fixed_port() -> None:
    with FleetEmulator(_fleet_tenants()) as first:
        port = urlsplit(first.base_url("t1-contoso")).port
    assert port is not None
    with FleetEmulator(_fleet_tenants(), port=port) as again:
        assert {urlsplit(url).port for url in again.base_urls} == {port}
        with pytest.raises(OSError, match="in use"):
            FleetEmulator(_fleet_tenants(), port=port)


# ------------------------------------------------------------------ generate_fleet


def test_generate_fleet_is_deterministic() -> None:
    first = generate_fleet(12, seed=5, hosts=("127.0.0.1", "127.0.0.2"))
    assert first == generate_fleet(12, seed=5, hosts=("127.0.0.1", "127.0.0.2"))
    other = generate_fleet(12, seed=6, hosts=("127.0.0.1", "127.0.0.2"))
    assert [t.api_key for t in first] != [t.api_key for t in other]
    assert [t.host for t in first] == ["127.0.0.1", "127.0.0.2"] * 6


def test_generate_fleet_shape_and_size_spread() -> None:
    fleet = generate_fleet(1000, seed=3, hosts=("127.0.0.1", "127.0.0.2", "127.0.0.3"))
    sizes = [len(t.users) for t in fleet]
    median = statistics.median(sizes)
    assert 150_000 <= sum(sizes) <= 250_000
    assert max(sizes) > 10 * median
    assert 2 <= sum(size > 2000 for size in sizes) <= 30
    assert sum(size < 50 for size in sizes) >= 300
    assert sum(size <= 1 for size in sizes) >= 3
    ids = [t.tenant_id for t in fleet]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"t[0-9]{4}-[a-z0-9-]+", i) and len(i) <= 64 for i in ids)
    assert ids[0].startswith("t0001-")
    assert ids[-1].startswith("t1000-")
    assert all(t.admin_email == f"admin@{t.tenant_id}.example" for t in fleet)
    keys = [t.api_key for t in fleet]
    assert len(set(keys)) == len(keys)
    assert all(str(uuid.UUID(key)) == key for key in keys)
    assert [t.host for t in fleet[:4]] == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]
    statuses = [t.served_counters()["status"] for t in fleet]
    assert 60 <= statuses.count("trial") <= 140
    assert 5 <= statuses.count("expired") <= 60
    assert statuses.count("paid") == 1000 - statuses.count("trial") - statuses.count("expired")
    big = max(fleet, key=lambda t: len(t.users))
    assert all(str(u["userPrincipalName"]).endswith(f"@{big.tenant_id}.example") for u in big.users)
    # Users differ from tenant to tenant.
    first_ids = [t.users[0]["msId"] for t in fleet if t.users]
    assert len(set(first_ids)) == len(first_ids)
