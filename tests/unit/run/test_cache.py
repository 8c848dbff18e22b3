"""What is kept between runs and when it is reused: cache keys, file fingerprints, the
:class:`Cache` store, and the three wrappers the runner puts around transcribe, translate and
tts (:func:`with_cache`).

The stages here are tiny fakes that count their calls, so "answered from the cache" means
the inner stage was not called at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import soundfile

from videodub.config import Effort, transport
from videodub.model import JobContext, MediaInfo, Segment
from videodub.run.cache import (
    Cache,
    CachedSynthesizer,
    CachedTranscriber,
    CachedTranslator,
    file_fingerprint,
    key,
    with_cache,
)

MiB = 2**20


@dataclass
class FakeOptions:
    # Changes the result: part of every cache key.
    voice: str = "calm"
    # Changes only how the result is fetched: never part of a key.
    workers: int = transport(0)


def ctx_in(folder: Path, target: str = "es", source: str | None = "en") -> JobContext:
    return JobContext(folder, target, source)


def files_in(folder: Path) -> list[str]:
    """The files under ``folder`` but the cache's lock (``videodub.cachefiles``), which stays."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.relative_to(folder).as_posix() != ".lock")


# -- keys and fingerprints -------------------------------------------------------------

def test_key_is_stable_and_changes_with_every_part():
    parts = ("clip", {"voice": "calm", "speed": 1.0}, "es", "Hola.")
    assert key(*parts) == key(*parts)
    assert len(key(*parts)) == 32
    # The order of a dict's keys is not part of what it says.
    assert key("clip", {"speed": 1.0, "voice": "calm"}, "es", "Hola.") == key(*parts)
    changed = [("translation", *parts[1:]),
               ("clip", {"voice": "warm", "speed": 1.0}, "es", "Hola."),
               ("clip", {"voice": "calm", "speed": 1.1}, "es", "Hola."),
               ("clip", parts[1], "de", "Hola."),
               ("clip", parts[1], "es", "Hola!"),
               parts[:3]]
    assert len({key(*parts), *(key(*other) for other in changed)}) == len(changed) + 1


def test_key_reads_options_enums_and_paths_by_value():
    assert key(FakeOptions()) == key({"voice": "calm", "workers": 0})
    assert key(Effort.high) == key("high")
    assert key(Path("/media/talk.mp4")) == key("/media/talk.mp4")
    with pytest.raises(TypeError):
        key(object())


def test_file_fingerprint_follows_size_and_content_at_both_ends(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, 3 * MiB, dtype=np.uint8).tobytes()
    original = tmp_path / "talk.mp4"
    original.write_bytes(data)
    copy = tmp_path / "elsewhere" / "copy.mp4"
    copy.parent.mkdir()
    copy.write_bytes(data)
    assert file_fingerprint(original) == file_fingerprint(copy)  # the content, not the path

    def fingerprint_of(content: bytes) -> str:
        path = tmp_path / "variant.mp4"
        path.write_bytes(content)
        return file_fingerprint(path)

    first_byte = bytes([data[0] ^ 1]) + data[1:]
    last_byte = data[:-1] + bytes([data[-1] ^ 1])
    longer = data + b"\0"
    for variant in (first_byte, last_byte, longer):
        assert fingerprint_of(variant) != file_fingerprint(original)
    small = tmp_path / "small.wav"
    small.write_bytes(b"RIFF tiny")
    assert file_fingerprint(small) != fingerprint_of(b"RIFF tinY")


# -- the store -------------------------------------------------------------------------

def test_json_entries_round_trip_and_leave_no_temporary_file(tmp_path):
    cache = Cache(tmp_path / "cache")
    data = {"language": "en", "segments": [{"id": 0, "text": "¡Hola!"}]}
    cache.put_json("transcripts", "k1", data)
    assert cache.get_json("transcripts", "k1") == data
    assert cache.get_json("transcripts", "k2") is None
    assert cache.get_json("translations", "k1") is None  # kinds do not share entries
    cache.put_json("transcripts", "k1", {"language": "de"})  # a rewrite replaces it
    assert cache.get_json("transcripts", "k1") == {"language": "de"}
    assert files_in(tmp_path / "cache") == ["transcripts/k1.json"]


