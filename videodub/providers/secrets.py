"""Keeps the secrets this process has read (API keys) out of everything it writes.

A provider calls :func:`remember` with each key it reads from the environment. From then on
every log record that contains the key shows ``***`` instead, and :func:`redact` does the same
for any text the runner writes (error lines, report.json). Any provider, built-in or from a
plugin, gets this by calling :func:`remember`; the core never needs to know which provider
read what.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
# Query parameters that authorise a link: presigned S3 and GCS links (X-Amz-Signature,
# X-Amz-Credential, X-Amz-Security-Token, X-Goog-Signature), Azure SAS (sig), CloudFront
# (Signature, Policy, Key-Pair-Id), and tokens, keys and passwords by any name.
AUTHORISING_PARAM = re.compile(r"(?i)sig|token|secret|passw|credential|auth|key|policy")
# Shorter values are not masked: masking "1" would mask every 1 in a report.
MIN_SECRET_CHARS = 6

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


def remember_url(url: str) -> None:
    """A link's secrets from now on shown as ``***``: the password of ``user:password@`` and
    the values of query parameters that authorise it, as typed and decoded."""
    try:
        parts = urlsplit(url.strip())
        password = parts.password
    except ValueError:  # not a URL after all (an unclosed [ in the host)
        return
    if parts.scheme.lower() not in ("http", "https"):
        return
    values = [password] if password else []
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if AUTHORISING_PARAM.search(unquote(name)):
            values.append(value)
    for value in values:
        for form in {value, unquote(value)}:
            if len(form) >= MIN_SECRET_CHARS:
                remember(form)


def remember_urls(text: str) -> None:
    """:func:`remember_url` for each link in ``text`` (a command line, a list of inputs)."""
    for match in re.finditer(r"(?i)https?://[^\s,'\"]+", text):
        remember_url(match.group())


def redact_data(data: Any) -> Any:
    """``data`` (a report: dicts, lists, strings, numbers) with every secret masked."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redact_data(k): redact_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v) for v in data]
    return data


def redact_file(path: Path) -> None:
    """Rewrite a text file someone else wrote (Hydra's record of the config) with every
    secret masked; a file that holds none, or is not there, is left alone."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    masked = redact(text)
    if masked != text:
        from videodub.media import write_text_atomic

        write_text_atomic(path, masked)
