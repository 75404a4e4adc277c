"""Shared fixtures: a Spanning emulator on loopback and a tap config pointing at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tap_spanning.emulator import SpanningEmulator, generate_users
from tests.tapdriver import ADMIN_EMAIL, new_api_key

EmulatorFactory = Callable[..., SpanningEmulator]


@pytest.fixture
def api_key() -> str:
    return new_api_key()


@pytest.fixture
def start_emulator(api_key: str) -> Iterator[EmulatorFactory]:
    """Start emulators with this test's key; every one is stopped at teardown."""
    started: list[SpanningEmulator] = []

    def start(users: Any = None, **options: Any) -> SpanningEmulator:
        options.setdefault("admin_email", ADMIN_EMAIL)
        options.setdefault("api_key", api_key)
        emulator = SpanningEmulator(users, **options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def tap_config(api_key: str) -> Callable[..., dict[str, Any]]:
    """The config a user would write for an emulator, plus overrides."""

    def make(emulator: SpanningEmulator, **overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "base_url": emulator.base_url,
            "admin_email": ADMIN_EMAIL,
            "api_key": api_key,
            "max_retry_wait": 0.05,
        }
        config.update(overrides)
        return config

    return make


@pytest.fixture(scope="session")
def tenant_2500() -> list[dict[str, object]]:
    return generate_users(2500, seed=7)
