"""Calling OpenAI, or any OpenAI-compatible server, from a stage: client, limits, retries, checks.

Every stage that talks to such an endpoint holds an :class:`OpenAIProvider`. It owns:

- the key, read from the environment variable the config names (never from the config
  itself, so it cannot reach ``.hydra/``, logs or reports);
- one ``openai.AsyncOpenAI`` client per endpoint and key, with the SDK's own retries
  switched off: the retry layer here is the only one;
- the endpoint's :class:`~videodub.providers.limits.RateLimiter`, shared by every stage
  that calls the same route of the same server;
- :meth:`OpenAIProvider.request`, which waits for the limiter, sends, parses, and retries
  timeouts, dropped connections, 408/409/429/5xx and unparseable bodies with exponential
  backoff and full jitter (a 429's ``Retry-After`` pauses the whole endpoint); 401/403 and
  other 4xx answers fail at once with one line that says what to change;
- :meth:`OpenAIProvider.check`, the preflight: key set, endpoint answering, model present.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from videodub.config import transport
from videodub.errors import VideodubError
from videodub.model import JobScope
from videodub.providers import aio, secrets
from videodub.providers.limits import RateLimiter, parse_retry_after
from videodub.providers.secrets import redact
from videodub.providers.usage import ProviderStats

log = logging.getLogger(__name__)

T = TypeVar("T")

OPENAI_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 429})
# Time one provider's preflight may take: all checks together should answer within 2 s.
PREFLIGHT_TIMEOUT_S = 1.5
# Attempts of the model check when the server answers a transient error, and the longest
# pause between two: enough for a blip, and preflight still ends in a few seconds.
PREFLIGHT_ATTEMPTS = 3
PREFLIGHT_MAX_DELAY_S = 0.5


@dataclass
class OpenAIOptions:
    """Options every OpenAI-compatible provider takes."""

    # Server root including /v1; empty: $OPENAI_BASE_URL, else https://api.openai.com/v1.
    base_url: str = ""
    # Name of the environment variable that holds the API key (the key itself never goes in
    # the config); empty: the server needs no key.
    api_key_env: str = transport("OPENAI_API_KEY")
    # Seconds one request may take before it is abandoned and retried.
    timeout_s: float = transport(120.0)
    # Retries after the first attempt, for timeouts, 408/409/429/5xx and unparseable answers.
    max_retries: int = transport(6)
    # Backoff: a random delay up to retry_base_s * 2**attempt, at most retry_max_s.
    retry_base_s: float = transport(0.5)
    retry_max_s: float = transport(30.0)
    # Client-side limits for this endpoint (0: none); server x-ratelimit-* headers tighten them.
    requests_per_minute: int = transport(0)
    tokens_per_minute: int = transport(0)
    # Requests in flight at once on this endpoint; also caps the stage's worker pool.
    max_in_flight: int = transport(16)
    # Ask the server, before any media work, whether it answers and has the model.
    preflight: bool = transport(True)

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {self.max_in_flight}")
        if self.requests_per_minute < 0 or self.tokens_per_minute < 0:
            raise ValueError("requests_per_minute and tokens_per_minute must be >= 0")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if "@" in urlsplit(self.base_url).netloc:
            # The config is saved in the run folder; credentials belong in the environment.
            raise ValueError("base_url must not contain credentials (user:password@); put the "
                             "key in an environment variable named by api_key_env")


def resolve_base_url(options: OpenAIOptions) -> str:
    return (options.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL).rstrip("/")


def public_url(url: str) -> str:
    """The URL without user:password@ (what reports and messages may show)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_openai(url: str) -> bool:
    return (urlsplit(url).hostname or "").endswith("api.openai.com")


def close_client(client: Any) -> None:
    """Close a client's connection pool on the loop it belongs to."""
    aio.submit(client.close())


class RetryableError(Exception):
    """An answer that another attempt may fix (a body that does not parse, a bad structure)."""


