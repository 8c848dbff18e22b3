"""What a provider was asked to do, what it cost, and what it will cost.

:class:`ProviderStats` counts one stage's calls to one endpoint: the display shows its live
counters (in flight, retries, 429s), the report its totals. :class:`Price` is one row of the
price table in the config (``prices``), and :func:`cost` prices a usage with it. Estimates
before a run use the same function on the usage a stage expects (see ``estimate_usage``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from videodub.model import EstimatesUsage


@dataclass
class Price:
    """List prices in US dollars; a field left at 0 is not charged."""

    input_per_1m_tokens: float = 0.0
    output_per_1m_tokens: float = 0.0
    per_1m_chars: float = 0.0  # characters synthesized
    per_audio_minute_in: float = 0.0  # audio transcribed
    per_audio_minute_out: float = 0.0  # audio synthesized


def default_prices() -> dict[str, Price]:
    """OpenAI's published list prices (USD) for the models the built-in providers default to."""
    return {
        "whisper-1": Price(per_audio_minute_in=0.006),
        "gpt-4o-transcribe": Price(per_audio_minute_in=0.006),
        "gpt-4o-mini-transcribe": Price(per_audio_minute_in=0.003),
        "gpt-4o-mini": Price(input_per_1m_tokens=0.15, output_per_1m_tokens=0.60),
        "gpt-4o": Price(input_per_1m_tokens=2.50, output_per_1m_tokens=10.00),
        "gpt-4.1": Price(input_per_1m_tokens=2.00, output_per_1m_tokens=8.00),
        "gpt-4.1-mini": Price(input_per_1m_tokens=0.40, output_per_1m_tokens=1.60),
        "gpt-4.1-nano": Price(input_per_1m_tokens=0.10, output_per_1m_tokens=0.40),
        "tts-1": Price(per_1m_chars=15.00),
        "tts-1-hd": Price(per_1m_chars=30.00),
        "gpt-4o-mini-tts": Price(input_per_1m_tokens=0.60, per_audio_minute_out=0.015),
    }


@dataclass
class Usage:
    """Billable quantities (measured after a run, or expected before it)."""

    tokens_in: int = 0
    tokens_out: int = 0
    chars: int = 0
    audio_in_s: float = 0.0
    audio_out_s: float = 0.0
    calls: int = 0


def cost(usage: Usage, price: Price | None) -> float | None:
    """US dollars for ``usage``; None when the model has no row in the price table."""
    if price is None:
        return None
    return (usage.tokens_in * price.input_per_1m_tokens / 1e6
            + usage.tokens_out * price.output_per_1m_tokens / 1e6
            + usage.chars * price.per_1m_chars / 1e6
            + usage.audio_in_s / 60 * price.per_audio_minute_in
            + usage.audio_out_s / 60 * price.per_audio_minute_out)


def find_price(prices: dict[str, Any], model: str) -> Price | None:
    """The row for ``model``; a dated snapshot (``gpt-4o-mini-2024-07-18``) uses its family's row."""
    if model in prices:
        return _as_price(prices[model])
    family = max((name for name in prices if model.startswith(name + "-")), key=len, default=None)
    return _as_price(prices[family]) if family else None


def _as_price(value: Any) -> Price:
    if isinstance(value, Price):
        return value
    return Price(**{k: float(v) for k, v in dict(value).items()})


