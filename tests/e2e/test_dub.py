"""End to end: run the command line on synthesized talks and check what it really wrote.

The streams of the output video (demuxed with PyAV), the subtitle files, segments.json and
report.json, where the dubbed speech sits in the track, what Whisper hears in a re-voiced
track, and its loudness measured with ffmpeg's ``ebur128`` on the encoded track (the mixer
measures its own WAV mix before encoding): the promised -16 LUFS, or the ``mix.loudness``
asked for, and never a true peak over -1.5 dBTP. Most tests read one of two
session-wide runs (see ``conftest.py`` beside this file); they are marked ``slow``, as each
of those runs is a whole dub of the 27 s talk, and so is the three-profile sweep.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
import srt

from videodub.model import STAGES
from videodub.testing.samples import ENGLISH_TALK

TARGET_LUFS = -16.0
# The promised true-peak ceiling (mix.true_peak's default), and what ffmpeg's true-peak meter
# may read above it in the encoded track (the real dubs here measure -2.0 dBTP).
PROMISED_TRUE_PEAK = -1.5
MAX_TRUE_PEAK = PROMISED_TRUE_PEAK + 0.1
MIN_WORD_OVERLAP = 0.6


# -- helpers ---------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_overlap(expected: str, heard: str) -> float:
    """Share of the expected words (with repeats) found in what was heard."""
    want, got = Counter(words(expected)), Counter(words(heard))
    return sum((want & got).values()) / max(1, sum(want.values()))


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


def decode_audio(path: Path, track: int = 0, rate: int = 16000) -> np.ndarray:
    """One audio track of a media file as mono float32 at ``rate``."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[track]
        for frame in container.decode(stream):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32)


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated loudness LUFS, true peak dBTP) of the first audio track, by ffmpeg's ebur128
    (a mono track as dual mono: as two loudspeakers play it)."""
    import imageio_ffmpeg

    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path),
         "-map", "0:a:0", "-af", "ebur128=peak=true:dualmono=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True)
    summary = proc.stderr[proc.stderr.rindex("Summary:"):]
    integrated = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1))
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return integrated, peak


def read_srt(path: Path) -> list[srt.Subtitle]:
    return list(srt.parse(path.read_text(encoding="utf-8")))


def transcribe_array(audio: np.ndarray) -> str:
    """What the bundled Whisper model (tiny.en) hears in 16 kHz mono audio."""
    from videodub.builtin.transcribe_faster_whisper import load_model

    model = load_model("bundled", "int8", 2)
    segments, _ = model.transcribe(audio, language="en", beam_size=2, vad_filter=True)
    return " ".join(s.text.strip() for s in segments)


# -- the output video ------------------------------------------------------------------------

@pytest.mark.slow
def test_last_stdout_line_is_the_video(spanish_dub, talk):
    assert spanish_dub.video == spanish_dub.run_dir / f"{talk.path.stem}.es.mp4"
    assert spanish_dub.video.is_file()


@pytest.mark.slow
def test_video_stream_is_copied_bit_for_bit(spanish_dub, talk):
    original = video_packets(talk.path)
    dubbed = video_packets(spanish_dub.video)
    assert len(original) > 100
    assert len(dubbed) == len(original)
    differing = [i for i, (a, b) in enumerate(zip(original, dubbed)) if a != b]
    assert not differing, f"{len(differing)} packets differ, the first is packet {differing[0]}"
    with av.open(str(spanish_dub.video)) as container:
        assert [s.codec_context.name for s in container.streams.video] == ["h264"]


@pytest.mark.slow
def test_audio_and_subtitle_tracks(spanish_dub, talk):
    with av.open(str(spanish_dub.video)) as container:
        audio = list(container.streams.audio)
        subtitles = list(container.streams.subtitles)
        assert len(audio) == 2
        dub, original = audio
        assert dub.metadata.get("language") == "spa"
        assert dub.disposition & av.stream.Disposition.default
        assert original.metadata.get("language") == "eng"
        assert not original.disposition & av.stream.Disposition.default
        # The dub's subtitles shown by default, the transcript's as a second track.
        assert [s.codec_context.name for s in subtitles] == ["mov_text", "mov_text"]
        assert [s.metadata.get("language") for s in subtitles] == ["spa", "eng"]
        assert [bool(s.disposition & av.stream.Disposition.default) for s in subtitles] == [
            True, False]
        packets = [p for p in container.demux(*subtitles) if p.size > 2]
        cues = [sum(1 for p in packets if p.stream.index == s.index) for s in subtitles]
    stem = talk.path.stem
    assert cues == [len(read_srt(spanish_dub.run_dir / f"{stem}.{lang}.srt"))
                    for lang in ("es", "en")]
    dub_seconds = len(decode_audio(spanish_dub.video, 0)) / 16000
    input_seconds = len(decode_audio(talk.path, 0)) / 16000
    assert dub_seconds == pytest.approx(input_seconds, abs=0.15)
    # The second track really is the original: same length, and it correlates with the input.
    kept = decode_audio(spanish_dub.video, 1)
    source = decode_audio(talk.path, 0)
    n = min(len(kept), len(source))
    assert np.corrcoef(kept[:n], source[:n])[0, 1] > 0.95


# -- subtitles, segments, report ---------------------------------------------------------------

@pytest.mark.slow
def test_subtitle_files(spanish_dub, talk):
    stem = talk.path.stem
    english = read_srt(spanish_dub.run_dir / f"{stem}.en.srt")
    spanish = read_srt(spanish_dub.run_dir / f"{stem}.es.srt")
    assert len(english) == len(talk.script)
    for cue, line in zip(english, talk.script):
        assert word_overlap(line.text, cue.content) >= MIN_WORD_OVERLAP, (line.text, cue.content)
    # Each line whole, on at most two lines of at most 42 columns (subtitles.*).
    assert [" ".join(c.content.split("\n")) for c in spanish] == [
        line.translation for line in talk.script]
    assert any("\n" in c.content for c in spanish)
    for cue in [*english, *spanish]:
        lines = cue.content.split("\n")
        assert len(lines) <= 2 and all(len(x) <= 42 for x in lines), cue.content
    for cue, line in zip(spanish, talk.script):
        # Each cue is timed on the speech it translates.
        assert cue.start.total_seconds() < line.end and cue.end.total_seconds() > line.start


@pytest.mark.slow
def test_segments_json(spanish_dub, talk):
    align = spanish_dub.report()["job"]["options"]["align"]
    max_speed, min_speed = align["max_speed"], align["min_speed"]
    segments = spanish_dub.segments()
    assert [s["target_text"] for s in segments] == [line.translation for line in talk.script]
    previous_start = -1.0
    for seg in segments:
        assert 0 <= seg["start"] < seg["end"] <= talk.duration + 0.5, seg
        assert seg["start"] > previous_start, "segments are in time order"
        previous_start = seg["start"]
        assert seg["source_text"].strip(), seg
        assert seg["synth_duration"] > 0.3, seg
        assert seg["speed_factor"] is not None, seg
        assert min_speed - 1e-3 <= seg["speed_factor"] <= max_speed + 1e-3, seg
    for seg, line in zip(segments, talk.script):
        assert word_overlap(line.text, seg["source_text"]) >= MIN_WORD_OVERLAP, seg


@pytest.mark.slow
def test_report_json(spanish_dub, talk):
    report = spanish_dub.report()
    assert report["status"] == "ok"
    assert report["error"] is None
    job = report["job"]
    assert job["input"] == str(talk.path)
    assert (job["target_lang"], job["source_lang"], job["profile"]) == ("es", "en", "balanced")
    assert job["implementations"]["translate"] == "subtitles"
    assert job["media_duration_s"] == pytest.approx(talk.duration, abs=0.05)
    assert job["segments"] == {"source": len(talk.script), "target": len(talk.script)}
    assert set(report["stages"]) == set(STAGES)
    for name, stage in report["stages"].items():
        for key in ("wall_s", "cpu_s", "items", "workers", "peak_rss_mb"):
            assert isinstance(stage[key], (int, float)), (name, key, stage)
        assert stage["wall_s"] >= 0 and stage["cpu_s"] >= 0
        assert stage["items"] >= 1 and stage["workers"] >= 1, (name, stage)
    assert report["stages"]["tts"]["items"] == len(talk.script)
    assert report["wall_s"] > 0 and report["peak_rss_mb"] > 0
    assert report["outputs"]["video"] == spanish_dub.video.name


# -- the dubbed audio -----------------------------------------------------------------------

@pytest.mark.slow
def test_dub_speech_is_where_the_segments_are(spanish_dub):
    rate = 16000
    audio = decode_audio(spanish_dub.video, 0, rate)
    segments = spanish_dub.segments()

    def rms(mask: np.ndarray) -> float:
        return float(np.sqrt(np.mean(audio[mask] ** 2)))

    t = np.arange(len(audio)) / rate

    def clip_end(seg: dict) -> float:
        return seg["extra"]["placed_end"]

    # Away from every line (and the compressor's release after it) only the hum remains.
    near_speech = np.zeros(len(audio), dtype=bool)
    for seg in segments:
        near_speech |= (t >= seg["start"] - 0.2) & (t < max(seg["end"], clip_end(seg)) + 0.6)
    outside = ~near_speech
    assert outside.sum() > 1.0 * rate, "the talk has silence before and after its lines"
    quiet = rms(outside)
    for seg in segments:
        inside = (t >= seg["extra"]["placed_start"]) & (t < clip_end(seg))
        assert rms(inside) > 4 * quiet, (seg["target_text"], rms(inside), quiet)


@pytest.mark.slow
def test_the_dub_is_in_sync_without_overlaps_or_the_original_voice(spanish_dub, talk):
    """Checked against the talk's known sentence times, not only the run's own figures."""
    quality = spanish_dub.report()["quality"]
    assert quality["overlaps"]["count"] == 0 and quality["cut_at_end_s"] == 0.0
    assert quality["speed"]["sped_up_though_fit"] == 0
    assert quality["onset_error"]["p95_ms"] <= 120
    assert quality["original_voice"]["original_where_source_speaks_db"] <= -40
    assert quality["subtitles"]["cues"] == len(talk.script)
    assert quality["subtitles"]["longest_line_columns"] <= 42
    assert quality["subtitles"]["most_lines_a_cue"] == 2
    rate = 16000
    audio = decode_audio(spanish_dub.video, 0, rate)
    segments = spanish_dub.segments()
    for seg, line in zip(segments, talk.script):
        # The dub's speech starts within 120 ms of the speaker's.
        start = int((line.start - 0.3) * rate)
        window = np.abs(audio[start: start + int(0.8 * rate)])
        loud = np.flatnonzero(window > 0.1 * window.max())
        assert abs(start / rate + loud[0] / rate - line.start) <= 0.12, (seg, line)
        spans = sorted((s["extra"]["placed_start"], s["extra"]["placed_end"]) for s in segments)
        # Where the speaker talks and no dub plays, nothing of the original is left.
        gap_start, gap_end = seg["extra"]["placed_end"] + 0.05, line.end
        if gap_end - gap_start > 0.1 and all(e <= gap_start or s >= gap_end for s, e in spans):
            gap = audio[int(gap_start * rate): int(gap_end * rate)]
            assert float(np.sqrt(np.mean(gap ** 2))) < 1e-3, (seg, line)


@pytest.mark.slow
def test_audio_that_starts_after_the_picture_is_dubbed_in_sync_with_it(run_cli, short_talk,
                                                                      tmp_path):
    """A recording whose audio starts 1.5 s into its picture (screen and game captures,
    broadcast recordings): the output video copies the picture from its start, so each dub
    line must start where the speaker's does there, 1.5 s after the talk's own times."""
    import imageio_ffmpeg

    late = tmp_path / "late.mkv"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(short_talk.path),
                    "-itsoffset", "1.5", "-i", str(short_talk.path), "-map", "0:v", "-map",
                    "1:a", "-c", "copy", str(late)], check=True, capture_output=True, timeout=60)
    run = run_cli(f"input={late}", "target_lang=en", "translate=none", "profile=speed").check()
    rate = 16000
    audio = np.abs(decode_audio(run.video, 0, rate))  # the dub track, from the video's start
    for line in short_talk.script:
        speaker = line.start + 1.5
        window = audio[int((speaker - 0.5) * rate): int((speaker + 0.8) * rate)]
        onset = speaker - 0.5 + np.flatnonzero(window > 0.1 * window.max())[0] / rate
        assert abs(onset - speaker) <= 0.15, (line.text, onset, speaker)


@pytest.mark.slow
def test_revoiced_english_is_intelligible(english_revoice, talk):
    heard = transcribe_array(decode_audio(english_revoice.video, 0))
    script = " ".join(line.text for line in talk.script)
    assert word_overlap(script, heard) >= MIN_WORD_OVERLAP, heard


@pytest.mark.slow
@pytest.mark.parametrize("run", ["spanish_dub", "english_revoice"])
def test_dub_loudness(run, request):
    integrated, true_peak = ebur128(request.getfixturevalue(run).video)
    assert abs(integrated - TARGET_LUFS) <= 1.0, integrated
    assert true_peak <= MAX_TRUE_PEAK, true_peak


def mix_note(report: dict) -> tuple[float, float]:
    """(peak before the gain; the gain applied, dB) from the mixer's note: the true peak of the
    whole mix (two-pass), or the speech's sample peak and the first gain (streaming)."""
    (note,) = [n for n in report["notes"] if n.startswith("mix: ") and " gain " in n]
    found = (re.search(r"/ (-?[\d.]+) dBTP, gain ([-+][\d.]+) dB", note)
             or re.search(r"gain (?P<g>[-+][\d.]+) dB then .*speech peak (?P<p>-?[\d.]+) dBFS", note))
    assert found, note
    if "g" in found.groupdict():
        return float(found["p"]), float(found["g"])
    return float(found.group(1)), float(found.group(2))