class OpenAIProvider:
    """One stage's access to one route (``chat``, ``speech``, ``transcriptions``) of a server."""

    def __init__(self, stage: str, options: OpenAIOptions, route: str, model: str) -> None:
        self.stage = stage
        self.options = options
        self.route = route
        self.model = model
        self.base_url = resolve_base_url(options)
        self.stats = ProviderStats(stage=stage, model=model, endpoint=public_url(self.base_url))
        self._limiter: RateLimiter | None = None
        self._checked = False
        self.key_missing = False  # no key set, and the server is not OpenAI's
        # Clients and limiters are shared with the job's other stages through its scope; a
        # provider used outside a job (a plugin's own test) has a scope of its own.
        self.scope = JobScope()

    def attach(self, scope: JobScope) -> None:
        self.scope = scope
        self._limiter = None

    # -- key and client --------------------------------------------------------------------
    def api_key(self) -> str:
        name = self.options.api_key_env
        if not name:
            return "no-key"  # the SDK insists on a value; keyless local servers ignore it
        value = os.environ.get(name, "").strip()
        if value:
            secrets.remember(value)
            return value
        if is_openai(self.base_url):
            raise VideodubError(
                f"{self.stage}=openai: ${name} is not set; export your OpenAI key as "
                f"{name} (or name another variable with {self.stage}.api_key_env), or use a local "
                f"server with {self.stage}.base_url=http://localhost:8000/v1{self.alternative}")
        self.key_missing = True
        return "no-key"  # a local server that does not check keys

    @property
    def alternative(self) -> str:
        return {"transcribe": ", or transcribe=faster_whisper (offline)",
                "translate": ", or translate=subtitles with a translated SRT",
                "tts": ", or tts=espeak (offline)"}.get(self.stage, "")

    def client(self) -> Any:
        """The shared AsyncOpenAI client for this server and key (call on the provider loop)."""
        import openai

        key = self.api_key()
        ident = ("openai-client", self.base_url, hashlib.sha256(key.encode()).hexdigest(),
                 self.options.timeout_s)
        return self.scope.shared(ident, lambda: openai.AsyncOpenAI(
            api_key=key, base_url=self.base_url, max_retries=0, timeout=self.options.timeout_s),
            close=close_client)

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            self._limiter = self._shared_limiter()
            self.stats.limits = self._limiter.describe()
        return self._limiter

    def _shared_limiter(self) -> RateLimiter:
        """One limiter per route of a server for the whole job; every stage that shares it
        tightens it to its own limits."""
        opts = self.options
        where = public_url(self.base_url)
        limiter = self.scope.shared(("openai-limiter", where, self.route), lambda: RateLimiter(
            f"{where} {self.route}", opts.requests_per_minute, opts.tokens_per_minute,
            opts.max_in_flight))
        limiter.tighten(opts.requests_per_minute, opts.tokens_per_minute, opts.max_in_flight)
        return limiter

    # -- requests --------------------------------------------------------------------------
    def run(self, coro: Awaitable[T], cancel_event: threading.Event | None = None) -> T:
        """Run a coroutine of this provider on the provider loop from a worker thread."""
        return aio.run(coro, cancel_event)  # type: ignore[arg-type]

    async def request(self, send: Callable[[Any], Awaitable[Any]],
                      parse: Callable[[Any], T], what: str, tokens: int = 0,
                      used_tokens: Callable[[T], int | None] | None = None) -> T:
        """Send with ``send(client)`` (a ``with_raw_response`` call), then ``parse(raw)``.

        Waits for the endpoint's limiter (``tokens`` is the request's estimated size for the
        tokens-per-minute budget), retries what may succeed on another attempt, and turns
        what will not into a one-line :class:`VideodubError`.
        """
        import openai

        opts = self.options
        limiter = self.limiter
        attempt = 0
        while True:
            waited = await limiter.acquire(tokens)
            self.stats.limiter_wait_s += waited
            sent = self.stats.started()
            retry_after: float | None = None
            used: int | None = None
            try:
                raw = await send(self.client())
                limiter.observe(raw.headers)
                result = parse(raw)
                used = used_tokens(result) if used_tokens else None
                self.stats.succeeded += 1
                self.stats.limits = limiter.describe()
                return result
            except openai.APIStatusError as exc:
                limiter.observe(exc.response.headers)
                status = exc.status_code
                if status == 429:
                    self.stats.rate_limited += 1
                    retry_after = parse_retry_after(exc.response.headers)
                    limiter.pause(retry_after if retry_after is not None else 1.0)
                    reason = "429 rate limited"
                elif status in RETRY_STATUS or status >= 500:
                    self.stats.server_errors += 1
                    reason = f"{status} {_message(exc)}"
                else:
                    raise self._fatal(exc, what) from None
            except openai.APITimeoutError:
                self.stats.timeouts += 1
                reason = f"no answer within {opts.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                self.stats.server_errors += 1
                if attempt == 0 and not self.stats.succeeded and _refused(exc):
                    raise VideodubError(self._unreachable(exc)) from None
                reason = f"connection failed ({_cause(exc)})"
            except (RetryableError, ValueError, openai.APIResponseValidationError) as exc:
                # A body that is not JSON, or JSON that is not what was asked for.
                self.stats.server_errors += 1
                reason = f"unusable answer ({' '.join(redact(str(exc)).split())[:160]})"
            finally:
                self.stats.ended(sent)
                limiter.release(tokens, used)
            attempt += 1
            if attempt > opts.max_retries:
                raise VideodubError(
                    f"{self.stage}: {what} failed after {attempt} attempts at "
                    f"{public_url(self.base_url)}: {redact(reason)}")
            self.stats.retries += 1
            delay = retry_after if retry_after is not None else random.uniform(
                0, min(opts.retry_max_s, opts.retry_base_s * 2 ** (attempt - 1)))
            log.info("%s: %s: %s; retry %d/%d in %.2f s", self.stage, what, redact(reason),
                     attempt, opts.max_retries, delay)
            await asyncio.sleep(delay)

    def _fatal(self, exc: Any, what: str) -> VideodubError:
        status = exc.status_code
        where = public_url(self.base_url)
        if status in (401, 403):
            var = self.options.api_key_env
            if self.key_missing:
                return VideodubError(
                    f"{self.stage}: {where} wants an API key ({status}) but ${var} is not set; "
                    f"export it, or name another variable with {self.stage}.api_key_env")
            return VideodubError(
                f"{self.stage}: {where} rejected the API key in ${var} ({status}); check the key, "
                f"or name another variable with {self.stage}.api_key_env{self.alternative}")
        if status == 404:
            return VideodubError(
                f"{self.stage}: {where} has no model {self.model!r} (404: {_message(exc)}); set "
                f"{self.stage}.model to one it serves")
        return VideodubError(f"{self.stage}: {where} refused {what} ({status}: {_message(exc)})")

    def _unreachable(self, exc: Exception) -> str:
        return (f"{self.stage}: cannot reach {public_url(self.base_url)} ({_cause(exc)}); start the "
                f"server or fix {self.stage}.base_url{self.alternative}")

    # -- preflight -------------------------------------------------------------------------
    def check(self, cancel_event: threading.Event | None = None) -> None:
        """Key set, endpoint answering, model present; one line naming the fix otherwise."""
        self.api_key()
        if not self.options.preflight or self._checked:
            return
        self.run(self._check(), cancel_event)
        self._checked = True

    async def _check(self) -> None:
        """The model check, with the work's retry policy for transient answers (5xx, 408,
        409, 429, a dropped connection), bounded: at most PREFLIGHT_ATTEMPTS attempts and
        short pauses, so a server that keeps failing still fails the check in seconds."""
        import openai

        attempts = min(PREFLIGHT_ATTEMPTS, 1 + self.options.max_retries)
        where = public_url(self.base_url)
        for attempt in range(1, attempts + 1):
            try:
                await self._check_once()
                return
            except openai.APIStatusError as exc:
                if exc.status_code not in RETRY_STATUS and exc.status_code < 500:
                    raise VideodubError(
                        f"{self.stage}: {where} answered the model check with {exc.status_code} "
                        f"({_message(exc)}); check {self.stage}.base_url") from None
                failure = (f"answered the model check with {exc.status_code} ({_message(exc)})")
                retry_after = parse_retry_after(exc.response.headers)
            except openai.APIConnectionError as exc:  # refused and timed out: already lines
                failure, retry_after = f"dropped the model check ({_cause(exc)})", None
            if attempt == attempts:
                raise VideodubError(
                    f"{self.stage}: {where} {failure} after {attempt} attempt"
                    f"{'s' if attempt > 1 else ''}; check {self.stage}.base_url or the server")
            delay = random.uniform(0, min(PREFLIGHT_MAX_DELAY_S,
                                          self.options.retry_base_s * 2 ** (attempt - 1)))
            if retry_after is not None:
                delay = min(retry_after, PREFLIGHT_MAX_DELAY_S * 2)
            log.info("%s: the model check at %s: %s; retry %d/%d in %.2f s", self.stage, where,
                     redact(failure), attempt, attempts - 1, delay)
            await asyncio.sleep(delay)

    async def _check_once(self) -> None:
        import openai

        client = self.client().with_options(timeout=PREFLIGHT_TIMEOUT_S)
        where = public_url(self.base_url)
        try:
            try:
                await client.models.retrieve(self.model)
                return
            except (openai.NotFoundError, openai.UnprocessableEntityError,
                    openai.BadRequestError) as exc:
                # Some servers only list models; a 404 from retrieve is not yet an answer.
                not_found = exc
            try:
                page = await client.models.list()
                ids = [m.id for m in page.data]
            except openai.NotFoundError:
                log.info("%s: %s lists no models; the model is checked on first use", self.stage, where)
                return
            if self.model in ids:
                return
            raise VideodubError(
                f"{self.stage}: {where} has no model {self.model!r} ({_message(not_found)}); "
                f"it serves: {', '.join(sorted(ids)[:12]) or 'none'}; set {self.stage}.model")
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise self._fatal(exc, "the model check") from None
        except openai.APITimeoutError:
            raise VideodubError(
                f"{self.stage}: {where} did not answer within {PREFLIGHT_TIMEOUT_S:g} s; check "
                f"{self.stage}.base_url or the server{self.alternative}") from None
        except openai.APIConnectionError as exc:
            if _refused(exc):
                raise VideodubError(self._unreachable(exc)) from None
            raise


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        err = body.get("error", body)
        message = err.get("message") if isinstance(err, dict) else str(err)
    message = message or getattr(exc, "message", "") or type(exc).__name__
    # Masked before it is cut short: a cut would leave part of a long key unmasked.
    return " ".join(redact(str(message)).split())[:200]


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    text = str(inner) if inner else str(exc)
    return " ".join(redact(text).split())[:120] or type(exc).__name__


def _refused(exc: BaseException) -> bool:
    """A connection that was refused or whose host does not resolve: nothing is listening."""
    chain = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    text = " ".join(str(e).lower() for e in chain)
    return any(isinstance(e, ConnectionRefusedError) for e in chain) or any(
        phrase in text for phrase in ("connection refused", "name or service not known",
                                      "nodename nor servname", "no address associated"))


__all__ = ["OpenAIOptions", "OpenAIProvider", "RetryableError", "public_url", "is_openai"]
