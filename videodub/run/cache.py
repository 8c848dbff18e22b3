"""What a job keeps between runs, and when it reuses it: transcripts, paid translation
batches and speech clips.

:class:`Cache` is content-addressed: keys hash everything a result depends on (the input,
the options that change the result, the languages, the text), so a changed option or input
never reuses a stale entry, while options that only change how a result is fetched (pool
sizes, timeouts, rate limits: ``config.transport`` fields) do not invalidate it. Entries are
written under a temporary name and renamed, so an interrupted run leaves either a whole entry
or none.

The policy lives in three wrappers the runner puts around the stages (:func:`with_cache`);
changing what is cached, or how, happens here and nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from enum import Enum
from pathlib import Path
from typing import Any

from collections.abc import Callable, Iterator

from videodub import voice_activity
from videodub.cachefiles import use
from videodub.config import result_options
from videodub.errors import is_no_space, no_space
from videodub.media import atomic_path, write_json_atomic
from videodub.model import (
    JobContext,
    MediaInfo,
    ReadsGrowingSpeech,
    ResumableTranslator,
    Segment,
    Synthesizer,
    Transcriber,
)
from videodub.recognition import reread_no_speech


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(repr(obj))


def key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=_default).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def file_fingerprint(path: Path) -> str:
    """A fast fingerprint: size plus hashes of the first and the last MiB (every byte of a
    file up to 2 MiB)."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        if size > 1 << 20:
            f.seek(-min(1 << 20, size - (1 << 20)), os.SEEK_END)
            h.update(f.read(1 << 20))
    return h.hexdigest()[:32]


class Cache:
    def __init__(self, root: Path | None) -> None:
        self.root = root

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _path(self, kind: str, k: str, suffix: str) -> Path:
        assert self.root is not None
        return self.root / kind / f"{k}{suffix}"

    def get_json(self, kind: str, k: str) -> Any | None:
        if not self.enabled:
            return None
        path = self._path(kind, k, ".json")
        # Marked as used first: pruning keeps it while this job runs (videodub.cachefiles).
        if not use(self.root, path):
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put_json(self, kind: str, k: str, data: Any) -> None:
        if self.enabled:
            with self._space(kind):
                write_json_atomic(self._path(kind, k, ".json"), data)

    @contextlib.contextmanager
    def _space(self, kind: str) -> Iterator[None]:
        """A full disk under the cache named as such (the job's own folder may have room)."""
        try:
            yield
        except OSError as exc:
            if is_no_space(exc):
                raise no_space(exc, f"caching {kind}", self.root) from exc
            raise

    def get_file(self, kind: str, k: str, suffix: str | None = None) -> Path | None:
        """The entry's file; with no ``suffix``, whatever format it was stored in."""
        if not self.enabled:
            return None
        if suffix is None:
            assert self.root is not None
            # Temporary names start with a dot, so a half-written entry is never found.
            found = sorted((self.root / kind).glob(f"{k}.*"))
            return found[0] if found and use(self.root, found[0]) else None
        path = self._path(kind, k, suffix)
        return path if use(self.root, path) else None

    def put_file(self, kind: str, k: str, src: Path) -> None:
        if not self.enabled:
            return
        with self._space(kind), atomic_path(self._path(kind, k, src.suffix)) as tmp:
            shutil.copyfile(src, tmp)


class CachedTranscriber:
    """A transcript is reused for the same input file, options and source language."""

    def __init__(self, inner: Transcriber, cache: Cache, options: Any, source_lang: str | None,
                 on_hit: Callable[[], None] = lambda: None) -> None:
        self.inner, self.cache, self.options = inner, cache, options
        self.source_lang = source_lang
        self.on_hit = on_hit

    @property
    def reads_growing_speech(self) -> bool:
        return isinstance(self.inner, ReadsGrowingSpeech) and self.inner.reads_growing_speech

    def transcribe(self, media: MediaInfo, ctx: JobContext) -> Iterator[Segment]:
        # The delay of the audio behind the picture is part of the key only where there is
        # one (older transcripts of such inputs were timed from the audio's own start).
        # So is the audio track, where it is not the first.
        delay = media.extra.get("audio_delay_s")
        ck = key("transcript", file_fingerprint(media.path), result_options(self.options),
                 self.source_lang, *([{"audio_delay_s": delay}] if delay else []),
                 *([{"audio_stream": media.audio_stream}] if media.audio_stream else []))
        hit = self.cache.get_json("transcripts", ck)
        if hit is not None:
            self.on_hit()
            if getattr(self.inner, "finds_voice", False):  # as the transcriber would have
                voice_activity.by_voice(media.speech_audio)
            ctx.source_lang = hit["language"]
            yield from (reread_no_speech(Segment.from_json(s)) for s in hit["segments"])
            return
        produced: list[Segment] = []
        for seg in self.inner.transcribe(media, ctx):
            produced.append(seg)
            yield seg
        # Only a whole transcript is kept: a cancelled job never gets here.
        if produced:
            self.cache.put_json("transcripts", ck, {
                "language": ctx.source_lang or self.source_lang,
                "segments": [s.to_json() for s in produced]})