def test_a_corrupt_entry_reads_as_a_miss(tmp_path):
    cache = Cache(tmp_path)
    cache.put_json("transcripts", "k", {"segments": []})
    (tmp_path / "transcripts" / "k.json").write_text('{"segments": [', encoding="utf-8")
    assert cache.get_json("transcripts", "k") is None
    (tmp_path / "transcripts" / "k.json").write_bytes(b"\xff\xfe\x00garbage")
    assert cache.get_json("transcripts", "k") is None


def test_file_entries_keep_their_suffix_and_a_failed_copy_keeps_the_old_entry(tmp_path):
    cache = Cache(tmp_path / "cache")
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"first clip")
    cache.put_file("clips", "k", clip)
    stored = cache.get_file("clips", "k", ".wav")
    assert stored == tmp_path / "cache" / "clips" / "k.wav"
    assert stored.read_bytes() == b"first clip"
    assert cache.get_file("clips", "k", ".mp3") is None
    with pytest.raises(FileNotFoundError):
        cache.put_file("clips", "k", tmp_path / "vanished.wav")
    assert stored.read_bytes() == b"first clip"
    assert files_in(tmp_path / "cache") == ["clips/k.wav"]


def test_a_disabled_cache_stores_and_finds_nothing(tmp_path):
    cache = Cache(None)
    assert not cache.enabled
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"clip")
    cache.put_json("transcripts", "k", {"a": 1})
    cache.put_file("clips", "k", clip)
    assert cache.get_json("transcripts", "k") is None
    assert cache.get_file("clips", "k", ".wav") is None
    assert files_in(tmp_path) == ["clip.wav"]


# -- transcripts -----------------------------------------------------------------------

class CountingTranscriber:
    """Three segments; detects English; counts how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, media: MediaInfo, ctx: JobContext) -> Iterator[Segment]:
        self.calls += 1
        ctx.source_lang = "en"
        for i in range(3):
            yield Segment(id=i, start=float(i), end=i + 0.8, source_text=f"Line {i}.")


def media_of(path: Path) -> MediaInfo:
    return MediaInfo(path=path, duration=3.0, has_video=False, audio_streams=1,
                     audio_codec="pcm_s16le", video_codec=None, speech_audio=path,
                     full_audio=path)


@pytest.fixture
def talk_file(tmp_path) -> Path:
    path = tmp_path / "talk.wav"
    path.write_bytes(b"RIFF a talk" * 100)
    return path


def transcribe(inner, cache: Cache, options, media: MediaInfo, folder: Path,
               source_lang: str | None = None, on_hit=lambda: None):
    wrapper = CachedTranscriber(inner, cache, options, source_lang, on_hit)
    ctx = ctx_in(folder, source=source_lang)
    return list(wrapper.transcribe(media, ctx)), ctx


def test_a_second_transcription_is_answered_from_the_cache(tmp_path, talk_file):
    cache, inner, hits = Cache(tmp_path / "cache"), CountingTranscriber(), []
    first, _ = transcribe(inner, cache, FakeOptions(), media_of(talk_file), tmp_path / "a",
                          on_hit=lambda: hits.append(True))
    assert inner.calls == 1 and hits == []
    again, ctx = transcribe(inner, cache, FakeOptions(), media_of(talk_file), tmp_path / "b",
                            on_hit=lambda: hits.append(True))
    assert inner.calls == 1, "the transcriber ran again"
    assert hits == [True]
    assert ctx.source_lang == "en"  # the detected language comes back with the transcript
    assert [s.to_json() for s in again] == [s.to_json() for s in first]


def test_result_options_input_and_language_miss_but_transport_options_hit(tmp_path, talk_file):
    cache, inner = Cache(tmp_path / "cache"), CountingTranscriber()
    media = media_of(talk_file)
    transcribe(inner, cache, FakeOptions(), media, tmp_path / "run")
    transcribe(inner, cache, FakeOptions(workers=8), media, tmp_path / "run")
    assert inner.calls == 1  # pool size changes how, not what
    transcribe(inner, cache, FakeOptions(voice="other"), media, tmp_path / "run")
    assert inner.calls == 2
    transcribe(inner, cache, FakeOptions(), media, tmp_path / "run", source_lang="de")
    assert inner.calls == 3
    talk_file.write_bytes(b"RIFF another talk" * 100)
    transcribe(inner, cache, FakeOptions(), media, tmp_path / "run")
    assert inner.calls == 4


def test_audio_that_starts_after_the_picture_is_timed_apart(tmp_path, talk_file):
    """A transcript is timed on the picture's timeline; one kept before that (without the
    audio's delay: key as for an input without one) is not reused for a delayed input."""
    cache, inner = Cache(tmp_path / "cache"), CountingTranscriber()
    transcribe(inner, cache, FakeOptions(), media_of(talk_file), tmp_path / "run")
    late = media_of(talk_file)
    late.extra["audio_delay_s"] = 1.5
    transcribe(inner, cache, FakeOptions(), late, tmp_path / "run")
    assert inner.calls == 2
    transcribe(inner, cache, FakeOptions(), late, tmp_path / "run")
    assert inner.calls == 2  # and reused as such