@pytest.mark.slow
@pytest.mark.parametrize("run", ["spanish_dub", "english_revoice"])
def test_a_dub_whose_gain_would_clip_is_limited_under_the_promised_true_peak(run, request):
    dub = request.getfixturevalue(run)
    report = dub.report()
    mix = report["job"]["options"]["mix"]
    assert (mix["loudness"], mix["true_peak"]) == (TARGET_LUFS, PROMISED_TRUE_PEAK)
    peak, gain = mix_note(report)
    # Brought to -16 LUFS, the talk's peaks would pass the ceiling: only the limiter keeps it.
    assert peak + gain > PROMISED_TRUE_PEAK + 1.0, (peak, gain)
    integrated, true_peak = ebur128(dub.video)
    assert abs(integrated - TARGET_LUFS) <= 1.0, integrated
    assert true_peak <= MAX_TRUE_PEAK, true_peak


@pytest.mark.slow
def test_a_quieter_loudness_target_is_met_under_the_same_ceiling(run_cli, short_talk):
    run = run_cli(f"input={short_talk.path}", "target_lang=en", "translate=none",
                  "profile=speed", "mix.loudness=-23").check()
    assert run.report()["job"]["options"]["mix"]["true_peak"] == PROMISED_TRUE_PEAK
    integrated, true_peak = ebur128(run.video)
    assert abs(integrated - -23.0) <= 1.0, integrated
    assert true_peak <= MAX_TRUE_PEAK, true_peak


