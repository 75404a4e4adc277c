"""Keep the API key out of every log line, whatever code wrote it.

The tap never puts the key in a message itself; this filter is the second line of
defence for text it does not control (a server echoing a header back, a library's
exception). It sits on the root logger's handlers, so it sees every record that
will be printed, including tracebacks.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote as url_quote

from typing_extensions import override

MASK = "[redacted]"
# Longest excerpt of a server value quoted in an error message.
_QUOTE_LIMIT = 80

# The forms of this run's key, once the settings are known. Text from the server is
# scrubbed with them before it is cut to an excerpt: a cut could split a key in two,
# and the log filter only recognises whole forms.
_active: list[str] = []


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
    """`text` with every form of this run's key masked."""
    return redact(text, _active)


def quote(value: object) -> str:
    """A short, printable, scrubbed excerpt of a server value for an error message."""
    text = scrub(repr(value))
    return text if len(text) <= _QUOTE_LIMIT else f"{text[:_QUOTE_LIMIT]}...({len(text)} chars)"


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret form replaced by a mask."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactedError(Exception):
    """An exception as a log line may show it: its type's name and its scrubbed text."""


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in the message and the traceback."""

    def __init__(self, secrets: list[str]) -> None:
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


def install(secrets: list[str]) -> None:
    """Mask these secrets from now on: in `scrub`, and in every handler of the root logger."""
    _active[:] = secrets
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(secrets))
        else:
            for existing in handler.filters:
                if isinstance(existing, RedactingFilter):
                    existing.secrets = secrets
