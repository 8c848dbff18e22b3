"""transcribe=faster_whisper on real speech: ``../shared/media/jfk.flac`` through videodub's
own ingest and transcribe stages, in this process (skipped where the file is absent); a blip
that Whisper doubts is speech, flagged in segments.json."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from videodub.api import compose_job, dub
from videodub.model import JobContext
from videodub.plugins import collect
from videodub.recognition import SUSPECT_NO_SPEECH
from videodub.testing.samples import speak

# The reference text in ../shared/media/README.md.
JFK_REFERENCE = ("And so, my fellow Americans, ask not what your country can do for you; "
                 "ask what you can do for your country.")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


@pytest.mark.needs_jfk
def test_jfk_transcription(jfk_flac, tmp_path):
    """Real speech, through videodub's own ingest and transcribe stages."""
    job = compose_job([f"input={jfk_flac}", "target_lang=en", "transcribe.model=bundled"])
    registry = collect()

    def stage(name):
        return registry.get(name, job.stages[name].impl).create(job.stages[name])

    ctx = JobContext(tmp_path, "en", None)
    media = stage("ingest").ingest(jfk_flac, ctx)
    assert media.duration == pytest.approx(11.0, abs=0.2)
    assert not media.has_video
    segments = list(stage("transcribe").transcribe(media, ctx))
    assert ctx.source_lang == "en"
    assert all(0 <= s.start < s.end <= media.duration for s in segments), segments
    heard = " ".join(s.source_text for s in segments)
    assert words(heard) == words(JFK_REFERENCE), heard


def test_a_blip_whisper_doubts_is_speech_is_flagged_in_segments_json(tmp_path):
    """A 0.18 s scrap of a spoken "Oh" in 8 s of faint noise: tiny.en hears a word but gives
    the segment a no-speech probability over 0.6, so it is flagged `suspect_no_speech`, and
    the flag is in the job's segments.json."""
    rate = 16000
    voice, voice_rate = speak("Oh.")
    blip = resample_poly(voice, rate, voice_rate)[:int(0.18 * rate)]
    audio = np.random.default_rng(7).standard_normal(8 * rate) * 0.003
    audio[2 * rate:2 * rate + len(blip)] += blip
    wav = tmp_path / "blip.wav"
    soundfile.write(str(wav), audio.astype(np.float32), rate, subtype="PCM_16")

    run_dir = tmp_path / "run"
    # Without voice-activity detection the blip is decoded in a window of near silence.
    dub([f"input={wav}", "target_lang=en", "translate=none", "transcribe.model=bundled",
         "transcribe.vad=false", f"cache_dir={tmp_path / 'cache'}"], run_dir)

    segments = json.loads((run_dir / "segments.json").read_text(encoding="utf-8"))["segments"]
    assert segments, "tiny.en heard nothing in the blip"
    for seg in segments:
        assert seg["extra"]["no_speech_prob"] > SUSPECT_NO_SPEECH, segments
        assert "suspect_no_speech" in seg["flags"], segments


def test_a_window_of_clear_speech_whisper_doubts_is_still_dubbed(tmp_path):
    """A talk with 0.15 s pauses: tiny.en gave its first window a no-speech probability of
    0.62, one figure for all its lines, though each line was confident (log-prob -0.2). Read
    alone, that figure left nine of twelve lines in the original language; every line is
    dubbed."""
    from videodub.testing.samples import ENGLISH_TALK, make_talk

    talk = tmp_path / "dense.mp4"
    make_talk(talk, ENGLISH_TALK * 2, pause=0.15)
    run_dir = tmp_path / "run"
    dub([f"input={talk}", "target_lang=en", "translate=none", "profile=speed",
         f"cache_dir={tmp_path / 'cache'}"], run_dir)
    segments = json.loads((run_dir / "segments.json").read_text(encoding="utf-8"))["segments"]
    assert len(segments) >= 10
    assert [s["id"] for s in segments if s["audio_path"] is None] == [], [
        (s["extra"], s["flags"]) for s in segments]


