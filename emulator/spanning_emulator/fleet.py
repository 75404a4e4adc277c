"""A deterministic fleet of client tenants, as an MSP would hold them."""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
import uuid
from collections.abc import Sequence

from .backups import DATE_FORMATS
from .emulated import EmulatedTenant
from .tenant import Profile, generate_users, tenant_summary

# Tenant sizes are log-normal: median ~50 users, mean ~200, a few over 2,000, some empty.
_MEDIAN_USERS = 50.0
_SIGMA = 1.665
_MAX_USERS = 15_000
_TRIAL_SHARE = 0.10
_EXPIRED_SHARE = 0.03
_COMPANIES = (
    "contoso", "fabrikam", "northwind", "adventure-works", "tailspin", "wingtip",
    "litware", "proseware", "fourth-coffee", "woodgrove", "alpine-ski", "lucerne",
    "margies-travel", "blue-yonder", "coho-winery", "wide-world", "humongous",
    "trey-research", "relecloud", "southridge", "graphic-design", "school-of-fine-art",
    "city-power", "consolidated-messenger", "fineart", "lamna", "nod-publishers",
    "tasmanian-traders", "vanarsdel", "bellows-college", "munson-pickles", "first-up",
)  # fmt: skip


def tenant_sizes(count: int, seed: int = 1) -> list[int]:
    """`count` user counts from a heavy-tailed (log-normal) distribution, one per
    stratum of its quantiles so the spread is the same for every seed, shuffled."""
    rng = random.Random(f"fleet-sizes-{seed}")
    normal = statistics.NormalDist()
    sizes: list[int] = []
    for index in range(count):
        quantile = (index + rng.random()) / count
        quantile = min(max(quantile, 0.125 / count), 1 - 0.5 / count)
        users = math.exp(math.log(_MEDIAN_USERS) + _SIGMA * normal.inv_cdf(quantile))
        sizes.append(min(_MAX_USERS, int(users)))
    rng.shuffle(sizes)
    return sizes


def generate_fleet(
    count: int,
    seed: int = 1,
    *,
    hosts: Sequence[str] = ("127.0.0.1",),
    profile: Profile = "realistic",
    today: dt.date | None = None,
) -> list[EmulatedTenant]:
    """A deterministic fleet of `count` tenants: ids "t0001-contoso", ..., admin
    admin@<tenant_id>.example, a GUID key each, hosts assigned round-robin, sizes
    from tenant_sizes(), users generated with a seed of their own; about 1 tenant in
    10 has status "trial" and a few "expired" (the others' counters follow the users).

    Backup status is spelled differently from tenant to tenant: tenant i (from 1)
    sends dates as DATE_FORMATS[(i - 1) % 5] (iso, datetime, mdy, epoch_ms,
    epoch_ms_text), counts as text when (i - 1) // 5 is odd (tenants 6-10, 16-20,
    ...), userId as text when i is even. Every tenant's "today" is `today` (None: the
    real UTC today).
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if not hosts:
        raise ValueError("hosts must name at least one loopback address")
    rng = random.Random(f"fleet-{seed}")
    tenants: list[EmulatedTenant] = []
    for index, size in enumerate(tenant_sizes(count, seed), start=1):
        tenant_id = f"t{index:04d}-{rng.choice(_COMPANIES)}"
        api_key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        draw = rng.random()
        user_seed = seed * 1_000_003 + index
        if profile == "realistic":
            users = generate_users(size, user_seed, "realistic", domain=f"{tenant_id}.example")
        else:
            users = generate_users(size, user_seed, profile)
        counters: dict[str, object] | None = None
        if draw < _TRIAL_SHARE + _EXPIRED_SHARE:
            status = "trial" if draw < _TRIAL_SHARE else "expired"
            counters = {**tenant_summary(users), "status": status}
        tenants.append(
            EmulatedTenant(
                tenant_id=tenant_id,
                users=users,
                admin_email=f"admin@{tenant_id}.example",
                api_key=api_key,
                host=hosts[(index - 1) % len(hosts)],
                counters=counters,
                date_format=DATE_FORMATS[(index - 1) % len(DATE_FORMATS)],
                counts_as_text=(index - 1) // len(DATE_FORMATS) % 2 == 1,
                user_id_as_text=index % 2 == 0,
                today=today,
            )
        )
    return tenants