class DoubtingTranscriber(CountingTranscriber):
    """Lines as a transcript cached under the old rule kept them: every line of a window
    flagged ``suspect_no_speech`` from its no-speech probability alone."""

    def transcribe(self, media: MediaInfo, ctx: JobContext) -> Iterator[Segment]:
        self.calls += 1
        ctx.source_lang = "en"
        for i, text in enumerate(["Welcome to this short talk about videos.", "Oh"]):
            yield Segment(id=i, start=float(i), end=i + 0.8, source_text=text,
                          flags=["suspect_no_speech"],
                          extra={"avg_logprob": -0.2, "no_speech_prob": 0.62})


def test_a_cached_transcript_is_reread_with_the_current_no_speech_rule(tmp_path, talk_file):
    """Reused, not paid for again, and no longer doubting a confident line (its figures are
    kept with it); a one-word line the window doubts stays doubtful."""
    cache, inner = Cache(tmp_path / "cache"), DoubtingTranscriber()
    transcribe(inner, cache, FakeOptions(), media_of(talk_file), tmp_path / "a")
    again, _ = transcribe(inner, cache, FakeOptions(), media_of(talk_file), tmp_path / "b")
    assert inner.calls == 1
    assert [s.flags for s in again] == [[], ["suspect_no_speech"]]


def test_a_transcript_from_the_cache_keeps_the_regions_by_voice(tmp_path, talk_file):
    """A rerun gives the same speech regions as the first run: by voice, when the transcriber
    would have run Silero (it did not run, so it could not say so itself)."""
    from videodub import voice_activity

    class VoiceTranscriber(CountingTranscriber):
        finds_voice = True

    cache, inner = Cache(tmp_path / "cache"), VoiceTranscriber()
    media = media_of(talk_file)
    transcribe(inner, cache, FakeOptions(), media, tmp_path / "a")
    assert str(talk_file.resolve()) not in voice_activity._by_voice  # the fake runs none
    transcribe(inner, cache, FakeOptions(), media, tmp_path / "b")
    assert inner.calls == 1
    assert str(talk_file.resolve()) in voice_activity._by_voice


