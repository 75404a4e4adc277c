"""Values of the warehouse as the page shows them: numbers, flags, days and times.

Either warehouse answers in its own types (DuckDB a float, PostgreSQL a Decimal, a flag a bool
or text): these read each the same way, and write it one way.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from markupsafe import Markup

from spanning_reports.names import escape_attribute, visible

DASH = "\u2014"  # a value the mart does not hold
WORKLOADS = {
    "MAIL": "Mail",
    "DRIVE": "OneDrive",
    "SPSITE": "SharePoint sites",
    "CALENDAR": "Calendar",
    "CONTACT": "Contacts",
}


def num(value: Any) -> float | None:
    """A number from the warehouse (int, float, Decimal, numeric text), else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, decimal.Decimal)):
        result = float(value)
    else:
        try:
            result = float(str(value))
        except ValueError:
            return None
    return None if math.isnan(result) else result


def count(value: Any) -> int:
    found = num(value)
    return 0 if found is None else round(found)


def flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "t", "1", "yes"}
    return bool(value)


def day(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def text(value: Any) -> str:
    return "" if value is None else str(value)


def fmt_int(value: Any) -> str:
    found = num(value)
    return DASH if found is None else f"{round(found):,}"


def fmt_pct(value: Any) -> str:
    found = num(value)
    return DASH if found is None else f"{found:.1f}%"


def fmt_time(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, dt.datetime):
        moment: dt.datetime = value
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M")
    return str(value)


def fmt_day(value: Any) -> str:
    found = day(value)
    return text(value) if found is None else found.isoformat()


def fx(value: float) -> str:
    """An SVG coordinate: one decimal at most."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def data_value(value: Any) -> str:
    """A data-* attribute value: numbers plainly (4 decimals at most), null as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, decimal.Decimal)):
        return f"{float(value):.4f}".rstrip("0").rstrip(".")
    return str(value)


def attrs(values: dict[str, Any]) -> Markup:
    """data-* attributes: each value escaped, a hidden character as a character reference."""
    return Markup(  # noqa: S704 - every value escaped by escape_attribute
        "".join(f' {key}="{escape_attribute(data_value(value))}"' for key, value in values.items())
    )


def plural(number: Any, noun: str, nouns: str | None = None) -> str:
    whole = count(number)
    return f"{whole:,} {noun if whole == 1 else (nouns or noun + 's')}"


def workload(kind: Any) -> str:
    return WORKLOADS.get(text(kind), text(kind))


def short(label: str, limit: int) -> str:
    """A label cut to `limit` characters, as shown (hidden characters as their tokens)."""
    label = visible(label)
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"
