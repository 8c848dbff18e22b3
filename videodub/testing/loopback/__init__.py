"""A small OpenAI-compatible HTTP server that runs on this machine, for tests, benchmarks and
trying provider configurations offline.

Code that talks to OpenAI-style providers has to cope with far more than the happy path: rate
limits, slow answers, 5xx errors, dropped connections, and models that return JSON with an item
missing or cut off. A hosted API produces those rarely and never on demand, costs money and
needs a network. This server answers the same routes with deterministic, cheap results, and
misbehaves exactly when told to, so client code can be exercised end to end through the real
``openai`` SDK::

    with LoopbackServer(rpm={"chat": 60}, latency={"speech": 0.05}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-anything")
        server.faults.push("chat", "429", "truncated")   # the next two chat requests misbehave
        ...
        server.stats()["chat"]["status"]                  # {"429": 1, "200": 1, ...}

or from a shell, until Ctrl-C: ``python -m videodub.testing.loopback [--host H] [--port 8000]
[--latency ROUTE=S] [--rpm ROUTE=N] [--tpm ROUTE=N] [--api-key-env NAME]
[--transcriber regions|whisper]`` (the key is read from the environment variable named, so it
never shows in a process list).

Routes (all under ``/v1``):

- ``GET /models``, ``GET /models/{id}``: the configured model ids.
- ``POST /audio/transcriptions`` (multipart): the upload is decoded with PyAV; segments are
  the voiced regions found by frame energy, labelled with lines of a script (``~`` and ``%``
  at the start of a line make it doubtful: low log-probability, high compression ratio), or
  real ``tiny.en`` Whisper output with ``transcriber="whisper"``. Formats: json, text, srt,
  vtt, verbose_json.
- ``POST /chat/completions``: "translates" the ``lines`` of a JSON user message word by word
  into Spanish from a small dictionary, honouring ``max_chars``; answers structured JSON when
  ``response_format`` asks for it.
- ``POST /audio/speech``: a voiced tone whose length follows the text (15 characters per
  second, divided by ``speed``) as pcm, wav, flac, mp3, opus or aac.

Knobs: an API key (401 with a masked key otherwise), per-route latency, requests- and
tokens-per-minute limits with OpenAI's 429 body and ``x-ratelimit-*`` headers, an upload size
limit (413), and faults (scripted or random with a seed): HTTP errors (a 429 with a chosen
``Retry-After``: ``retry_after_s``), errors whose message echoes the request's key as a
misbehaving gateway might (``400_echo_key``, ``500_echo_key``), a stall, a non-JSON body, a
dropped connection, and for chat, translations with an id missing or repeated, cut off
(``finish_reason="length"``) or wrapped in prose. Every request is recorded (``requests``) and
counted per route (``stats()``: statuses, peak concurrency, bytes, tokens, characters, audio).

Modules: ``server`` (the server, its records and counters), ``handler`` (HTTP), ``routes``
with ``transcripts``, ``chat`` and ``audio`` (the answers), ``faults`` (error bodies and
injected faults), ``limits`` (rpm/tpm), ``__main__`` (the command line).
"""

from videodub.testing.loopback.audio import (
    SPEECH_RATE,
    TRANSCRIPTION_RATE,
    decode_audio,
    encode_speech,
    synthesize_speech,
    voiced_regions,
)
from videodub.testing.loopback.chat import FIXED_REPLY, prompt_tokens, translate
from videodub.testing.loopback.faults import (
    CHAT_FAULTS,
    KEY_ECHO_FAULTS,
    ROUTES,
    STATUS_FAULTS,
    TRANSPORT_FAULTS,
    ApiError,
    Faults,
    format_duration,
    mask_key,
)
from videodub.testing.loopback.server import (
    DEFAULT_MODELS,
    DEFAULT_SCRIPT,
    OPENAI_UPLOAD_LIMIT,
    LoopbackServer,
    RequestRecord,
)

__all__ = [
    "CHAT_FAULTS", "DEFAULT_MODELS", "DEFAULT_SCRIPT", "FIXED_REPLY", "KEY_ECHO_FAULTS",
    "OPENAI_UPLOAD_LIMIT", "ROUTES", "SPEECH_RATE", "STATUS_FAULTS", "TRANSCRIPTION_RATE",
    "TRANSPORT_FAULTS", "ApiError", "Faults", "LoopbackServer", "RequestRecord", "decode_audio",
    "encode_speech", "format_duration", "mask_key", "prompt_tokens", "synthesize_speech",
    "translate", "voiced_regions",
]
