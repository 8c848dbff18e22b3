"""Keeps the secrets this process has read (API keys) out of everything it writes.

A provider calls :func:`remember` with each key it reads from the environment. From then on
every log record that contains the key shows ``***`` instead, and :func:`redact` does the same
for any text the runner writes (error lines, report.json). Any provider, built-in or from a
plugin, gets this by calling :func:`remember`; the core never needs to know which provider
read what.
"""

from __future__ import annotations

import logging
import threading

MASK = "***"

_secrets: set[str] = set()
_lock = threading.Lock()

# Loggers of HTTP clients log request details (headers included) at DEBUG: never let them
# reach a log file once a secret is in play.
QUIET_LOGGERS = ("openai", "httpx2", "httpcore2", "httpx", "httpcore", "urllib3")


class RedactSecrets(logging.Filter):
    """Replaces every remembered secret with ``***`` in a log record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            if any(s in message for s in _secrets):
                record.msg, record.args = redact(message), None
            # A traceback can carry a secret too (an exception's message): format it here,
            # masked; handlers use the text already set instead of formatting it again.
            if record.exc_info and not record.exc_text:
                record.exc_text = _formatter.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
        return True


_formatter = logging.Formatter()
_redactor = RedactSecrets()


def remember(value: str) -> None:
    """From now on, ``value`` is shown as ``***`` in logs and in what :func:`redact` returns."""
    value = value.strip()
    if not value:
        return
    with _lock:
        _secrets.add(value)
    install()
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def install(logger: logging.Logger | None = None) -> None:
    """Put the filter on ``logger``'s handlers (the root logger's by default); handlers added
    later (a job's log file) call this again."""
    for handler in (logger or logging.getLogger()).handlers:
        if _redactor not in handler.filters:
            handler.addFilter(_redactor)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # a key that contains another first
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
