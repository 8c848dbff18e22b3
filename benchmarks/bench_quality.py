"""How good the dub is, per profile, on talks whose sentence times are known exactly.

    .venv/bin/python benchmarks/bench_quality.py
    .venv/bin/python benchmarks/bench_quality.py --lines 24 --profiles speed,balanced --json out.json

For each talk (a generated English talk with Spanish subtitles as espeak-ng's word list gives
them, shorter than the English; the same with each Spanish line lengthened to 1.2-1.35x the
English characters, as written Spanish runs; the same with Spanish lines ~1.6x longer; the shared JFK sample re-voiced in English when it is present) and
each profile, it runs a whole dub offline (the first talk is also re-voiced in English, as it is
and as recordings give it: its audio starting 1.5 s after its picture, and with three pauses'
audio dropped, timestamps kept) and prints one table row: the run's own ``quality``
figures from ``report.json``, the dub's onset error measured against the talk's *known*
sentence starts (not the run's own detector) and against the speaker's known nuclei (where
each sentence becomes loud: the dub side is measured so too, so this one compares like with
like), and wall time with the share the quality measurement took. Nothing is asserted: the
figures are for a person to read.

With ``--music FILE`` (any file soundfile reads, e.g. the Ogg tracks of Debian's
``extremetuxracer-data``) the first talk is also dubbed and re-voiced with that music under the
speaker, ``--music-db`` under the speech (stereo, as creators' videos have it). The dub track
then carries the music too, so the known-onset columns are not measured there; every row
also gives where placement laid each clip's nucleus (its placed start, plus the clip's own
nucleus at its speed) against the speaker's known nucleus, which music does not disturb:
its p95 and its worst line. ``--music-intro S`` puts S seconds of the music alone before the
talk as well (as videos open), and the row's ``extra`` says how much of that intro the dub
kept: its level against the original's, and the share of its 100 ms frames cut by 20 dB or
more.

With ``--music FILE --surround DB`` the first talk (dubbed into Spanish) and the JFK sample
(re-voiced) are also given as films carry dialogue: 5.1, the voice in the centre channel alone
and the music DB under it in the other channels. The row's ``extra`` says how much of the music
the dub kept under the voice, against its level elsewhere in the dub (0 dB: kept whole).
``--surround-upmix S`` adds the talk once more with its voice in the front pair too from S
seconds on (an upmixed scene), measured before and after S apart. The row also gives the
dub track's layout (5.1 when the voice was in the centre alone) and its loudness by FFmpeg's
meter; ``--surround-stereo`` dubs each of these talks once more in stereo
(``mix.surround=false``), the way they were dubbed before, to compare in the same run.

With ``--noise-snr 10,3`` the first talk is also dubbed and re-voiced with white noise under
it at each of those SNRs (against the speech's own power): the recogniser's times and the
energy of the track are both unreliable there, and the placed-nucleus columns say where the
lines landed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from videodub.api import dub
from videodub.testing.samples import ENGLISH_TALK, make_talk, write_translation_srt

JFK = Path(__file__).resolve().parents[2] / "shared" / "media" / "jfk.flac"
JFK_TEXT = ("And so, my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
LONGER = " y esto es algo que todos deberíamos recordar siempre"


# Words that lengthen a Spanish line without changing its sense much, for "natural" Spanish.
FILLERS = [" en realidad", " de verdad", " sin duda", " hoy", " también", " por supuesto"]


def natural(en: str, es: str, ratio: float) -> str:
    """``es`` lengthened with filler words to at least ``ratio`` times ``en``'s characters:
    written Spanish runs 1.1-1.3x the English, espeak-ng's translations here run shorter."""
    body, i = es.rstrip("."), 0
    while len(body) + 1 < ratio * len(en):
        body += FILLERS[i % len(FILLERS)]
        i += 1
    return body + "."


def talk_lines(n: int, longer: bool, ratio: float = 0.0) -> list[tuple[str, str]]:
    lines = [ENGLISH_TALK[i % len(ENGLISH_TALK)] for i in range(n)]
    if longer:
        lines = [(en, es.rstrip(".") + LONGER + ".") for en, es in lines]
    if ratio:
        lines = [(en, natural(en, es, ratio)) for en, es in lines]
    return lines