class CachedTranslator:
    """A paid translator's batches are kept, so an interrupted run pays for each once."""

    def __init__(self, inner: ResumableTranslator, cache: Cache, options: Any) -> None:
        self.inner, self.cache, self.options = inner, cache, options

    @property
    def batch_size(self) -> int | None:
        return self.inner.batch_size  # type: ignore[attr-defined]

    def translate(self, segments: list[Segment], ctx: JobContext) -> list[Segment]:
        ck = key("translation", result_options(self.options), ctx.source_lang, ctx.target_lang,
                 [(s.start, s.end, s.source_text) for s in segments])
        hit = self.cache.get_json("translations", ck)
        if hit is not None:
            self.inner.remember(segments)  # later batches still get these lines as context
            return [Segment.from_json(d) for d in hit]
        result = self.inner.translate(segments, ctx)  # type: ignore[attr-defined]
        self.cache.put_json("translations", ck, [s.to_json() for s in result])
        return result


class CachedSynthesizer:
    """A clip is reused for the same text, language, rate and voice options."""

    def __init__(self, inner: Synthesizer, cache: Cache, options: Any) -> None:
        self.inner, self.cache, self.options = inner, cache, options
        # Clips this job paid for (the voice probe's line, asked for again by the tts
        # stage): reused with what the synthesizer recorded on the line (a plugin's extras),
        # and not "cached" from an earlier run.
        self._made_here: dict[str, dict[str, Any]] = {}

    def synthesize(self, segment: Segment, ctx: JobContext) -> Segment:
        import soundfile

        ck = key("clip", result_options(self.options), ctx.target_lang, segment.target_text,
                 round(segment.tts_rate, 3))
        hit = self.cache.get_file("clips", ck)  # a tts may write wav, flac, mp3 ...
        if hit is not None:
            segment.audio_path = str(hit)
            segment.synth_duration = round(soundfile.info(str(hit)).duration, 4)
            if ck in self._made_here:
                segment.extra.update(self._made_here[ck])
            else:
                segment.flags.append("clip_cached")
            return segment
        before = set(segment.extra)
        segment = self.inner.synthesize(segment, ctx)
        if segment.audio_path:
            suffix = Path(segment.audio_path).suffix
            self._made_here[ck] = {k: v for k, v in segment.extra.items() if k not in before}
            self.cache.put_file("clips", ck, Path(segment.audio_path))
            kept = self.cache.get_file("clips", ck, suffix)
            if kept is not None:  # else pruned already (by a tool that ignores leases)
                segment.audio_path = str(kept)
        return segment


def with_cache(stages: dict[str, Any], options: dict[str, Any], cache: Cache,
               source_lang: str | None, on_transcript_hit: Callable[[], None]) -> dict[str, Any]:
    """The stages as the job runs them: the cacheable ones wrapped in their cache policy."""
    if not cache.enabled:
        return dict(stages)
    wrapped = dict(stages)
    wrapped["transcribe"] = CachedTranscriber(stages["transcribe"], cache, options["transcribe"],
                                              source_lang, on_transcript_hit)
    if isinstance(stages["translate"], ResumableTranslator):
        wrapped["translate"] = CachedTranslator(stages["translate"], cache, options["translate"])
    wrapped["tts"] = CachedSynthesizer(stages["tts"], cache, options["tts"])
    return wrapped


__all__ = ["Cache", "key", "file_fingerprint", "with_cache"]
