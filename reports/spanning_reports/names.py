"""Warehouse text in the fleet report, as a person must see it.

A name from a tenant (a display name, a user principal name, a workload, a sync's reason) may
hold characters that draw nothing: right-to-left and left-to-right overrides and isolates
(U+202A-U+202E, U+2066-U+2069), marks (U+200E, U+200F, U+061C), zero-width characters (U+200B,
U+200C, U+200D, U+FEFF) and every other format character (Unicode category Cf), control
characters, line and paragraph separators. In an access review they hide who someone is:
"admin" U+202E "gnp.exe" reads "adminexe.png". So each is shown as a visible token, ⟨U+202E⟩, and
each name is isolated (<bdi>): whatever it holds, it cannot reorder the text around it.
Everything else is HTML-escaped. The templates' autoescape shows every other value through
`visible` (the Jinja2 environment's finalize), so no text of the warehouse reaches the page raw.
"""

from __future__ import annotations

import html
import unicodedata

from markupsafe import Markup

# Categories of characters that draw nothing or steer the text: format (Cf), control (Cc),
# lone surrogates (Cs, which could not even be written as UTF-8), line and paragraph
# separators (Zl, Zp: a paragraph break resets the bidi algorithm).
HIDDEN_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Zl", "Zp"})


def is_hidden(char: str) -> bool:
    return unicodedata.category(char) in HIDDEN_CATEGORIES


def token(char: str) -> str:
    """The visible stand-in of a hidden character: ⟨U+202E⟩."""
    return f"\u27e8U+{ord(char):04X}\u27e9"


def _has_hidden(value: str) -> bool:
    # str.isprintable() is False for every hidden category (and for spaces other than
    # U+0020): the common, plain name takes the fast path.
    return not value.isprintable() and any(is_hidden(char) for char in value)


def visible(value: str) -> str:
    """Plain text with each hidden character replaced by its token (SVG labels, tooltips)."""
    if not _has_hidden(value):
        return value
    return "".join(token(char) if is_hidden(char) else char for char in value)


def escape_attribute(value: str) -> str:
    """An attribute value: escaped, each hidden character a character reference, so that the
    file never holds one raw (the value itself is kept for scrapers)."""
    escaped = html.escape(value, quote=True)
    if not _has_hidden(escaped):
        return escaped
    return "".join(f"&#x{ord(char):X};" if is_hidden(char) else char for char in escaped)


def name_html(value: str) -> Markup:
    """A name as HTML: isolated in <bdi>, each hidden character a marked token
    (<span class=ctl>) that says which character it is."""
    if not _has_hidden(value):
        return Markup(f"<bdi>{html.escape(value, quote=True)}</bdi>")  # noqa: S704 - escaped here
    parts = []
    for char in value:
        if is_hidden(char):
            described = unicodedata.name(char, "") or unicodedata.category(char)
            parts.append(
                f'<span class=ctl title="U+{ord(char):04X} {html.escape(described)}">'
                f"{token(char)}</span>"
            )
        else:
            parts.append(html.escape(char, quote=True))
    return Markup("<bdi>" + "".join(parts) + "</bdi>")  # noqa: S704 - escaped here


def tenant_html(tenant_id: str, tenant_name: str | None) -> Markup:
    """A tenant as a cell names it: its name, its id beside it (small), each a name_html; the
    id alone for a tenant never named."""
    if not tenant_name:
        return name_html(tenant_id)
    return Markup(  # noqa: S704 - both parts escaped by name_html
        f'{name_html(tenant_name)} <small class="tid">{name_html(tenant_id)}</small>'
    )