# -- other ways of running ----------------------------------------------------------------------

@pytest.mark.slow
def test_profile_sweep(run_cli, short_talk):
    """One multirun, three profiles: each run gets its own folder, report and speed-up cap.

    The voice is slowed down so every line must be sped up, and the profiles' different
    ``align.max_speed`` caps are what limit it.
    """
    profiles = ["quality", "balanced", "speed"]
    run = run_cli(f"input={short_talk.path}", "target_lang=en", "translate=none",
                  "tts.words_per_minute=90", f"profile={','.join(profiles)}",
                  multirun=True).check()
    run_dirs = sorted(p for p in run.run_dir.iterdir() if p.is_dir())
    assert [p.name for p in run_dirs] == ["0", "1", "2"]
    seen, caps = [], []
    for run_dir in run_dirs:
        assert (run_dir / f"{short_talk.path.stem}.en.mp4").is_file()
        report = run.report(run_dir)
        assert report["status"] == "ok"
        seen.append(report["job"]["profile"])
        cap = report["job"]["options"]["align"]["max_speed"]
        caps.append(cap)
        segments = run.segments(run_dir)
        factors = [s["speed_factor"] for s in segments]
        assert len(factors) == len(short_talk.script)
        # Within the cap, except a last line sped up further rather than cut by the media's end.
        assert all(1.0 <= s["speed_factor"] <= cap + 1e-3
                   or s["extra"].get("beyond_cap_for_media_end") for s in segments), (
            report["job"]["profile"], factors)
        assert report["quality"]["cut_at_end_s"] == 0.0
        assert max(factors) > 1.1, "the slow voice had to be sped up"
    assert sorted(seen) == sorted(profiles)
    assert len(set(caps)) == 3
    assert len({json.dumps(run.report(d)["job"]["options"], sort_keys=True)
                for d in run_dirs}) == 3
    # After the sweep, a table compares the jobs (a Hydra callback), and files in the sweep dir.
    assert "sweep summary" in run.stdout
    with (run.run_dir / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == ["0", "1", "2"]
    assert sorted(r["overrides"].split("profile=")[1].split()[0] for r in rows) == sorted(profiles)
    assert all(float(r["wall_s"]) > 0 and float(r["tts_s"]) > 0 for r in rows)
    assert (run.run_dir / "summary.html").is_file()


@pytest.mark.parametrize("suffix, codec", [(".m4a", "aac"), (".wav", "pcm_s16le")])
def test_audio_only_input(run_cli, talk_factory, tmp_path, suffix, codec):
    voice = talk_factory(tmp_path, f"voice{suffix}", ENGLISH_TALK[:2], video=False,
                         audio_codec=codec)
    run = run_cli(f"input={voice.path}", "target_lang=en", "translate=none",
                  "profile=speed").check()
    assert run.video == run.run_dir / "voice.en.m4a"
    with av.open(str(run.video)) as container:
        assert len(container.streams.video) == 0
        assert len(container.streams.audio) == 2
        assert len(container.streams.subtitles) == 1
    assert len(run.segments()) == len(voice.script)


@pytest.mark.slow
def test_rerun_reuses_completed_work(run_cli, spanish_dub, talk):
    first = spanish_dub.report()
    assert first["stages"]["transcribe"]["cached"] is False
    # At most the first line's clip came from the cache in the first run: it is what the
    # voice's speaking rate was measured on, at natural speed.
    assert sum("clip_cached" in s["flags"] for s in spanish_dub.segments()[1:]) == 0

    again = run_cli(*spanish_dub.overrides, cache_dir=spanish_dub.cache_dir).check()
    report = again.report()
    assert report["status"] == "ok"
    assert report["stages"]["transcribe"]["cached"] is True
    segments = again.segments()
    assert segments and all("clip_cached" in s["flags"] for s in segments)
    # Reused work gives the same result.
    assert [(s["start"], s["end"], s["target_text"]) for s in segments] == [
        (s["start"], s["end"], s["target_text"]) for s in spanish_dub.segments()]
    assert (again.run_dir / f"{talk.path.stem}.es.srt").read_text() == (
        spanish_dub.run_dir / f"{talk.path.stem}.es.srt").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("overrides, wanted", [
    (["profile=quality"], "small"),
    (["profile=speed", "transcribe.effort=high", "source_lang=en"], "small.en"),
], ids=["quality", "high-english"])
def test_high_effort_falls_back_to_the_bundled_model_offline(run_cli, short_talk, tmp_path,
                                                            overrides, wanted):
    """`transcribe.effort=high` (the quality profile's) with `transcribe.model=auto` asks for
    Whisper `small` (`small.en` for English); when it cannot be had (offline, not cached,
    `transcribe.download=false`) the job runs on the bundled tiny.en and says so in
    report.json's notes and in the log."""
    run = run_cli(f"input={short_talk.path}", "target_lang=en", "translate=none",
                  "transcribe.download=false", *overrides,
                  env={"HF_HOME": str(tmp_path / "empty_hf_home")}).check()

    notes = run.report()["notes"]
    fallback = [n for n in notes if n.endswith("using the bundled tiny.en model instead")]
    assert len(fallback) == 1, notes
    assert fallback[0].startswith(f"transcribe: Whisper model {wanted!r} is not available "), notes
    assert any(n.startswith("transcribe: model bundled, beam 5, ") for n in notes), notes
    log = (run.run_dir / "videodub.log").read_text(encoding="utf-8")
    assert f"Whisper model {wanted!r} is not available" in log
    assert "using the bundled tiny.en model instead" in log
    assert run.segments(), "nothing was transcribed"


def test_input_name_that_looks_like_an_ffmpeg_protocol(run_cli, short_talk, tmp_path):
    # "a:b" would be read by ffmpeg as protocol "a"; a leading dash and a space as options.
    odd = tmp_path / "a:b -x.mp4"
    odd.write_bytes(short_talk.path.read_bytes())
    run = subprocess.run([sys.executable, "-m", "videodub", "input=a:b -x.mp4", "target_lang=en",
                          "profile=speed", f"hydra.run.dir={tmp_path / 'run'}",
                          f"cache_dir={tmp_path / 'cache'}"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.splitlines()[-1]) == tmp_path / "run" / "a:b -x.en.mp4"


def test_the_target_subtitles_have_the_lines_final_timing(spanish_dub, talk):
    """The subtitles are written once every line is aligned: each cue is timed as the line
    in segments.json (align moves lines onto the measured speech after translation)."""
    cues = read_srt(spanish_dub.run_dir / f"{talk.path.stem}.es.srt")
    lines = [s for s in spanish_dub.segments() if s["target_text"].strip()]
    assert [(round(c.start.total_seconds(), 2), round(c.end.total_seconds(), 2)) for c in cues] == [
        (round(s["start"], 2), round(max(s["end"], s["start"] + 0.01), 2)) for s in lines]
