"""tts=openai: OpenAI speech (``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts``) or a compatible server.

Each line is one request, and requests run concurrently up to the endpoint's
``max_in_flight`` (the rate limiter, not the pool, is what bounds them). align's rate for
the line becomes the request's ``speed``, kept within the API's 0.25-4.0 (the SDK does not
check it; the API answers 400). A line over 4096 characters is split at sentence ends, the
parts synthesized concurrently and joined. ``instructions`` (voice direction) only go to
models that take them (``gpt-4o-mini-tts``). Audio arrives as raw 24 kHz PCM (``pcm``) or
WAV and is written as a WAV clip with its leading and trailing silence trimmed.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass

import numpy as np

from videodub import hookimpl
from videodub.audio import trim_silence
from videodub.config import Effort
from videodub.errors import VideodubError
from videodub.model import JobContext, JobScope, Segment, WorkerHint
from videodub.providers.openai_api import OpenAIOptions, OpenAIProvider, RetryableError, is_openai
from videodub.providers.usage import Usage

MAX_INPUT_CHARS = 4096
MIN_SPEED, MAX_SPEED = 0.25, 4.0
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                 "shimmer", "verse", "marin", "cedar")
MODELS_WITHOUT_INSTRUCTIONS = ("tts-1",)  # tts-1 and tts-1-hd
# Characters a second of the fastest speech at speed 1 (fast speakers reach about 20): a clip
# shorter than its text allows at this pace is not that text's speech.
MAX_CHARS_PER_S = 40.0
_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s+")


@dataclass
class OpenAITTSOptions(OpenAIOptions):
    # auto: tts-1-hd for effort=high, tts-1 otherwise; or tts-1, tts-1-hd, gpt-4o-mini-tts,
    # or a local server's model name (e.g. kokoro on speaches).
    model: str = "auto"
    # alloy, ash, ballad, coral, echo, fable, onyx, nova, sage, shimmer, verse, marin, cedar
    # at OpenAI; any name a local server knows.
    voice: str = "alloy"
    # pcm (raw 16-bit, sample_rate Hz, mono) or wav.
    response_format: str = "pcm"
    # Sample rate of pcm answers (OpenAI and speaches send 24000).
    sample_rate: int = 24000
    # Base speed; align's per-line rate multiplies it (the product is kept within 0.25-4.0).
    speed: float = 1.0
    # Voice direction for gpt-4o-mini-tts (e.g. "calm, warm narrator"); ignored by tts-1.
    instructions: str = ""
    # Characters per request; longer lines are split at sentence ends (the API's limit is 4096).
    max_input_chars: int = MAX_INPUT_CHARS

    def __post_init__(self) -> None:
        if self.response_format not in ("pcm", "wav"):
            raise ValueError(f"response_format must be pcm or wav, got {self.response_format!r}")
        if not MIN_SPEED <= self.speed <= MAX_SPEED:
            raise ValueError(f"speed must be {MIN_SPEED}-{MAX_SPEED}, got {self.speed}")
        if not 8000 <= self.sample_rate <= 96000:
            raise ValueError(f"sample_rate must be 8000-96000, got {self.sample_rate}")
        if not 1 <= self.max_input_chars <= MAX_INPUT_CHARS:
            raise ValueError(f"max_input_chars must be 1-{MAX_INPUT_CHARS}, got {self.max_input_chars}")
        if not self.voice:
            raise ValueError("voice must be set")


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at sentence ends where possible, else at
    spaces, else anywhere."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > limit:  # one sentence longer than the limit: cut at a space
            cut = sentence.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            head, sentence = sentence[:cut].strip(), sentence[cut:].strip()
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        if current and len(current) + 1 + len(sentence) > limit:
            parts.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        parts.append(current)
    return [p for p in parts if p]


def clamp_speed(value: float) -> float:
    return round(min(MAX_SPEED, max(MIN_SPEED, value)), 3)


class OpenAISynthesizer:
    def __init__(self, options: OpenAITTSOptions) -> None:
        self.options = options
        self.model = options.model if options.model != "auto" else (
            "tts-1-hd" if options.effort == Effort.high else "tts-1")
        self.provider = OpenAIProvider("tts", options, "speech", self.model)
        self.provider_stats = self.provider.stats

    def attach(self, scope: JobScope) -> None:
        self.provider.attach(scope)

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=False, memory_mb=10, max_concurrency=self.options.max_in_flight,
                          reason=f"tts.max_in_flight at {self.provider.stats.endpoint}")

    def check(self, ctx: JobContext) -> None:
        opts = self.options
        if is_openai(self.provider.base_url) and opts.voice not in OPENAI_VOICES:
            raise VideodubError(f"tts.voice={opts.voice} is not an OpenAI voice; choose one of "
                                f"{', '.join(OPENAI_VOICES)}")
        self.provider.check(ctx.cancel_event)

    def estimate_usage(self, duration_s: float) -> Usage:
        chars = int(duration_s * 12 * 1.1)  # speech ~12 chars/s, translations run ~10% longer
        return Usage(chars=chars, tokens_in=chars // 4, audio_out_s=duration_s * 0.8,
                     calls=max(1, round(duration_s / 3.5)))

    def synthesize(self, segment: Segment, ctx: JobContext) -> Segment:
        import soundfile

        text = (segment.target_text or "").strip()
        clips = ctx.work_dir / "clips"
        clips.mkdir(exist_ok=True)
        path = clips / f"{segment.id:05d}.wav"
        if not text:
            audio, rate = np.zeros(0, dtype=np.int16), self.options.sample_rate
        else:
            speed = clamp_speed(self.options.speed * segment.tts_rate)
            if speed != round(self.options.speed * segment.tts_rate, 3):
                segment.flags.append("tts_speed_clamped")
            parts = split_text(text, self.options.max_input_chars)
            audio, rate = self.provider.run(self._synthesize(parts, speed, segment.id),
                                            ctx.cancel_event)
            audio = trim_silence(audio)
            if len(parts) > 1:
                segment.extra["tts_requests"] = len(parts)
        soundfile.write(str(path), audio, rate, subtype="PCM_16")
        segment.audio_path = str(path)
        segment.synth_duration = round(len(audio) / rate, 4)
        return segment

    async def _synthesize(self, parts: list[str], speed: float, seg_id: int
                          ) -> tuple[np.ndarray, int]:
        results = await asyncio.gather(*(self._request(p, speed, seg_id) for p in parts))
        rate = results[0][1]
        if any(r != rate for _, r in results):
            raise VideodubError("tts: the server answered parts of one line at different sample rates")
        pause = np.zeros(int(0.15 * rate), dtype=np.int16)
        pieces: list[np.ndarray] = []
        for i, (audio, _) in enumerate(results):
            pieces += [audio] if i == 0 else [pause, audio]
        return np.concatenate(pieces), rate

    async def _request(self, text: str, speed: float, seg_id: int) -> tuple[np.ndarray, int]:
        opts = self.options
        kwargs = {"model": self.model, "voice": opts.voice, "input": text,
                  "response_format": opts.response_format, "speed": speed}
        if opts.instructions and not self.model.startswith(MODELS_WITHOUT_INSTRUCTIONS):
            kwargs["instructions"] = opts.instructions

        async def send(client):
            return await client.audio.speech.with_raw_response.create(**kwargs)

        def parse(raw) -> tuple[np.ndarray, int]:
            data = raw.http_response.content
            kind = raw.http_response.headers.get("content-type", "").split(";")[0].strip()
            if kind.startswith("text/") or kind.endswith("json"):
                raise RetryableError(f"the answer is {kind}, not audio: {data[:60]!r}")
            if opts.response_format == "pcm":
                if len(data) % 2:
                    raise RetryableError(f"pcm answer of odd length {len(data)}")
                audio, rate = np.frombuffer(data, dtype="<i2").copy(), opts.sample_rate
            else:
                audio, rate = read_wav(data)
            check_speech(audio, rate, text, speed)
            return audio, rate

        audio, rate = await self.provider.request(send, parse, what=f"synthesizing line {seg_id}")
        # Speech answers carry no usage; token-priced models (gpt-4o-mini-tts) are charged
        # for the input text, estimated at 4 characters per token.
        self.provider.stats.add(chars=len(text), audio_out_s=len(audio) / rate,
                                tokens_in=-(-len(text) // 4))
        return audio, rate


def check_speech(audio: np.ndarray, rate: int, text: str, speed: float) -> None:
    """An answer is only taken (and cached) if it could be ``text`` spoken at ``speed``: a
    gateway's error page read as PCM decodes too, as a few milliseconds of noise."""
    seconds = len(audio) / rate
    shortest = len(text.strip()) / (MAX_CHARS_PER_S * speed)
    if seconds < shortest:
        raise RetryableError(f"{seconds:.3f} s of audio for {len(text.strip())} characters is "
                             f"too short to be their speech")


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit mono PCM from a WAV answer; streamed WAVs carry a placeholder data size
    (0xFFFFFFFF), so the data chunk is read to the end of the body."""
    import soundfile

    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RetryableError("the answer is not a WAV file")
    try:
        audio, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    except RuntimeError:
        audio, rate = _read_streamed_wav(data)
    if audio.ndim > 1:
        audio = audio.mean(axis=1).astype(np.int16)
    return audio, rate


def _read_streamed_wav(data: bytes) -> tuple[np.ndarray, int]:
    pos, rate, channels = 12, 24000, 1
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk == b"fmt ":
            channels = int.from_bytes(data[pos + 10:pos + 12], "little")
            rate = int.from_bytes(data[pos + 12:pos + 16], "little")
        if chunk == b"data":
            body = data[pos + 8:]
            body = body[: len(body) - len(body) % (2 * channels)]
            audio = np.frombuffer(body, dtype="<i2").reshape(-1, channels)
            return (audio[:, 0] if channels == 1 else audio), rate
        pos += 8 + size + (size % 2)
    raise RetryableError("the WAV answer has no data chunk")


@hookimpl
def register_tts(register):
    register("openai", OpenAISynthesizer, OpenAITTSOptions,
             description="OpenAI speech (tts-1, tts-1-hd, gpt-4o-mini-tts) or a compatible server.")
