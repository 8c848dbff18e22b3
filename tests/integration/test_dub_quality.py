"""Dub quality on real runs: lines too long for their slots are shortened by the translator
(translate=openai against the loopback server) or reported, never overlapped; suspect lines
keep the original; the quality section is in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import openai_overrides

from videodub.api import dub
from videodub.model import Segment
from videodub.run.quality import measure, summary_line


def chat_bodies(server) -> list[dict]:
    return [r.body for r in server.requests if r.body is not None and "messages" in r.body]


SPACED_LINES = [("Hello and welcome to the talk.", ""), ("Today we look at a video.", ""),
                ("Thank you for watching the talk.", "")]


@pytest.fixture(scope="module")
def spaced_lines(tmp_path_factory, talk_factory):
    """Three lines with long pauses: Whisper gives one segment each."""
    return talk_factory(tmp_path_factory.mktemp("spaced"), "spaced.mp4", SPACED_LINES,
                        pause=1.6, video=False)


@pytest.mark.slow
def test_lines_that_do_not_fit_are_shortened_or_reported_never_overlapped(loopback, spaced_lines,
                                                                         tmp_path):
    # A slow voice (80 words per minute) and no speed-up make the Spanish lines longer than
    # their slots, however Whisper cuts the lines.
    result = dub([f"input={spaced_lines.path}", "target_lang=es", "profile=balanced",
                  f"cache_dir={tmp_path / 'cache'}", "runner.display=quiet",
                  *openai_overrides(loopback, ("translate",)), "tts.words_per_minute=80", "align.max_speed=1.0"],
                 run_dir=tmp_path / "run")
    segments = result.segments
    shortened = [s for s in segments if "shortened" in s.flags]
    assert shortened, [(s.target_text, s.flags) for s in segments]
    for s in shortened:
        assert len(s.target_text) < len(s.extra["longer_text"])
        assert len(s.target_text) <= s.extra["char_budget"]
    # Each shortening was one more chat request, with the line's budget in it.
    budgets = [line["max_chars"] for body in chat_bodies(loopback)
               for line in json.loads(body["messages"][-1]["content"])["lines"]]
    assert all(s.extra["char_budget"] in budgets for s in shortened)
    quality = result.report["quality"]
    assert quality["overlaps"]["count"] == 0
    still_over = {s.id for s in segments if s.overflow > 0.05}
    assert still_over == set(quality["overflow"]["line_ids"])
    for a, b in zip(segments, segments[1:]):
        assert b.extra["placed_start"] >= a.extra["placed_end"]
    assert quality["cut_at_end_s"] == 0.0


@pytest.mark.slow
def test_translators_that_cannot_shorten_decline_and_the_overflow_is_reported(four_lines,
                                                                            tmp_path):
    result = dub([f"input={four_lines.path}", "target_lang=en", "translate=none",
                  "profile=balanced", "mix.original_voice=remove", "cache=false",
                  "runner.display=quiet", "tts.words_per_minute=90", "align.max_speed=1.1"],
                 run_dir=tmp_path / "run")
    declined = [s for s in result.segments if "shorten_declined" in s.flags]
    assert declined
    quality = result.report["quality"]
    assert quality["overlaps"]["count"] == 0
    assert quality["overflow"]["lines"] >= 1
    assert set(quality["overflow"]["line_ids"]) == {s.id for s in result.segments
                                                    if s.overflow > 0.05}


def hand_made_dub(tmp_path, background_gain_db: float = 0.0):
    """A source with speech at known times and a dub track with clips placed 40 ms late, one
    line cut short of its slot, and the original left in one gap: (segments, media, ctx)."""
    import soundfile

    from videodub.model import JobContext, MediaInfo

    rate = 16000
    t = np.arange(10 * rate) / rate
    source = 0.001 * np.random.default_rng(0).standard_normal(len(t))
    for s, e in ((1.0, 3.0), (5.0, 7.0)):
        source[(t >= s) & (t < e)] += 0.3 * np.sin(2 * np.pi * 180 * t[(t >= s) & (t < e)])
    dub_track = np.zeros_like(source)
    dub_track[(t >= 1.04) & (t < 2.5)] = 0.2 * np.sin(2 * np.pi * 300 * t[(t >= 1.04) & (t < 2.5)])
    dub_track[(t >= 5.04) & (t < 7.0)] = 0.2 * np.sin(2 * np.pi * 300 * t[(t >= 5.04) & (t < 7.0)])
    background = source.copy()
    background[(t >= 5.0) & (t < 7.1)] = 0.0  # removed under the second line only
    for name, audio in (("speech16k.wav", source), ("speech_track.wav", dub_track),
                        ("background.wav", background)):
        soundfile.write(str(tmp_path / name), audio.astype(np.float32), rate, subtype="FLOAT")
    media = MediaInfo(path=tmp_path / "in.wav", duration=10.0, has_video=False, audio_streams=1,
                      audio_codec=None, video_codec=None, speech_audio=tmp_path / "speech16k.wav",
                      full_audio=tmp_path / "background.wav", sample_rate=rate)
    ctx = JobContext(tmp_path / "run", "es", "en")
    ctx.artifacts.update(speech_track=tmp_path / "speech_track.wav",
                         background=tmp_path / "background.wav",
                         background_gain_db=background_gain_db)
    segs = []
    for i, (s, e, end) in enumerate(((1.0, 3.0, 2.5), (5.0, 7.0, 7.0))):
        seg = Segment(i, s, e, target_text="x", slot_start=s, slot_end=e, audio_path="clip",
                      synth_duration=end - s - 0.04, tts_rate=1.0, stretch=1.0)
        seg.extra.update(placed_start=s + 0.04, placed_end=end)
        segs.append(seg)
    return segs, media, ctx


def test_the_quality_of_a_hand_made_dub(tmp_path):
    q = measure(*hand_made_dub(tmp_path))
    assert q["onset_error"]["n"] == 2
    assert q["onset_error"]["max_ms"] == pytest.approx(40, abs=11)
    voice = q["original_voice"]
    # 0.5 s of the first line's speech has no dub over it, and the original is still there.
    assert voice["uncovered_source_speech_s"] == pytest.approx(0.5 + 0.04 * 2, abs=0.05)
    assert voice["original_in_gaps_db"] > -10
    assert q["overlaps"]["count"] == 0 and q["speed"]["sped_up_though_fit"] == 0
    assert summary_line(q).startswith("quality: onset p95")


def test_lines_not_dubbed_lead_the_summary(tmp_path):
    """Every other figure is measured on the dubbed lines: a line left in the original (a
    doubtful one) must not hide behind a perfect onset and speed."""
    segs, media, ctx = hand_made_dub(tmp_path)
    segs[1].audio_path, segs[1].flags = None, ["suspect_no_speech", "kept_original"]
    q = measure(segs, media, ctx)
    assert (q["lines"], q["dubbed"]) == (2, 1)
    assert summary_line(q).startswith("quality: 1 of 2 lines not dubbed, onset p95")


SYNC_RATE = 16000


def sync_of(tmp_path, source: np.ndarray, dub_track: np.ndarray,
            lines: list[tuple[float, float]]) -> dict:
    """The ``onset_error`` figures of a source and a dub track (16 kHz, 6 s) with one dubbed
    clip placed on each ``(start, end)`` line."""
    import soundfile

    from videodub.model import JobContext, MediaInfo

    for name, audio in (("speech16k.wav", source), ("speech_track.wav", dub_track)):
        soundfile.write(str(tmp_path / name), audio.astype(np.float32), SYNC_RATE,
                        subtype="FLOAT")
    media = MediaInfo(path=tmp_path / "in.wav", duration=6.0, has_video=False, audio_streams=1,
                      audio_codec=None, video_codec=None, speech_audio=tmp_path / "speech16k.wav",
                      full_audio=tmp_path / "speech16k.wav", sample_rate=SYNC_RATE)
    ctx = JobContext(tmp_path / "run", "es", "en")
    ctx.artifacts.update(speech_track=tmp_path / "speech_track.wav")
    segs = []
    for i, (s, e) in enumerate(lines):
        seg = Segment(i, s, e, target_text="x", slot_start=s, slot_end=e, audio_path="clip",
                      synth_duration=e - s, tts_rate=1.0, stretch=1.0)
        seg.extra.update(placed_start=s, placed_end=e)
        segs.append(seg)
    return measure(segs, media, ctx)["onset_error"]


@pytest.mark.parametrize("dub_soft_s, error_ms", [(0.09, 0), (0.0, -90), (0.15, 60)])
def test_sync_is_measured_from_the_first_strong_sound_of_each_voice(tmp_path, dub_soft_s,
                                                                     error_ms):
    """The speaker's line opens with 90 ms of a soft fricative (30 dB under the vowel); the
    dub's clip starts at the same onset, opening softly for ``dub_soft_s``: what a listener
    hears start together is the two vowels, so the error is the difference of the soft parts
    (a clip that opens on its vowel is heard 90 ms early), not of the onsets (0 for all)."""
    rng = np.random.default_rng(0)
    t = np.arange(6 * SYNC_RATE) / SYNC_RATE

    def line(audio: np.ndarray, at: float, soft: float, freq: float) -> None:
        fricative = (t >= at) & (t < at + soft)
        audio[fricative] += 0.3 * 10 ** (-30 / 20) * rng.standard_normal(int(fricative.sum()))
        vowel = (t >= at + soft) & (t < at + 1.5)
        audio[vowel] += 0.3 * np.sin(2 * np.pi * freq * t[vowel])

    source = 0.001 * rng.standard_normal(len(t))
    dub_track = np.zeros_like(source)
    line(source, 1.0, 0.09, 180)
    line(dub_track, 1.0, dub_soft_s, 300)
    onset = sync_of(tmp_path, source, dub_track, [(1.0, 2.5)])
    assert onset["max_ms"] == pytest.approx(abs(error_ms), abs=11)
    assert onset["worst_lines_ms"]["0"] == pytest.approx(error_ms, abs=11)


def test_a_clip_that_follows_the_one_before_closely_is_measured_from_its_own_start(tmp_path):
    """Two dub clips 80 ms apart (the placement's gap), each on its speaker's line: the second
    line's error is its own (0), not the start of the clip before it (-200 ms, before)."""
    t = np.arange(6 * SYNC_RATE) / SYNC_RATE
    source = 0.001 * np.random.default_rng(0).standard_normal(len(t))
    dub_track = np.zeros_like(source)
    lines = [(1.0, 2.92), (3.0, 4.5)]
    for audio, freq in ((source, 180), (dub_track, 300)):
        for s, e in lines:
            inside = (t >= s) & (t < e)
            audio[inside] += 0.3 * np.sin(2 * np.pi * freq * t[inside])
    onset = sync_of(tmp_path, source, dub_track, lines)
    assert onset["n"] == 2
    assert onset["max_ms"] <= 11, onset


def test_the_figures_from_tracks_read_in_blocks_are_those_of_the_whole_tracks(tmp_path,
                                                                               monkeypatch):
    """The tracks are measured a block at a time; short blocks that do not divide the tracks
    give exactly the figures of one block as long as the media."""
    from videodub import speech_regions

    def figures(blocks: int) -> dict:
        monkeypatch.setattr(speech_regions, "BLOCK_FRAMES", blocks)
        folder = tmp_path / str(blocks)
        folder.mkdir()
        q = measure(*hand_made_dub(folder, background_gain_db=-4.0))
        del q["measure_s"]
        return q

    whole = figures(10_000)  # 1000 frames in all
    assert whole["original_voice"]["original_in_gaps_db"] is not None
    assert figures(37) == whole


@pytest.mark.slow
def test_the_quality_profile_makes_both_ways_out_and_keeps_the_cheaper(loopback, spaced_lines,
                                                                       tmp_path):
    # The slow voice again: every line is too long for its slot even at the quality cap, so
    # each gets a rerated and a shortened clip, side by side (no speed-up: the rerated one
    # runs long by all it needs).
    result = dub([f"input={spaced_lines.path}", "target_lang=es", "profile=quality",
                  f"cache_dir={tmp_path / 'cache'}", "runner.display=quiet",
                  *openai_overrides(loopback, ("translate",)), "tts.words_per_minute=80",
                  "align.max_speed=1.0"],
                 run_dir=tmp_path / "run")
    compared = [s for s in result.segments if "candidate_costs" in s.extra]
    assert compared, [(s.target_text, s.flags) for s in result.segments]
    for s in compared:
        assert "placed_start" in s.extra  # the line the mixer placed is the job's line
        costs, won = s.extra["candidate_costs"], s.extra["candidate"]
        assert set(costs) == {"rerated", "shortened"} and costs[won] == min(costs.values())
        assert ("shortened" in s.flags) == (won == "shortened")
    figures = result.report["quality"]["candidates"]
    assert figures["compared"] == len(compared)
    assert sum(figures["won"].values()) >= len(compared)
    assert "side by side on" in summary_line(result.report["quality"])
    # Both were paid for: a shortening request per compared line went to the translator.
    budgets = [line["max_chars"] for body in chat_bodies(loopback)
               for line in json.loads(body["messages"][-1]["content"])["lines"]]
    assert all(s.extra["char_budget"] in budgets for s in compared)
    assert result.report["quality"]["overlaps"]["count"] == 0


def test_the_figures_from_levels_measured_while_mixing_are_those_of_the_tracks(tmp_path):
    """The streaming mix measures its two tracks as it lays them instead of writing them:
    the same figures as from the 16-bit files, pieces of any length."""
    import soundfile

    from videodub.speech_regions import LevelMeter

    for folder in ("files", "levels"):
        (tmp_path / folder).mkdir()
    from_files = measure(*hand_made_dub(tmp_path / "files", background_gain_db=-4.0))
    segs, media, ctx = hand_made_dub(tmp_path / "levels", background_gain_db=-4.0)
    for name, key in (("speech_track", "speech_levels"), ("background", "background_levels")):
        path = ctx.artifacts.pop(name)
        audio, rate = soundfile.read(str(path), dtype="float32")
        meter = LevelMeter(rate)
        for piece in np.array_split(audio, 17):
            meter.add(piece)
        ctx.artifacts[key] = meter.levels()
    from_levels = measure(segs, media, ctx)
    for q in (from_files, from_levels):
        del q["measure_s"]
    assert from_levels["original_voice"]["original_in_gaps_db"] is not None
    assert from_levels == from_files
