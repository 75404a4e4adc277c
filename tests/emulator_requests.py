"""What the emulator was asked: the paths of the requests it saw, all of them or one tenant's."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from spanning_emulator import EmulatedTenant, FleetEmulator


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