@dataclass
class ProviderStats:
    """Live and final counters for one stage's use of one endpoint."""

    stage: str
    model: str
    endpoint: str  # scheme://host[:port]/path, without credentials
    calls: int = 0  # HTTP requests sent, retries included
    succeeded: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 answers
    timeouts: int = 0
    server_errors: int = 0  # 5xx, 408, 409, and bodies that did not parse
    in_flight: int = 0
    max_in_flight: int = 0
    limiter_wait_s: float = 0.0  # time requests waited for the rate limiter
    usage: Usage = field(default_factory=Usage)
    limits: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Seconds from sending each request to its answer (or failure), in the order they ended.
    latencies: list[float] = field(default_factory=list, repr=False)
    first_sent: float | None = None  # monotonic: the span the stage spent calling the server
    last_answered: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def started(self) -> float:
        """Count a request as sent; returns the time to hand back to :meth:`ended`."""
        now = time.monotonic()
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.first_sent is None:
                self.first_sent = now
        return now

    def ended(self, sent: float | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            self.in_flight -= 1
            self.last_answered = now
            if sent is not None:
                self.latencies.append(now - sent)

    def latency_ms(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the measured request latencies, in milliseconds."""
        with self._lock:
            values = sorted(self.latencies)
        if not values:
            return None
        return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 1)

    def add(self, **amounts: float) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self.usage, name, getattr(self.usage, name) + amount)

    def as_report(self, prices: dict[str, Any]) -> dict[str, Any]:
        usage = self.usage
        usd = cost(usage, find_price(prices, self.model))
        return {
            "stage": self.stage, "model": self.model, "endpoint": self.endpoint,
            "calls": self.calls, "succeeded": self.succeeded, "retries": self.retries,
            "rate_limited_429": self.rate_limited, "timeouts": self.timeouts,
            "server_errors": self.server_errors, "max_in_flight": self.max_in_flight,
            "limiter_wait_s": round(self.limiter_wait_s, 3),
            "tokens_in": usage.tokens_in, "tokens_out": usage.tokens_out,
            "chars_synthesized": usage.chars, "audio_transcribed_s": round(usage.audio_in_s, 3),
            "audio_synthesized_s": round(usage.audio_out_s, 3),
            "cost_usd": round(usd, 6) if usd is not None else None,
            "limits": dict(self.limits), "notes": list(self.notes),
            "latency_p50_ms": self.latency_ms(0.5), "latency_p95_ms": self.latency_ms(0.95),
            "span_s": (round(self.last_answered - self.first_sent, 3)
                       if self.first_sent is not None and self.last_answered is not None
                       else None),
        }


@dataclass
class EstimateLine:
    stage: str
    model: str
    usage: Usage
    usd: float | None

    def describe(self) -> str:
        u = self.usage
        parts = []
        if u.audio_in_s:
            parts.append(f"{u.audio_in_s / 60:.1f} min audio")
        if u.tokens_in or u.tokens_out:
            parts.append(f"~{u.tokens_in + u.tokens_out:,} tokens in ~{u.calls} calls")
        if u.chars:
            parts.append(f"~{u.chars:,} chars")
        price = f"${self.usd:.4f}" if self.usd is not None else "not in the price table"
        return f"{self.stage} {self.model}: {price} ({', '.join(parts) or 'no usage'})"


@dataclass
class Estimate:
    lines: list[EstimateLine]

    @property
    def total_usd(self) -> float:
        return sum(line.usd or 0.0 for line in self.lines)

    @property
    def paid(self) -> bool:
        return any((line.usd or 0.0) > 0 for line in self.lines)

    def summary(self) -> str:
        if not self.lines:
            return "estimated cost: $0 (no paid calls)"
        return (f"estimated cost: ${self.total_usd:.4f} at list prices; "
                + "; ".join(line.describe() for line in self.lines))

    def as_report(self) -> dict[str, Any]:
        return {"total_usd": round(self.total_usd, 6),
                "stages": {line.stage: {"model": line.model, "usd": line.usd,
                                        "calls": line.usage.calls,
                                        "tokens": line.usage.tokens_in + line.usage.tokens_out,
                                        "chars": line.usage.chars,
                                        "audio_s": round(line.usage.audio_in_s, 1)}
                           for line in self.lines}}


def estimate(stages: dict[str, Any], duration_s: float, prices: dict[str, Any]) -> Estimate:
    """Expected usage and cost of every stage that can say (``estimate_usage(duration_s)``)."""
    lines = []
    for stage, obj in stages.items():
        if isinstance(obj, EstimatesUsage):
            usage = obj.estimate_usage(duration_s)
            model = obj.provider_stats.model
            lines.append(EstimateLine(stage, model, usage, cost(usage, find_price(prices, model))))
    return Estimate(lines)
