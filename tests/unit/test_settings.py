"""Unit tests of the settings rules and the URL rules that keep credentials home."""

from __future__ import annotations

from typing import Any

import pytest

from tap_spanning.settings import SettingsError, resolve_settings
from tap_spanning.urls import Origin, UrlError, parse_base_url, resolve_next_link

US = "https://o365-api-us.spanningbackup.com"
BASE = {"admin_email": "admin@contoso.example", "api_key": "k-e-y"}


def errors_of(config: dict[str, Any]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        resolve_settings(config)
    return caught.value.errors


@pytest.mark.parametrize(
    "base_url",
    [
        US,
        f"{US}/",
        f"{US}/external",
        f"{US}/external/",
        "http://127.0.0.1:8765",
        "http://localhost",
        "http://[::1]:9000/external",
        "https://127.0.0.2:1",
    ],
)
def test_accepted_base_urls(base_url: str) -> None:
    parse_base_url(base_url)


@pytest.mark.parametrize(
    ("base_url", "says"),
    [
        ("http://o365-api-us.spanningbackup.com", "https"),
        ("https://o365-api-us.spanningbackup.com:8443", "https"),
        ("https://o365-api-zz.spanningbackup.com", "not a Spanning API host"),
        ("https://evil.example", "not a Spanning API host"),
        ("https://o365-api-us.spanningbackup.com.evil.example", "not a Spanning API host"),
        ("https://127.0.0.1.nip.io", "not a Spanning API host"),
        ("https://10.0.0.1", "not a Spanning API host"),
        (f"{US}/external/users", "path"),
        (f"{US}/api", "path"),
        (f"{US}?x=1", "path"),
        ("https://admin:key@o365-api-us.spanningbackup.com", "user name or password"),
        ("ftp://127.0.0.1", "http(s)"),
        ("o365-api-us.spanningbackup.com", "http(s)"),
        ("https://", "no host"),
    ],
)
def test_refused_base_urls(base_url: str, says: str) -> None:
    with pytest.raises(UrlError, match=None) as caught:
        parse_base_url(base_url)
    assert says in str(caught.value)


def test_region_builds_base_url() -> None:
    settings = resolve_settings({**BASE, "region": "eu"})
    (tenant,) = settings.tenants
    assert str(tenant.origin) == "https://o365-api-eu.spanningbackup.com"
    assert tenant.region == "eu"
    assert settings.page_size == 1000


def test_the_one_tenant_form() -> None:
    """Top-level credentials are one tenant, "default" unless tenant_id says otherwise."""
    settings = resolve_settings({**BASE, "base_url": "http://127.0.0.1:8765"})
    (tenant,) = settings.tenants
    assert (tenant.tenant_id, tenant.admin_email, tenant.api_key) == (
        "default",
        "admin@contoso.example",
        "k-e-y",
    )
    assert str(tenant.origin) == "http://127.0.0.1:8765"
    assert tenant.region is None  # loopback
    named = resolve_settings({**BASE, "region": "uk", "tenant_id": "contoso.uk_1-a"})
    assert [t.tenant_id for t in named.tenants] == ["contoso.uk_1-a"]


def test_defaults() -> None:
    settings = resolve_settings({**BASE, "region": "us"})
    assert settings.page_size == 1000
    assert settings.request_timeout == 60
    assert settings.max_retries == 5
    assert settings.max_retry_wait == 60
    assert settings.max_concurrent_tenants == 8


def test_number_errors_never_echo_a_value_that_is_not_a_number() -> None:
    """A non-numeric value could be a key pasted into the wrong setting."""
    errors = errors_of({**BASE, "region": "us", "page_size": "many-5f0c2a8e"})
    assert errors == ["page_size must be a whole number between 1 and 1000"]
    errors = errors_of({**BASE, "region": "us", "request_timeout": "soon"})
    assert errors == ["request_timeout must be a number at least 0.001"]


def test_numbers_out_of_range_say_the_number() -> None:
    assert errors_of({**BASE, "region": "us", "page_size": 5000}) == [
        "page_size must be between 1 and 1000, got 5000"
    ]
    assert errors_of({**BASE, "region": "us", "max_concurrent_tenants": 65}) == [
        "max_concurrent_tenants must be between 1 and 64, got 65"
    ]


def test_region_and_base_url_that_agree() -> None:
    resolve_settings({**BASE, "region": "us", "base_url": f"{US}/external"})


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        ({}, "admin_email"),
        ({"api_key": "k", "region": "us"}, "admin_email"),
        ({"admin_email": "admin@x.example", "region": "us"}, "api_key"),
        ({"admin_email": "admin@x.example", "api_key": "", "region": "us"}, "api_key"),
        ({"admin_email": "admin@x.example", "api_key": 12345, "region": "us"}, "api_key"),
        ({"admin_email": "not-an-email", "api_key": "k", "region": "us"}, "admin_email"),
        ({**BASE}, "base_url"),
        ({**BASE, "region": "mars"}, "region"),
        ({**BASE, "region": "eu", "base_url": US}, "region"),
        ({**BASE, "base_url": "https://evil.example"}, "base_url"),
        ({**BASE, "region": "us", "page_size": 0}, "page_size"),
        ({**BASE, "region": "us", "page_size": 1001}, "page_size"),
        ({**BASE, "region": "us", "page_size": 2.5}, "page_size"),
        ({**BASE, "region": "us", "page_size": True}, "page_size"),
        ({**BASE, "region": "us", "page_size": "many"}, "page_size"),
        ({**BASE, "region": "us", "request_timeout": 0}, "request_timeout"),
        ({**BASE, "region": "us", "max_retries": 0}, "max_retries"),
        ({**BASE, "region": "us", "max_retry_wait": -1}, "max_retry_wait"),
        ({**BASE, "region": "us", "max_concurrent_tenants": 0}, "max_concurrent_tenants"),
        ({**BASE, "region": "us", "tenant_id": ""}, "tenant_id"),
        ({**BASE, "region": "us", "tenant_id": "a b"}, "tenant_id"),
        ({**BASE, "region": "us", "tenant_id": "x" * 65}, "tenant_id"),
        ({**BASE, "region": "us", "tenant_id": 7}, "tenant_id"),
        ({**BASE, "region": "us", "tenant_api_keys": {"a": "k"}}, "tenant_api_keys"),
        (
            {**BASE, "region": "us", "tenants": [{"tenant_id": "a", "admin_email": "a@b.c"}]},
            "not both",
        ),
    ],
)
def test_each_mistake_names_its_setting(config: dict[str, Any], setting: str) -> None:
    errors = errors_of(config)
    assert any(setting in error for error in errors), errors