def test_a_transcript_not_read_to_the_end_is_not_kept(tmp_path, talk_file):
    cache, inner = Cache(tmp_path / "cache"), CountingTranscriber()
    wrapper = CachedTranscriber(inner, cache, FakeOptions(), None)
    segments = wrapper.transcribe(media_of(talk_file), ctx_in(tmp_path / "run"))
    next(segments), next(segments)
    segments.close()  # what a cancelled job does to the generator
    assert not (tmp_path / "cache" / "transcripts").exists()
    transcribe(inner, cache, FakeOptions(), media_of(talk_file), tmp_path / "run")
    assert inner.calls == 2


# -- translation batches ---------------------------------------------------------------

class ResumableFake:
    """Translates by tagging the text; remembers batches answered from the cache."""

    batch_size = 2

    def __init__(self) -> None:
        self.calls = 0
        self.remembered: list[list[int]] = []

    def translate(self, segments: list[Segment], ctx: JobContext) -> list[Segment]:
        self.calls += 1
        return [replace(s, target_text=f"[{ctx.target_lang}] {s.source_text}") for s in segments]

    def remember(self, segments: list[Segment]) -> None:
        self.remembered.append([s.id for s in segments])


class PlainFake:
    batch_size = None

    def translate(self, segments: list[Segment], ctx: JobContext) -> list[Segment]:
        return segments


def batch() -> list[Segment]:
    return [Segment(id=4, start=4.0, end=5.0, source_text="Hello."),
            Segment(id=5, start=5.5, end=6.0, source_text="Bye.")]


def test_a_cached_batch_is_not_paid_twice_and_the_translator_still_hears_of_it(tmp_path):
    cache, inner = Cache(tmp_path / "cache"), ResumableFake()
    wrapper = CachedTranslator(inner, cache, FakeOptions())
    assert wrapper.batch_size == 2
    first = wrapper.translate(batch(), ctx_in(tmp_path))
    assert inner.calls == 1 and inner.remembered == []
    again = CachedTranslator(inner, cache, FakeOptions(workers=4)).translate(
        batch(), ctx_in(tmp_path))
    assert inner.calls == 1, "the batch was sent again"
    assert inner.remembered == [[4, 5]]  # later batches still get these lines as context
    assert [s.target_text for s in again] == ["[es] Hello.", "[es] Bye."]
    assert [s.to_json() for s in again] == [s.to_json() for s in first]


def test_a_batch_misses_for_other_text_timing_languages_or_options(tmp_path):
    cache, inner = Cache(tmp_path / "cache"), ResumableFake()
    CachedTranslator(inner, cache, FakeOptions()).translate(batch(), ctx_in(tmp_path))
    moved = batch()
    moved[1].end = 6.5
    reworded = batch()
    reworded[0].source_text = "Hello!"
    runs = [(FakeOptions(), moved, "es", "en"), (FakeOptions(), reworded, "es", "en"),
            (FakeOptions(), batch(), "de", "en"), (FakeOptions(), batch(), "es", "fr"),
            (FakeOptions(voice="warm"), batch(), "es", "en")]
    for options, segments, target, source in runs:
        CachedTranslator(inner, cache, options).translate(segments,
                                                          ctx_in(tmp_path, target, source))
    assert inner.calls == 1 + len(runs)
    assert inner.remembered == []


# -- clips -----------------------------------------------------------------------------

class ToneSynth:
    """Writes a tone whose length follows the rate into the job's work folder."""

    rate = 16000

    def __init__(self, write: bool = True) -> None:
        self.calls = 0
        self.write = write

    def synthesize(self, segment: Segment, ctx: JobContext) -> Segment:
        self.calls += 1
        if not self.write:
            return segment
        seconds = 0.5 / segment.tts_rate
        audio = 0.1 * np.sin(np.arange(int(seconds * self.rate)) / 5).astype(np.float32)
        path = ctx.work_dir / f"clip{segment.id}.wav"
        soundfile.write(str(path), audio, self.rate)
        segment.audio_path, segment.synth_duration = str(path), seconds
        segment.extra["tone_clip"] = str(path)
        return segment


