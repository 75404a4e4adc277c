"""`python -m bench.tap_probe ARGS`: the tap's console script with ARGS, telling what its
response budget saw.

The run is the tap's own (`tap_spanning.entry.main`, in this process, so its peak RSS is
the tap's); only, just before the process ends (`entry.exit_now`), the largest `peak`
and `largest_page` of the run's response budgets (`tap_spanning.budget`) are written as
one JSON object to the file that BENCH_TAP_PROBE names. Nothing else changes: the
budget module is stdlib-only, so hooking it before the run loads nothing early.

It measures the tap of this checkout (or of PYTHONPATH); a `--tap-command` tap is
measured without its budget.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

PROBE_ENV = "BENCH_TAP_PROBE"


def main() -> None:
    from tap_spanning import budget, entry  # noqa: PLC0415  # the tap's own entry point

    budgets: list[Any] = []
    init = budget.ResponseBudget.__init__

    def recorded(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        budgets.append(self)

    budget.ResponseBudget.__init__ = recorded  # type: ignore[method-assign]
    exit_now = entry.exit_now

    def exit_with_report(code: int | str | None) -> None:
        path = os.environ.get(PROBE_ENV)
        if path:
            Path(path).write_text(
                json.dumps(
                    {
                        "budgets": len(budgets),
                        "limit": max((b.limit for b in budgets), default=0),
                        "peak": max((b.peak for b in budgets), default=0),
                        "largest_page": max((b.largest_page for b in budgets), default=0),
                    }
                )
            )
        exit_now(code)

    entry.exit_now = exit_with_report
    sys.argv = ["tap-spanning", *sys.argv[1:]]
    entry.main()


if __name__ == "__main__":
    main()