def test_key_is_never_echoed() -> None:
    secret = "9d1b2c3a-secret-key"
    for config in (
        {"admin_email": "a@b.example", "api_key": secret, "base_url": "https://evil.example"},
        {"admin_email": "a@b.example", "api_key": [secret], "region": "us"},
        {"admin_email": secret, "api_key": secret, "region": "mars"},
    ):
        with pytest.raises(SettingsError) as caught:
            resolve_settings(config)
        assert secret not in str(caught.value)
    settings = resolve_settings({"admin_email": "a@b.example", "api_key": secret, "region": "us"})
    assert secret not in repr(settings)


def test_page_size_from_text() -> None:
    assert resolve_settings({**BASE, "region": "us", "page_size": "250"}).page_size == 250


ORIGIN = Origin("https", "o365-api-us.spanningbackup.com", 443)
LOCAL = Origin("http", "127.0.0.1", 8765)


@pytest.mark.parametrize(
    ("link", "origin", "url"),
    [
        (
            f"{US}/external/users?msIdOffset=a&sortPropOffset=b%2Bc%40d&size=50",
            ORIGIN,
            f"{US}/external/users?msIdOffset=a&sortPropOffset=b%2Bc%40d&size=50",
        ),
        (
            "http://o365-api-us.spanningbackup.com/external/users?x=1",
            ORIGIN,
            f"{US}/external/users?x=1",
        ),
        ("/external/users?x=%27", ORIGIN, f"{US}/external/users?x=%27"),
        ("users?x=1", ORIGIN, None),
        (
            "http://127.0.0.1:8765/external/users?a=1&a=2",
            LOCAL,
            "http://127.0.0.1:8765/external/users?a=1&a=2",
        ),
        ("/external/users?a=b", LOCAL, "http://127.0.0.1:8765/external/users?a=b"),
    ],
)
def test_next_links_followed_verbatim(link: str, origin: Origin, url: str | None) -> None:
    if url is None:
        with pytest.raises(UrlError):
            resolve_next_link(link, origin)
    else:
        assert resolve_next_link(link, origin) == url


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/external/users?x=1",
        "//evil.example/external/users",
        "https://o365-api-eu.spanningbackup.com/external/users",
        "https://o365-api-us.spanningbackup.com:444/external/users",
        "https://user:pw@o365-api-us.spanningbackup.com/external/users",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:text/plain,hi",
        f"{US}/external/tenant",
        f"{US}/external/users#frag",
    ],
)
def test_next_links_refused(link: str) -> None:
    with pytest.raises(UrlError):
        resolve_next_link(link, ORIGIN)


def test_http_is_not_upgraded_on_loopback() -> None:
    with pytest.raises(UrlError):
        resolve_next_link("https://127.0.0.1:8765/external/users", LOCAL)


PAGE = f"{US}/external/users?msIdOffset=a&sortPropOffset=b&size=50"


@pytest.mark.parametrize(
    ("link", "url"),
    [
        ("?msIdOffset=c&size=50", f"{US}/external/users?msIdOffset=c&size=50"),
        ("users?msIdOffset=c", f"{US}/external/users?msIdOffset=c"),
        ("/external/users?msIdOffset=c", f"{US}/external/users?msIdOffset=c"),
        ("../external/users?x=1", f"{US}/external/users?x=1"),
    ],
)
def test_relative_links_resolve_against_the_page_that_sent_them(link: str, url: str) -> None:
    assert resolve_next_link(link, ORIGIN, PAGE) == url


@pytest.mark.parametrize("link", ["../tenant", "?x=1#f", "//evil.example/external/users"])
def test_relative_links_that_leave_the_users_path_are_refused(link: str) -> None:
    with pytest.raises(UrlError):
        resolve_next_link(link, ORIGIN, PAGE)


def test_a_key_that_cannot_go_in_a_header_is_refused() -> None:
    errors = errors_of({**BASE, "api_key": "5f0c2a8e\u200b-key", "region": "us"})
    assert any("api_key" in error and "not printable ASCII" in error for error in errors)
    assert not any("5f0c2a8e" in error for error in errors)
