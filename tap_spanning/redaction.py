"""Keep the API key out of every log line, whatever code wrote it.

The tap never puts the key in a message itself; this filter is the second line of
defence for text it does not control (a server echoing a header back, a library's
exception). It sits on the root logger's handlers, so it sees every record that
will be printed, including tracebacks.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from urllib.parse import quote as url_quote

from typing_extensions import override

MASK = "[redacted]"
# Longest excerpt of a server value quoted in an error message.
_QUOTE_LIMIT = 80
# How much of a value's text is scrubbed before it is cut to an excerpt: the excerpt and
# room for the longest form of a key (base64 of an email and a 256-character key).
_QUOTE_SCRUBBED = _QUOTE_LIMIT + 1024


class SecretIndex:
    """Every form of every tenant's key, found in a text at a cost that does not grow
    with the fleet (docs/many-tenants.md): each form is indexed by its last ANCHOR
    characters, and a text is read once, looking each window of ANCHOR characters up.

    The end, not the start: the forms of one tenant that begin with its admin's email
    (and their base64) share their start with every tenant of that admin, never their
    end, which comes from the key itself.
    """

    ANCHOR = 8

    def __init__(self, forms: Iterable[str] = ()) -> None:
        self.forms = sorted(set(forms), key=len, reverse=True)
        # Forms shorter than the anchor (a key of 4-7 characters): few, replaced one by one.
        self._short = [form for form in self.forms if len(form) < self.ANCHOR]
        self._by_end: dict[str, list[str]] = {}
        for form in self.forms:  # longest first within each anchor
            if len(form) >= self.ANCHOR:
                self._by_end.setdefault(form[-self.ANCHOR :], []).append(form)

    def redact(self, text: str) -> str:
        """`text` with every form masked."""
        spans: list[tuple[int, int]] = []
        if self._by_end and len(text) >= self.ANCHOR:
            candidates_of = self._by_end.get
            anchor = self.ANCHOR
            for end in range(anchor, len(text) + 1):
                candidates = candidates_of(text[end - anchor : end])
                if candidates is None:
                    continue
                for form in candidates:
                    start = end - len(form)
                    if start >= 0 and text.startswith(form, start):
                        spans.append((start, end))
                        break
        if spans:
            text = _masked(text, spans)
        for form in self._short:
            if form in text:
                text = text.replace(form, MASK)
        return text


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each span (overlapping ones merged) replaced by one MASK."""
    spans.sort()
    parts: list[str] = []
    kept_from = 0
    start, end = spans[0]
    for next_start, next_end in spans[1:]:
        if next_start <= end:
            end = max(end, next_end)
            continue
        parts += [text[kept_from:start], MASK]
        kept_from, (start, end) = end, (next_start, next_end)
    parts += [text[kept_from:start], MASK, text[end:]]
    return "".join(parts)


# The forms of this run's keys, once the settings are known. Text from the server is
# scrubbed with them before it is cut to an excerpt: a cut could split a key in two,
# and the log filter only recognises whole forms.
_active = SecretIndex()


def secret_forms(admin_email: str, api_key: str) -> list[str]:
    """Every spelling of the key that a request could carry, longest first."""
    pair = f"{admin_email}:{api_key}"
    forms = {
        api_key,
        pair,
        url_quote(api_key, safe=""),
        base64.b64encode(pair.encode()).decode(),
        base64.b64encode(api_key.encode()).decode(),
    }
    return sorted((form for form in forms if len(form) >= 4), key=len, reverse=True)


def scrub(text: str) -> str:
    """`text` with every form of this run's keys masked."""
    return _active.redact(text)


def quote(value: object) -> str:
    """A short, printable, scrubbed excerpt of a server value for an error message."""
    whole = repr(value)
    if len(whole) <= _QUOTE_LIMIT:
        return scrub(whole)
    text = scrub(whole[:_QUOTE_SCRUBBED])
    return f"{text[:_QUOTE_LIMIT]}...({len(whole)} chars)"


def redact(text: str, secrets: list[str] | SecretIndex) -> str:
    """`text` with every secret form replaced by a mask."""
    index = secrets if isinstance(secrets, SecretIndex) else SecretIndex(secrets)
    return index.redact(text)


class RedactedError(Exception):
    """An exception as a log line may show it: its type's name and its scrubbed text."""


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in the message and the traceback."""

    def __init__(self, secrets: SecretIndex) -> None:
        super().__init__()
        self.secrets = secrets

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.exc_info and record.exc_info[1] is not None:
            # Formatters that read the exception itself (the SDK's structured logging,
            # under Meltano) get a stand-in: its type's name and its scrubbed message,
            # without the causes whose text was never scrubbed.
            exc = record.exc_info[1]
            stand_in = RedactedError(redact(f"{type(exc).__name__}: {exc}", self.secrets))
            record.exc_info = (RedactedError, stand_in, exc.__traceback__)
        return True


def install(forms: list[str]) -> None:
    """Mask these secrets from now on: in `scrub`, and in every handler of the root logger."""
    global _active  # noqa: PLW0603  # one set of keys a run, read by every thread
    secrets = _active = SecretIndex(forms)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(secrets))
        else:
            for existing in handler.filters:
                if isinstance(existing, RedactingFilter):
                    existing.secrets = secrets