def off_the_picture(talk: Path, script, folder: Path) -> list[tuple[str, Path, list[float]]]:
    """The talk as recordings give it: its audio starting 1.5 s into its picture
    (``-itsoffset``, the sentences 1.5 s later on the picture's timeline), and with the audio
    of three pauses dropped, the timestamps kept (the sentences where they were)."""
    from videodub.media import run_ffmpeg

    late = folder / "late.mkv"
    run_ffmpeg(["-v", "error", "-i", str(talk), "-itsoffset", "1.5", "-i", str(talk), "-map",
                "0:v", "-map", "1:a", "-c", "copy", str(late)])
    pauses = [(a.end + 0.3, b.start - 0.3) for a, b in zip(script, script[1:])]
    holes = [pauses[i] for i in (len(pauses) // 4, len(pauses) // 2, 3 * len(pauses) // 4)]
    keep = "+".join(f"between(t,{a:.3f},{b:.3f})" for a, b in holes)
    gaps = folder / "gaps.mkv"
    run_ffmpeg(["-v", "error", "-i", str(talk), "-map", "0:v", "-map", "0:a", "-c:v", "copy",
                "-af", f"aselect='not({keep})'", "-c:a", "aac", str(gaps)])
    starts = [line.start for line in script]
    return [("talk-en-late", late, [s + 1.5 for s in starts]), ("talk-en-gaps", gaps, starts)]


def decode(path: Path, rate: int = 16000, layout: str = "mono") -> np.ndarray:
    """The first audio track, mono; with ``layout="stereo"``, downmixed to stereo as ingest
    does (to 16 bits: FFmpeg then scales a 5.1 downmix so it cannot clip), then averaged."""
    import av

    fmt = "flt" if layout == "mono" else "s16"
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.audio[0]):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    audio = np.concatenate(chunks)
    return audio if layout == "mono" else audio.reshape(-1, 2).mean(axis=1) / 32768.0


def known_onset_errors(video: Path, segments: list[dict], starts: list[float]) -> list[float]:
    """Dub onset (first loud sample near each dubbed line) against the known sentence start."""
    rate = 16000
    audio = decode(video, rate)
    errors = []
    prev_end = 0.0
    for seg in segments:
        if "placed_start" not in seg["extra"]:
            continue
        truth = min(starts, key=lambda s: abs(s - seg["start"]))
        # From 0.4 s before the sentence, but after the previous clip has ended.
        floor = max(0.0, prev_end + 0.02)
        a = int(max(truth - 0.4, floor) * rate)
        prev_end = seg["extra"]["placed_end"]
        window = np.abs(audio[a: a + rate])
        if window.size == 0 or window.max() == 0:
            continue
        level = 0.1 * window.max()
        loud = np.flatnonzero(window > level)
        if loud[0] == 0:  # already speaking there: back to where it began, the last 150 ms
            # of quiet (longer than a pause between words) within 2 s
            step, quiet = rate // 100, int(0.15 * rate)
            stop = int(max(truth - 2.0, floor) * rate)
            while a - step >= stop and np.abs(audio[max(0, a - quiet):a]).max() > level:
                a -= step
        errors.append(a / rate + loud[0] / rate - truth)
    return errors


def with_music(talk: Path, music: Path, below_db: float, folder: Path,
               intro_s: float = 0.0) -> Path:
    """``talk`` with ``music`` (from 30 s into it, looped if short) under the speaker, its RMS
    ``below_db`` under the speech's (the speech's RMS over its frames above -50 dBFS), after
    ``intro_s`` seconds of the music alone at 6 dB under the speech's RMS over its loudest
    half (the sentences: the talk's pauses carry a hum above -50 dBFS)."""
    import av

    rate = 44100
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
    chunks = []
    with av.open(str(talk)) as container:
        for frame in container.decode(container.streams.audio[0]):
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
    speech = np.concatenate(chunks, axis=1).T
    speech = np.concatenate([np.zeros((int(intro_s * rate), 2), np.float32), speech])
    bed = music_bed(music, len(speech), rate)
    frames = speech[: len(speech) // 441 * 441].reshape(-1, 441, 2)
    power = (frames ** 2).mean(axis=(1, 2))
    voiced = power[power > 10 ** (-50 / 10)]
    target = np.sqrt(voiced.mean()) * 10 ** (-below_db / 20)
    bed = bed * (target / max(float(np.sqrt(np.mean(bed ** 2))), 1e-9))
    loud = np.sqrt(np.mean(np.sort(power)[len(power) // 2:]))
    bed[:int(intro_s * rate)] *= loud / target * 10 ** (-6 / 20)
    return with_track(talk, speech + bed, rate, folder, f"music{below_db:g}-intro{intro_s:g}",
                      intro_s)


def music_bed(music: Path, samples: int, rate: int) -> np.ndarray:
    """``samples`` of ``music`` in stereo at ``rate``, from 30 s into it, looped if short."""
    import soundfile
    from scipy.signal import resample_poly

    bed, bed_rate = soundfile.read(str(music), dtype="float32", always_2d=True)
    bed = resample_poly(bed[:, :2] if bed.shape[1] > 1 else np.repeat(bed, 2, axis=1),
                        rate, bed_rate, axis=0)
    bed = bed[min(30 * rate, max(0, len(bed) - samples)):]
    return np.tile(bed, (-(-samples // len(bed)), 1))[:samples]


def with_surround(speech_file: Path, music: Path, below_db: float, folder: Path,
                  name: str, upmix_from: float | None = None
                  ) -> tuple[Path, np.ndarray, np.ndarray]:
    """A 5.1 track as films carry dialogue: ``speech_file``'s voice in the centre channel
    alone, ``music`` ``below_db`` under it (RMS over the voice's frames above -50 dBFS) in the
    front pair and at half that in the surround pair, no LFE; AAC 5.1 in an MP4 without
    picture. From ``upmix_from`` seconds on, the voice is in the front pair too, at -6 dB
    (an upmixed scene). Returns it, the voice and the music (mono) at 48 kHz, to measure
    the dub."""
    import soundfile

    from videodub.media import run_ffmpeg

    rate = 48000
    voice = decode(speech_file, rate)
    bed = music_bed(music, len(voice), rate)
    frames = voice[: len(voice) // 480 * 480].reshape(-1, 480)
    power = (frames ** 2).mean(axis=1)
    target = np.sqrt(power[power > 10 ** (-50 / 10)].mean()) * 10 ** (-below_db / 20)
    bed *= target / max(float(np.sqrt(np.mean(bed ** 2))), 1e-9)
    zero = np.zeros_like(voice)
    front = voice * 0.5 * (np.arange(len(voice)) >= (upmix_from or np.inf) * rate)
    channels = np.stack([bed[:, 0] + front, bed[:, 1] + front, voice, zero, bed[:, 0] / 2,
                         bed[:, 1] / 2], 1)
    wav, out = folder / f"{name}.wav", folder / f"{name}.mp4"
    soundfile.write(str(wav), channels.astype(np.float32), rate, subtype="PCM_16")
    run_ffmpeg(["-v", "error", "-i", str(wav), "-af", "aformat=channel_layouts=5.1",
                "-c:a", "aac", "-b:a", "384k", str(out)])
    wav.unlink()
    return out, voice, bed.mean(axis=1)


def dub_layout(video: Path) -> str:
    """The dub track's channel layout and its loudness by FFmpeg's meter (BS.1770)."""
    import re

    import av

    from videodub.media import run_ffmpeg

    with av.open(str(video)) as container:
        layout = container.streams.audio[0].layout.name
    log = run_ffmpeg(["-v", "info", "-nostats", "-i", str(video), "-map", "0:a:0", "-af",
                      "ebur128=framelog=quiet", "-f", "null", "-"])
    loudness = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", log)[-1])
    return f"dub {layout} {loudness:.1f} LUFS"


def surround_kept(dub: Path, original: Path, voice: np.ndarray, music: np.ndarray,
                  notes: list[str], split: float | None = None) -> str:
    """The original's music, and its voice, under the voice: how loud in the dub against the
    original (0 dB: kept whole; -60 dB: cut), the mix's own gain aside (from its note). Each
    100 ms where the voice is within 12 dB of its loudest gives least-squares gains of the
    known music and voice in the dub, and in the original's downmix; their medians are
    compared (the dub's own voice makes each frame's gains noisy, not biased). With
    ``split`` (seconds), before and after it apart."""
    if split is not None:
        return "; ".join(f"{label}: " + _kept(dub, original, voice, music, notes, part)
                         for label, part in ((f"before {split:g} s", (0.0, split)),
                                             (f"after {split:g} s", (split, np.inf))))
    return _kept(dub, original, voice, music, notes, (0.0, np.inf))


def _kept(dub: Path, original: Path, voice: np.ndarray, music: np.ndarray,
          notes: list[str], part: tuple[float, float]) -> str:
    import re

    rate, frame = 48000, 4800
    streamed = [note for note in notes if note.startswith("mix: streamed")]
    gains = [float(g) for note in streamed for g in re.findall(r"gain ([-+][0-9.]+) dB", note)]
    # ... and a correction pass's gain on top, when the first missed the target
    fixed = [float(g) for note in streamed for g in re.findall(r"corrected by ([-+][0-9.]+) dB",
                                                                note)]
    mix_gain = 10 ** ((float(np.mean(gains or [0.0])) + sum(fixed)) / 20)

    def median_gain(path: Path) -> np.ndarray:
        d = decode(path, rate, "stereo")
        n = min(len(d), len(voice)) // frame * frame
        d, v, m = d[:n], voice[:n], music[:n]
        size = min(n, 30 * rate)
        corr = np.fft.irfft(np.fft.rfft(d[:size], 2 * size)
                            * np.conj(np.fft.rfft(m[:size], 2 * size)))
        lag = int(np.argmax(np.abs(corr[:2000])))  # the limiter's delay in a dub
        d = np.concatenate([d[lag:], np.zeros(lag)])
        db = 10 * np.log10((v.reshape(-1, frame) ** 2).mean(axis=1) + 1e-12)
        coefs = [np.linalg.lstsq(np.stack([m[i * frame:(i + 1) * frame],
                                           v[i * frame:(i + 1) * frame]], 1),
                                 d[i * frame:(i + 1) * frame], rcond=None)[0]
                 for i in np.flatnonzero(db > db.max() - 12)
                 if part[0] <= i * frame / rate < part[1]]
        return np.median(coefs, axis=0)

    music_kept, voice_kept = np.abs(median_gain(dub) / (median_gain(original) * mix_gain))
    return (f"music under the voice {20 * np.log10(max(music_kept, 1e-3)):+.1f} dB, "
            f"original voice {20 * np.log10(max(voice_kept, 1e-3)):+.1f} dB")


def with_noise(talk: Path, script, snr_db: float, folder: Path) -> Path:
    """``talk`` with white noise ``snr_db`` under the speech (its power over the script's
    sentences), the same noise in each run."""
    rate = 44100
    speech = decode(talk, rate)[:, None].repeat(2, axis=1)
    said = np.concatenate([speech[int(line.start * rate):int(line.end * rate), 0]
                           for line in script])
    noise = np.random.default_rng(10).standard_normal(speech.shape).astype(np.float32)
    noise *= np.sqrt(np.mean(said ** 2) / 10 ** (snr_db / 10))
    return with_track(talk, speech + noise, rate, folder, f"noise{snr_db:g}")


def with_track(talk: Path, audio: np.ndarray, rate: int, folder: Path, name: str,
               delay_s: float = 0.0) -> Path:
    """``talk``'s picture (``delay_s`` later) with ``audio`` as its sound, as an MP4."""
    import soundfile

    from videodub.media import run_ffmpeg

    audio = audio * min(1.0, 0.9 / float(np.abs(audio).max()))
    wav = folder / f"{name}.wav"
    soundfile.write(str(wav), audio.astype(np.float32), rate, subtype="PCM_16")
    out = folder / f"talk-{name}.mp4"
    run_ffmpeg(["-v", "error", "-itsoffset", f"{delay_s:g}", "-i", str(talk), "-i", str(wav),
                "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "192k",
                str(out)])
    wav.unlink()
    return out


def intro_kept(original: Path, dub: Path, intro_s: float) -> str:
    """How much of the first ``intro_s`` seconds (the music alone) the dub kept."""
    rate, frame = 16000, 1600
    a, b = int(0.5 * rate), int((intro_s - 0.5) * rate)
    o, d = decode(original, rate)[a:b], decode(dub, rate)[a:b]
    n = min(len(o), len(d)) // frame * frame

    def db(x: np.ndarray) -> np.ndarray:
        return 10 * np.log10((x[:n].reshape(-1, frame) ** 2).mean(axis=1) + 1e-12)

    level = 10 * np.log10(float(np.mean(d[:n] ** 2) / np.mean(o[:n] ** 2)) + 1e-12)
    return f"intro {level:+.1f} dB, {np.mean(db(d) - db(o) < -20) * 100:.0f}% cut"


def shift_srt(srt: Path, seconds: float, folder: Path) -> Path:
    """The subtitle file with every cue ``seconds`` later (a talk after a music intro)."""
    import srt as srt_lib
    from datetime import timedelta

    cues = list(srt_lib.parse(srt.read_text(encoding="utf-8")))
    for cue in cues:
        cue.start += timedelta(seconds=seconds)
        cue.end += timedelta(seconds=seconds)
    out = folder / f"talk-{seconds:g}.es.srt"
    out.write_text(srt_lib.compose(cues), encoding="utf-8")
    return out


def placed_nucleus_errors(segments: list[dict], nuclei: list[float]) -> list[float]:
    """Where placement laid each clip's nucleus (its placed start, plus the clip's own
    nucleus at its speed) against the nearest of the speaker's known nuclei; needs the clips
    (``keep_work=true``)."""
    from videodub.placement import clip_nucleus

    errors = []
    for seg in segments:
        start, path = seg["extra"].get("placed_start"), seg.get("audio_path")
        if start is None or not path or not Path(path).is_file():
            continue
        lead = clip_nucleus(Path(path))[1]
        if lead is None:
            continue
        truth = min(nuclei, key=lambda n: abs(n - seg["start"]))
        errors.append(start + lead / (seg.get("stretch") or 1.0) - truth)
    return errors


def speaker_nuclei(script) -> list[float]:
    """Each sentence's nucleus on the talk's timeline, by the dub side's measure (the first
    sample over a tenth of the loudest of the sentence's first second), on the sentence as
    espeak-ng speaks it alone: "Third, ..." opens with 85 ms of a soft fricative."""
    from videodub.testing.samples import speak

    leads: dict[str, float] = {}
    for line in script:
        if line.text not in leads:
            audio, rate = speak(line.text)
            head = np.abs(audio[:rate])
            leads[line.text] = np.flatnonzero(head > 0.1 * head.max())[0] / rate
    return [line.start + leads[line.text] for line in script]


def wer(reference: str, heard: str) -> float:
    import re

    ref = re.findall(r"[a-z']+", reference.lower())
    hyp = re.findall(r"[a-z']+", heard.lower())
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(1, len(ref))


def back_transcribe(video: Path) -> str:
    from videodub.recognition import load_model

    segments, _ = load_model("bundled", "int8", 2).transcribe(decode(video), language="en",
                                                              beam_size=2, vad_filter=True)
    return " ".join(s.text.strip() for s in segments)


def p95_ms(errors: list[float] | None) -> float | None:
    return round(float(np.percentile(np.abs(errors) * 1000, 95)), 1) if errors else None


def row(name: str, profile: str, result, wall: float, known: list[float] | None,
        nuclei: list[float] | None = None, extra: str = "",
        placed: list[float] | None = None) -> dict:
    q = result.report["quality"]
    k = np.abs(np.array(known)) * 1000 if known else None
    out = {
        "talk": name, "profile": profile, "wall_s": round(wall, 2),
        "measure_share": round(q["measure_s"] / wall, 4),
        "onset_p95_ms": q["onset_error"]["p95_ms"],
        "known_onset_p95_ms": round(float(np.percentile(k, 95)), 1) if k is not None else None,
        "known_onset_max_ms": round(float(k.max()), 1) if k is not None else None,
        "known_nucleus_p95_ms": p95_ms(nuclei),
        "placed_nucleus_p95_ms": p95_ms(placed),
        "placed_nucleus_max_ms": round(float(np.abs(placed).max()) * 1000, 1) if placed else None,
        "share_le_1_25": q["speed"]["share_le_1_25"], "max_speed": q["speed"]["max"],
        "slowed": q["speed"]["slowed"], "sped_up_though_fit": q["speed"]["sped_up_though_fit"],
        "overflow": q["overflow"]["lines"], "overflow_s": q["overflow"]["seconds"],
        "overlaps": q["overlaps"]["count"], "cut_at_end_s": q["cut_at_end_s"],
        "original_db": q.get("original_voice", {}).get("original_where_source_speaks_db"),
        "uncovered_s": q.get("original_voice", {}).get("uncovered_source_speech_s"),
        "extra": extra,
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=30, help="sentences in the generated talk")
    ap.add_argument("--profiles", default="speed,balanced,quality")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--music", type=Path, help="music for the talks with music under the "
                    "speaker (not given: those rows are left out)")
    ap.add_argument("--music-db", default="20,12",
                    help="dB under the speech the music plays at, comma-separated")
    ap.add_argument("--music-intro", type=float, default=0.0,
                    help="seconds of the music alone before the talk")
    ap.add_argument("--noise-snr", default="",
                    help="SNRs in dB of white noise under the first talk, comma-separated")
    ap.add_argument("--surround", type=float, default=None, metavar="DB",
                    help="also the first talk and the JFK sample in 5.1, the voice in the "
                         "centre and --music DB under it in the others")
    ap.add_argument("--surround-stereo", action="store_true",
                    help="with --surround, each surround talk also dubbed in stereo "
                         "(mix.surround=false), as before 5.1 dubs")
    ap.add_argument("--surround-upmix", type=float, default=None, metavar="S",
                    help="with --surround, the first talk in 5.1 once more, its voice in "
                         "the front pair too from S seconds on (an upmixed scene)")
    args = ap.parse_args()
    profiles = [p for p in args.profiles.replace(" ", ",").split(",") if p]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        root = Path(tmp)
        talks = []
        surround: dict[str, tuple[Path, np.ndarray, np.ndarray]] = {}  # name: file, voice, music
        for name, longer, ratio in (("talk-es", False, 0.0), ("talk-es-natural", False, 1.2),
                                    ("talk-es-1.6x", True, 0.0)):
            folder = root / name
            folder.mkdir()
            script = make_talk(folder / "talk.mp4", talk_lines(args.lines, longer, ratio))
            srt = write_translation_srt(script, folder / "talk.es.srt")
            subtitles = ["target_lang=es", "translate=subtitles", f"translate.file={srt}"]
            starts, nuclei = [line.start for line in script], speaker_nuclei(script)
            talks.append((name, folder / "talk.mp4", starts, nuclei, subtitles))
            if name == "talk-es":  # re-voiced in English: the lines' times are recognition's
                revoice = ["target_lang=en", "translate=none"]
                talks.append(("talk-en", folder / "talk.mp4", starts, nuclei, revoice))
                talks += [(variant, path, moved, [n + m - s for n, m, s in
                                                  zip(nuclei, moved, starts)], revoice)
                          for variant, path, moved
                          in off_the_picture(folder / "talk.mp4", script, folder)]
                intro = args.music_intro
                late = [n + intro for n in nuclei]
                for db in ([float(d) for d in args.music_db.split(",")] if args.music else []):
                    music = with_music(folder / "talk.mp4", args.music, db, folder, intro)
                    label = f"music{db:g}" + (f"-intro{intro:g}" if intro else "")
                    shifted = [f"translate.file={shift_srt(srt, intro, folder)}"]
                    talks += [(f"talk-es-{label}", music, None, late, subtitles[:2] + shifted),
                              (f"talk-en-{label}", music, None, late, revoice)]
                if args.music and args.surround is not None:
                    known = folder / "talk.mp4", args.music, args.surround, folder
                    surround[f"talk-es-surround{args.surround:g}"] = with_surround(
                        *known, f"surround{args.surround:g}")
                    track = surround[f"talk-es-surround{args.surround:g}"][0]
                    talks += [(f"talk-es-surround{args.surround:g}", track, None, nuclei,
                               subtitles)]
                    if args.surround_upmix is not None:
                        name = f"talk-es-surround{args.surround:g}-upmix{args.surround_upmix:g}"
                        surround[name] = with_surround(*known, name, args.surround_upmix)
                        talks += [(name, surround[name][0], None, nuclei, subtitles)]
                for snr in [float(d) for d in args.noise_snr.split(",") if d]:
                    noisy = with_noise(folder / "talk.mp4", script, snr, folder)
                    talks += [(f"talk-es-noise{snr:g}", noisy, None, nuclei, subtitles),
                              (f"talk-en-noise{snr:g}", noisy, None, nuclei, revoice)]
        if JFK.is_file():
            talks.append(("jfk-en", JFK, None, None, ["target_lang=en", "translate=none"]))
            if args.music and args.surround is not None:
                name = f"jfk-en-surround{args.surround:g}"
                surround[name] = with_surround(JFK, args.music, args.surround, root, name)
                talks.append((name, surround[name][0], None, None,
                              ["target_lang=en", "translate=none"]))
        else:
            print(f"(the JFK sample is not at {JFK}: skipped)", file=sys.stderr)
        if args.surround_stereo:
            for name in list(surround):
                entry = next(t for t in talks if t[0] == name)
                surround[f"{name}-stereo"] = surround[name]
                talks.append((f"{name}-stereo", *entry[1:4], [*entry[4], "mix.surround=false"]))
        duration = args.lines * 4.0
        print(f"generated talk: {args.lines} sentences, ~{duration:.0f} s; figures per run\n")
        for name, path, starts, nuclei, overrides in talks:
            for profile in profiles:
                run_dir = root / f"{name}-{profile}"
                t0 = time.monotonic()
                result = dub([f"input={path}", f"profile={profile}", "cache=false",
                              "runner.display=quiet", "keep_work=true", *overrides],
                             run_dir=run_dir)
                wall = time.monotonic() - t0
                segments = json.loads((run_dir / "segments.json").read_text())["segments"]
                known = known_onset_errors(result.video, segments, starts) if starts else None
                # The dub track of a talk with music carries the music: not measured there.
                heard = (known_onset_errors(result.video, segments, nuclei)
                         if nuclei and starts else None)
                placed = placed_nucleus_errors(segments, nuclei) if nuclei else None
                extra = ""
                if "-intro" in name:
                    extra = intro_kept(path, result.video, args.music_intro)
                if name.startswith("jfk-en"):
                    extra = f"WER {wer(JFK_TEXT, back_transcribe(result.video)):.2f}"
                if name in surround:
                    extra = ", ".join(filter(None, [extra, dub_layout(result.video),
                                                    surround_kept(
                        result.video, *surround[name], result.report.get("notes", []),
                        args.surround_upmix if "-upmix" in name else None)]))
                rows.append(row(name, profile, result, wall, known, heard, extra, placed))
                print(json.dumps(rows[-1]), flush=True)
    cols = ["talk", "profile", "onset_p95_ms", "known_onset_p95_ms", "known_nucleus_p95_ms",
            "placed_nucleus_p95_ms", "placed_nucleus_max_ms", "share_le_1_25",
            "max_speed", "slowed", "sped_up_though_fit", "overflow", "overflow_s", "overlaps",
            "cut_at_end_s", "original_db", "uncovered_s", "wall_s", "measure_share", "extra"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("-" if r[c] is None else str(r[c]) for c in cols) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