def line(text: str = "Hola.", rate: float = 1.0) -> Segment:
    return Segment(id=1, start=1.0, end=2.0, source_text="Hello.", target_text=text, tts_rate=rate)


def test_a_clip_is_kept_in_the_cache_and_reused(tmp_path):
    cache, inner = Cache(tmp_path / "cache"), ToneSynth()
    ctx = ctx_in(tmp_path / "run")
    made = CachedSynthesizer(inner, cache, FakeOptions()).synthesize(line(), ctx)
    # The segment points at the cache's copy, which outlives the run's work folder.
    assert Path(made.audio_path).parent == tmp_path / "cache" / "clips"
    assert "clip_cached" not in made.flags
    reused = CachedSynthesizer(inner, cache, FakeOptions(workers=3)).synthesize(line(), ctx)
    assert inner.calls == 1, "the clip was synthesized again"
    assert reused.audio_path == made.audio_path
    assert reused.flags == ["clip_cached"]
    assert reused.synth_duration == pytest.approx(0.5, abs=1e-3)


def test_a_clip_pruned_as_soon_as_it_is_kept_leaves_the_line_its_own_file(tmp_path):
    # Pruning that ignores leases (another version, a hand-run rm) may take the entry at once.
    cache, inner = Cache(tmp_path / "cache"), ToneSynth()
    ctx = ctx_in(tmp_path / "run")
    cache.get_file = lambda *a, **k: None  # type: ignore[method-assign]
    made = CachedSynthesizer(inner, cache, FakeOptions()).synthesize(line(), ctx)
    assert made.audio_path == str(ctx.work_dir / "clip1.wav")
    assert soundfile.info(made.audio_path).duration == pytest.approx(0.5, abs=1e-3)


def test_a_clip_made_earlier_in_the_same_job_is_reused_but_not_called_cached(tmp_path):
    # The voice probe synthesizes a line that the tts stage asks for again: paid once, in
    # this job, so it is not "cached" from an earlier run.
    cache, inner = Cache(tmp_path / "cache"), ToneSynth()
    synth, ctx = CachedSynthesizer(inner, cache, FakeOptions()), ctx_in(tmp_path / "run")
    synth.synthesize(line(), ctx)
    again = synth.synthesize(line(), ctx)
    assert inner.calls == 1 and "clip_cached" not in again.flags
    # What the synthesizer recorded on the line comes back with the clip (voicefx's base clip).
    assert again.extra["tone_clip"] == str(ctx.work_dir / "clip1.wav")


def test_a_clip_misses_for_other_text_language_rate_or_voice(tmp_path):
    cache, inner = Cache(tmp_path / "cache"), ToneSynth()
    CachedSynthesizer(inner, cache, FakeOptions()).synthesize(line(), ctx_in(tmp_path / "run"))
    # The rate is kept to three decimals: a difference below that is the same clip.
    CachedSynthesizer(inner, cache, FakeOptions()).synthesize(line(rate=1.0001),
                                                              ctx_in(tmp_path / "run"))
    assert inner.calls == 1
    runs = [(FakeOptions(), line("Adiós."), "es"), (FakeOptions(), line(rate=1.25), "es"),
            (FakeOptions(), line(), "pt"), (FakeOptions(voice="warm"), line(), "es")]
    for options, segment, target in runs:
        CachedSynthesizer(inner, cache, options).synthesize(segment,
                                                            ctx_in(tmp_path / "run", target))
    assert inner.calls == 1 + len(runs)
    assert len(files_in(tmp_path / "cache")) == 1 + len(runs)


def test_a_line_without_a_clip_stores_nothing(tmp_path):
    cache, inner = Cache(tmp_path / "cache"), ToneSynth(write=False)
    out = CachedSynthesizer(inner, cache, FakeOptions()).synthesize(line(""), ctx_in(tmp_path))
    assert out.audio_path is None
    assert not (tmp_path / "cache").exists()


# -- which stages are wrapped ----------------------------------------------------------

