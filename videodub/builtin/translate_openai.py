"""translate=openai: batched chat completions with a strict JSON schema keyed by segment id.

One request translates ``batch_size`` lines (the profile sets it). Each line carries a
``max_chars`` budget from its time slot (its own duration plus the pause after it, at
``chars_per_second``), so the translation fits before align has to speed it up; the lines
before the batch go along as context, with the optional glossary and style note.

The answer must name every id of the batch exactly once with non-empty text. Lines that
come back once are kept; missing or repeated ids are asked again on their own, and a
truncated or unparseable answer is split in half and each half retried. A line that fails
``repair_attempts`` times stops the job: nothing is silently left untranslated. Batches run
concurrently, as many as the endpoint's ``max_in_flight`` allows.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

from videodub import hookimpl
from videodub.errors import VideodubError
from videodub.languages import name_of
from videodub.model import JobContext, JobScope, Segment, WorkerHint
from videodub.providers.openai_api import OpenAIOptions, OpenAIProvider, RetryableError
from videodub.providers.usage import Usage

SCHEMA = {
    "type": "object",
    "properties": {
        "translations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "text": {"type": "string"}},
                "required": ["id", "text"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["translations"],
    "additionalProperties": False,
}

# Rough sizes for estimates and the tokens-per-minute budget.
CHARS_PER_TOKEN = 4
TOKENS_PER_LINE_OVERHEAD = 12  # id, max_chars and JSON punctuation, each way


@dataclass
class OpenAITranslateOptions(OpenAIOptions):
    # A chat model that supports structured outputs (json_schema); for local servers, their name.
    model: str = "gpt-4o-mini"
    # Lines before each batch sent as context.
    context_lines: int = 3
    # Characters of speech per second of slot, for each line's length budget.
    chars_per_second: float = 15.0
    # Terms to keep or translate a fixed way: {"source term": "target term"}.
    glossary: dict[str, str] = field(default_factory=dict)
    # A note on register and tone (e.g. "informal, for teenagers").
    style: str = ""
    # null leaves the model's default (some models accept only their default).
    temperature: Optional[float] = None
    # Ask for json_schema (strict) output; false uses json_object for servers without it.
    strict_schema: bool = True
    # Attempts per line before the job stops.
    repair_attempts: int = 4

    def __post_init__(self) -> None:
        if self.context_lines < 0:
            raise ValueError(f"context_lines must be >= 0, got {self.context_lines}")
        if not 5 <= self.chars_per_second <= 40:
            raise ValueError(f"chars_per_second must be 5-40, got {self.chars_per_second}")
        if self.repair_attempts < 1:
            raise ValueError(f"repair_attempts must be >= 1, got {self.repair_attempts}")


class BadBatch(RetryableError):
    """The answer cannot be used as a whole (truncated, not JSON, wrong shape)."""


def system_prompt(source: str, target: str, glossary: dict[str, str], style: str) -> str:
    lines = [
        f"You translate the spoken lines of a video from {source} to {target} for dubbing.",
        "Return exactly one translation for every id in \"lines\", with the same ids; add none.",
        "Each line has max_chars, the most characters its translation may have to be spoken in "
        "the time the speaker took: stay within it, preferring natural, shorter phrasing over a "
        "literal translation.",
        "\"context\" holds the lines before; it is for meaning only and is not translated.",
        "Write speech: no notes, brackets or explanations.",
    ]
    if style:
        lines.append(f"Style: {style}")
    if glossary:
        lines.append("Glossary (use these translations): "
                     + "; ".join(f"{k} -> {v}" for k, v in glossary.items()))
    return "\n".join(lines)


class OpenAITranslator:
    """Being a ResumableTranslator (``remember``), its finished batches are kept by the
    runner, so an interrupted run pays for each batch once."""

    def __init__(self, options: OpenAITranslateOptions) -> None:
        self.options = options
        # The translate stage's batch_size (the profile sets it); options built by hand for a
        # test may lack the stage's keys.
        self.batch_size = getattr(options, "batch_size", 16)
        self.provider = OpenAIProvider("translate", options, "chat", options.model)
        self.provider_stats = self.provider.stats
        self._seen: list[Segment] = []  # every line so far, for context
        self._lock = threading.Lock()
        self.repairs = 0

    def attach(self, scope: JobScope) -> None:
        self.provider.attach(scope)

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=False, memory_mb=5, max_concurrency=self.options.max_in_flight,
                          reason=f"translate.max_in_flight at {self.provider.stats.endpoint}")

    def check(self, ctx: JobContext) -> None:
        self.provider.check(ctx.cancel_event)

    def estimate_usage(self, duration_s: float) -> Usage:
        # ~1 line per 3.5 s of media at ~12 characters of speech per second.
        lines = max(1, round(duration_s / 3.5))
        chars = duration_s * 12
        batches = math.ceil(lines / (self.batch_size or lines))
        prompt = len(system_prompt("English", "Spanish", self.options.glossary, self.options.style))
        context = self.options.context_lines * chars / lines
        tokens_in = (chars + batches * (prompt + context + len(json.dumps(SCHEMA)))) / CHARS_PER_TOKEN
        tokens_in += lines * TOKENS_PER_LINE_OVERHEAD
        tokens_out = chars * 1.15 / CHARS_PER_TOKEN + lines * TOKENS_PER_LINE_OVERHEAD
        return Usage(tokens_in=int(tokens_in), tokens_out=int(tokens_out), calls=batches)

    # -- the stage -------------------------------------------------------------------------
    def remember(self, segments: list[Segment]) -> list[Segment]:
        """Keep these lines as context for later batches; returns the lines before them."""
        with self._lock:
            first = segments[0] if segments else None
            before = [s for s in self._seen if first is not None and s.start < first.start]
            self._seen.extend(segments)
        return before

    def translate(self, segments: list[Segment], ctx: JobContext) -> list[Segment]:
        before = self.remember(segments)
        context = [s.source_text for s in before[-self.options.context_lines:]] \
            if self.options.context_lines else []
        todo = [s for s in segments if s.source_text.strip()]
        for seg in segments:
            if not seg.source_text.strip():
                seg.target_text = ""
        budgets = {s.id: self.budget(s, segments) for s in todo}
        if todo:
            texts = self.provider.run(self._translate(todo, budgets, context, ctx),
                                      ctx.cancel_event)
            for seg in todo:
                seg.target_text = texts[seg.id]
                seg.extra["max_chars"] = budgets[seg.id]
                if len(seg.target_text) > budgets[seg.id] * 1.25:
                    seg.flags.append("over_length_budget")
        return segments

    def shorten(self, segment: Segment, max_chars: int, ctx: JobContext) -> str | None:
        """The line translated again within ``max_chars`` (its clip did not fit even at the
        speed cap): one request through the same retries and repairs as a batch."""
        if not segment.source_text.strip() or max_chars < 1:
            return None
        probe = Segment(id=segment.id, start=segment.start, end=segment.end,
                        source_text=segment.source_text)
        texts = self.provider.run(self._translate([probe], {probe.id: max_chars}, [], ctx),
                                  ctx.cancel_event)
        text = texts.get(probe.id, "").strip()
        return text or None

    def budget(self, seg: Segment, batch: list[Segment]) -> int:
        """Characters that fit the line's slot: its duration and up to 1 s of following pause."""
        later = [s.start for s in batch if s.start >= seg.end and s is not seg]
        pause = min(1.0, min(later) - seg.end) if later else 0.3
        return max(8, int((seg.duration + max(0.0, pause)) * self.options.chars_per_second))

    async def _translate(self, todo: list[Segment], budgets: dict[int, int], context: list[str],
                         ctx: JobContext) -> dict[int, str]:
        done: dict[int, str] = {}
        attempts = {s.id: 0 for s in todo}
        queue: list[list[Segment]] = [todo]
        while queue:
            results = await asyncio.gather(*(self._ask(b, budgets, context, ctx) for b in queue),
                                           return_exceptions=True)
            next_round: list[list[Segment]] = []
            for batch, result in zip(queue, results):
                if isinstance(result, VideodubError):
                    raise result
                if isinstance(result, BaseException) and not isinstance(result, BadBatch):
                    raise result
                if isinstance(result, BadBatch):
                    failed = batch
                    reason = str(result)
                else:
                    done.update(result)
                    failed = [s for s in batch if s.id not in result]
                    reason = "ids missing or repeated in the answer"
                if not failed:
                    continue
                self.repairs += 1
                for seg in failed:
                    attempts[seg.id] += 1
                    if attempts[seg.id] >= self.options.repair_attempts:
                        raise VideodubError(
                            f"translate: {self.options.model} gave no usable translation for line "
                            f"{seg.id} ({seg.source_text[:40]!r}) in {attempts[seg.id]} attempts: "
                            f"{reason}")
                if isinstance(result, BadBatch) and len(failed) > 1:
                    half = len(failed) // 2
                    next_round += [failed[:half], failed[half:]]
                else:
                    next_round.append(failed)
                self.provider.stats.notes.append(
                    f"batch of {len(batch)} repaired: {reason} ({len(failed)} lines asked again)")
            queue = next_round
        return done

    async def _ask(self, batch: list[Segment], budgets: dict[int, int], context: list[str],
                   ctx: JobContext) -> dict[int, str]:
        """One request; the ids that came back exactly once with text, or BadBatch."""
        opts = self.options
        source = name_of(ctx.source_lang) if ctx.source_lang else "the spoken language"
        user = {"context": context,
                "lines": [{"id": s.id, "text": s.source_text, "max_chars": budgets[s.id]}
                          for s in batch]}
        messages = [{"role": "system", "content": system_prompt(
                        source, name_of(ctx.target_lang), opts.glossary, opts.style)},
                    {"role": "user", "content": json.dumps(user, ensure_ascii=False)}]
        if opts.strict_schema:
            response_format: dict[str, Any] = {"type": "json_schema", "json_schema": {
                "name": "translations", "strict": True, "schema": SCHEMA}}
        else:
            response_format = {"type": "json_object"}
        kwargs: dict[str, Any] = {"model": opts.model, "messages": messages,
                                  "response_format": response_format}
        if opts.temperature is not None:
            kwargs["temperature"] = opts.temperature
        estimate = (sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN
                    + sum(budgets[s.id] for s in batch) // CHARS_PER_TOKEN
                    + TOKENS_PER_LINE_OVERHEAD * len(batch))

        async def send(client):
            return await client.chat.completions.with_raw_response.create(**kwargs)

        def parse(raw) -> tuple[dict[int, str], int]:
            completion = raw.parse()
            if not completion.choices:
                raise RetryableError("the answer has no choices")
            usage = completion.usage
            used = (usage.prompt_tokens + usage.completion_tokens) if usage else estimate
            if usage:
                self.provider.stats.add(tokens_in=usage.prompt_tokens,
                                        tokens_out=usage.completion_tokens)
            choice = completion.choices[0]
            content = choice.message.content or ""
            if choice.finish_reason == "length":
                return BadBatch(f"truncated at {len(content)} characters (finish_reason=length)"), used
            try:
                items = json.loads(content)["translations"]
                pairs = [(int(it["id"]), str(it["text"]).strip()) for it in items]
            except (ValueError, KeyError, TypeError) as exc:
                return BadBatch(f"not the requested JSON ({type(exc).__name__})"), used
            return _exactly_once(pairs, {s.id for s in batch}), used

        result, _used = await self.provider.request(
            send, parse, what=f"translating {len(batch)} lines", tokens=estimate,
            used_tokens=lambda r: r[1])
        if isinstance(result, BadBatch):
            raise result
        return result


def _exactly_once(pairs: list[tuple[int, str]], wanted: set[int]) -> dict[int, str]:
    counts: dict[int, int] = {}
    for i, _ in pairs:
        counts[i] = counts.get(i, 0) + 1
    return {i: text for i, text in pairs if i in wanted and counts[i] == 1 and text}


@hookimpl
def register_translators(register):
    register("openai", OpenAITranslator, OpenAITranslateOptions,
             description="Chat completions (OpenAI or compatible), batched, strict JSON by id.")