@pytest.mark.slow
def test_long_media_transcribed_in_windows_says_what_it_says_whole(tmp_path):
    """A 75 s talk recognised in 30 s windows (cut in its pauses) gives the words of the
    whole-file run, with times on the input's own clock, in order."""
    from videodub.testing.samples import ENGLISH_TALK, make_talk

    talk = tmp_path / "long.m4a"
    script = make_talk(talk, ENGLISH_TALK * 3, pause=1.0, video=False)
    registry = collect()

    def run(window):
        job = compose_job([f"input={talk}", "target_lang=en", "transcribe.model=bundled",
                           f"transcribe.window_s={window}"])
        opts = job.stages["transcribe"]
        ctx = JobContext(tmp_path / f"run{window}", "en", None)
        media = registry.get("ingest", "local").create(job.stages["ingest"]).ingest(talk, ctx)
        return list(registry.get("transcribe", opts.impl).create(opts).transcribe(media, ctx))

    whole, windowed = run(0), run(30)
    assert script[-1].end > 65
    heard = [w for s in windowed for w in words(s.source_text)]
    expected = [w for s in whole for w in words(s.source_text)]
    common = len(set(heard) & set(expected)) / len(set(expected))
    assert common >= 0.9, (heard, expected)
    starts = [s.start for s in windowed]
    assert starts == sorted(starts) and windowed[-1].end > 60
    # Each line is heard where it was spoken, on the input's clock (a window's offset lost or
    # added would move a third of them by 30 s); Whisper may join two lines into one segment.
    for line in script:
        over = [s for s in windowed if s.start < line.end + 0.5 and s.end > line.start - 0.5]
        assert over, f"nothing recognised over {line.start:.1f}-{line.end:.1f} s ({line.text!r})"


@pytest.mark.parametrize("profile, window", [("speed", 0), ("balanced", 30)])
def test_voice_activity_found_while_ingest_writes_changes_nothing_recognised(
        tmp_path, talk_factory, profile, window):
    """The stage finds the speech as ingest writes it (videodub.recognition.StreamingVad);
    what it recognises is what faster-whisper's own vad_filter gives over each finished
    window, to the word and the millisecond (word times in balanced)."""
    from faster_whisper.audio import decode_audio

    from videodub.recognition import audio_windows
    from videodub.testing.samples import ENGLISH_TALK

    talk = talk_factory(tmp_path / "media", "two.m4a", ENGLISH_TALK * 2, pause=1.0, video=False)
    job = compose_job([f"input={talk.path}", "target_lang=en", "transcribe.model=bundled",
                       f"profile={profile}", f"transcribe.window_s={window}"])
    registry = collect()
    opts = job.stages["transcribe"]
    ctx = JobContext(tmp_path / "run", "en", None)
    media = registry.get("ingest", "local").create(job.stages["ingest"]).ingest(talk.path, ctx)
    stage = registry.get("transcribe", opts.impl).create(opts)
    got = [(s.start, s.end, s.source_text, s.extra.get("words")) for s in
           stage.transcribe(media, ctx)]

    _, model = stage._choose_model(ctx)  # the very model the stage used
    words_on = profile != "speed"
    expected = []
    for offset, audio in audio_windows(media.speech_audio, float(window)):
        if window:
            assert len(audio) < len(decode_audio(str(media.speech_audio)))  # really cut
        segments, _ = model.transcribe(
            audio, language="en", beam_size=1 if profile == "speed" else 2,
            word_timestamps=words_on, vad_filter=True, condition_on_previous_text=False,
            vad_parameters={"min_silence_duration_ms": opts.vad_min_silence_ms})
        for s in segments:
            start, end = (s.words[0].start, s.words[-1].end) if words_on else (s.start, s.end)
            ws = ([[round(offset + w.start, 3), round(offset + w.end, 3), w.word.strip()]
                   for w in s.words] if words_on else None)
            expected.append((round(offset + start, 3), round(offset + end, 3), s.text.strip(),
                             ws))
    assert len(got) >= 6 and got == expected