STAGE_NAMES = ("ingest", "transcribe", "translate", "align", "tts", "mix", "mux")


def stages_with(translator) -> dict[str, object]:
    stages = {name: object() for name in STAGE_NAMES}
    stages.update(transcribe=CountingTranscriber(), translate=translator, tts=ToneSynth())
    return stages


def test_with_cache_wraps_transcribe_tts_and_only_a_resumable_translator(tmp_path):
    options = {name: FakeOptions() for name in STAGE_NAMES}
    cache = Cache(tmp_path)
    plain = stages_with(PlainFake())
    wrapped = with_cache(plain, options, cache, "en", lambda: None)
    assert isinstance(wrapped["transcribe"], CachedTranscriber)
    assert wrapped["transcribe"].inner is plain["transcribe"]
    assert isinstance(wrapped["tts"], CachedSynthesizer)
    assert wrapped["translate"] is plain["translate"]  # a free translator is not cached
    for name in ("ingest", "align", "mix", "mux"):
        assert wrapped[name] is plain[name]
    assert plain["transcribe"] is not wrapped["transcribe"]  # the caller's dict is untouched
    resumable = stages_with(ResumableFake())
    wrapped = with_cache(resumable, options, cache, "en", lambda: None)
    assert isinstance(wrapped["translate"], CachedTranslator)
    assert wrapped["translate"].inner is resumable["translate"]


def test_with_cache_wraps_nothing_when_the_cache_is_off(tmp_path):
    stages = stages_with(ResumableFake())
    options = {name: FakeOptions() for name in STAGE_NAMES}
    wrapped = with_cache(stages, options, Cache(None), "en", lambda: None)
    assert wrapped == stages and wrapped is not stages


def test_the_transcript_hit_callback_is_the_one_given(tmp_path, talk_file):
    options = {name: FakeOptions() for name in STAGE_NAMES}
    hits: list[bool] = []
    cache = Cache(tmp_path / "cache")
    for _ in range(2):
        stages = with_cache(stages_with(PlainFake()), options, cache, None,
                            lambda: hits.append(True))
        list(stages["transcribe"].transcribe(media_of(talk_file), ctx_in(tmp_path / "run")))
    assert hits == [True]
    stored = json.loads(next((tmp_path / "cache" / "transcripts").glob("*.json")).read_text())
    assert stored["language"] == "en" and len(stored["segments"]) == 3


def test_every_byte_of_a_file_up_to_two_mib_counts(tmp_path):
    """Between one and two MiB, the bytes after the first MiB are part of the fingerprint."""
    data = bytes(range(256)) * (6 * 1024)  # 1.5 MiB
    path = tmp_path / "talk.mp4"
    path.write_bytes(data)
    before = file_fingerprint(path)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert file_fingerprint(path) != before
    path.write_bytes(data[: MiB + 10] + b"x" + data[MiB + 11:])
    assert file_fingerprint(path) != before


class FlacSynth(ToneSynth):
    """A voice that writes FLAC clips."""

    def synthesize(self, segment: Segment, ctx: JobContext) -> Segment:
        segment = super().synthesize(segment, ctx)
        flac = Path(segment.audio_path).with_suffix(".flac")
        audio, rate = soundfile.read(segment.audio_path)
        soundfile.write(str(flac), audio, rate)
        segment.audio_path = str(flac)
        return segment


def test_a_clip_in_another_format_is_reused_too(tmp_path):
    cache, inner = Cache(tmp_path / "cache"), FlacSynth()
    ctx = ctx_in(tmp_path / "run")
    made = CachedSynthesizer(inner, cache, FakeOptions()).synthesize(line(), ctx)
    assert made.audio_path.endswith(".flac")
    reused = CachedSynthesizer(inner, cache, FakeOptions()).synthesize(line(), ctx)
    assert inner.calls == 1, "a cached .flac clip was synthesized again"
    assert reused.audio_path == made.audio_path and reused.flags == ["clip_cached"]
